//! Concurrent-call limits: per business (`max_concurrent_calls`, set by the
//! operator) and per extension (set by the business's admin), counting calls
//! made and received, ringing ones included. Emergency calls (999/112)
//! bypass both. Counting walks the call table: one pass per new call.

use store::TenantId;

use super::CallPhase;
use super::engine::{Call, CallEngine, ForkState};

/// Whether extension `number` takes part in `c`: it placed the call, or one
/// of its phones rings or talks in it.
fn involves(c: &Call, number: &str) -> bool {
    (c.from_extension && c.caller == number)
        || c.forks.iter().any(|f| {
            f.trunk.is_none() && !f.cancelled && f.state != ForkState::Done && f.extension == number
        })
}

impl CallEngine {
    /// Live calls of `tenant` in the table (the call being set up is out of
    /// the table while the engine works on it, so it is not counted).
    pub(crate) fn tenant_calls(&self, tenant: TenantId) -> usize {
        self.calls
            .values()
            .filter(|c| c.tenant == tenant && c.phase != CallPhase::Ended)
            .count()
    }

    /// Live calls extension `number` of `tenant` takes part in.
    pub(crate) fn extension_calls(&self, tenant: TenantId, number: &str) -> usize {
        self.calls
            .values()
            .filter(|c| c.tenant == tenant && c.phase != CallPhase::Ended && involves(c, number))
            .count()
    }

    /// Whether a new (non-emergency) call may start: the status and reason
    /// to refuse it with otherwise. `caller_limit` is the calling
    /// extension's own limit (`None` for calls from a trunk).
    pub(crate) fn admit_call(
        &self,
        call: &Call,
        caller_limit: Option<u32>,
    ) -> Result<(), (u16, String)> {
        if let Some(limit) = self.dial_plan.call_limit(call.tenant) {
            let live = self.tenant_calls(call.tenant);
            if live >= limit as usize {
                return Err((
                    403,
                    format!("business concurrent call limit reached ({live} of {limit})"),
                ));
            }
        }
        if let (Some(limit), true) = (caller_limit, call.from_extension) {
            let live = self.extension_calls(call.tenant, &call.caller);
            if live >= limit as usize {
                return Err((
                    486,
                    format!(
                        "extension {} concurrent call limit reached ({live} of {limit})",
                        call.caller
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether extension `number` (limit `limit`) may be rung for one more call.
    pub(crate) fn extension_has_room(&self, tenant: TenantId, number: &str, limit: u32) -> bool {
        self.extension_calls(tenant, number) < limit as usize
    }
}
