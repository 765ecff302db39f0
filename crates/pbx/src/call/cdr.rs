//! Call records as the engine produces them, and their conversion into the
//! directory's CDR rows.

use std::time::{Instant, SystemTime};

use store::{CdrId, Direction, Disposition, HangupBy, NewCdr, TenantId, TrunkId};

/// The record of one finished call, on the engine's monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The engine's call number (also in [`super::CallSummary::id`]).
    pub call: u64,
    pub tenant: TenantId,
    /// The A-leg's Call-ID (what the caller's phone logs).
    pub call_id: String,
    /// The calling extension.
    pub caller: String,
    /// The extension that answered, or the last one rung.
    pub callee: String,
    /// What the caller dialled.
    pub dialled: String,
    pub direction: Direction,
    /// The trunk of an outside call (the answering one, or the last tried).
    pub trunk: Option<TrunkId>,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub ended: Instant,
    pub disposition: Disposition,
    pub hangup_cause: String,
    pub hangup_by: HangupBy,
    /// The call was reported by
    /// [`CallEngine::poll_outside_started`](super::CallEngine::poll_outside_started):
    /// it no longer counts as a live outside call.
    pub counted_outside: bool,
    /// Who transferred the call, and to whom.
    pub transferred: Option<(String, String)>,
}

impl CallRecord {
    /// Billable seconds (answer to end, rounded to the nearest second).
    pub fn duration_secs(&self) -> u32 {
        self.answered.map_or(0, |a| {
            let ms = self.ended.saturating_duration_since(a).as_millis();
            u32::try_from((ms + 500) / 1000).unwrap_or(u32::MAX)
        })
    }

    /// The row to insert. `wall` maps the engine's instants to wall-clock
    /// time (the driver keeps one `(Instant, SystemTime)` pair from start-up).
    /// `id` is chosen once so a retried insert is recognised.
    pub fn to_new_cdr(&self, id: CdrId, wall: impl Fn(Instant) -> SystemTime) -> NewCdr {
        // One conversion (the start); the other times are offsets from it,
        // so converting against clocks read at different moments can never
        // put the end before the start.
        let start = wall(self.started);
        let at = |t: Instant| start + t.saturating_duration_since(self.started);
        NewCdr {
            id,
            tenant_id: self.tenant,
            call_id: self.call_id.clone(),
            direction: self.direction,
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            dialled: self.dialled.clone(),
            trunk_id: self.trunk,
            started_at: start.into(),
            answered_at: self.answered.map(|a| at(a).into()),
            ended_at: at(self.ended).into(),
            duration_secs: self.duration_secs(),
            disposition: self.disposition,
            hangup_cause: self.hangup_cause.clone(),
            hangup_by: self.hangup_by,
            transferred_by: self.transferred.as_ref().map(|t| t.0.clone()),
            transferred_to: self.transferred.as_ref().map(|t| t.1.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn converts_instants_through_the_wall_clock_anchor() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rec = CallRecord {
            call: 1,
            tenant: TenantId::new(),
            call_id: "c".into(),
            caller: "1000".into(),
            callee: "1001".into(),
            dialled: "1001".into(),
            direction: Direction::Internal,
            trunk: None,
            started: t0,
            answered: Some(t0 + Duration::from_secs(3)),
            ended: t0 + Duration::from_millis(65_400),
            disposition: Disposition::Answered,
            hangup_cause: "caller hung up".into(),
            hangup_by: HangupBy::Caller,
            counted_outside: false,
            transferred: None,
        };
        assert_eq!(rec.duration_secs(), 62);
        let row = rec.to_new_cdr(CdrId::new(), |i| w0 + i.duration_since(t0));
        assert_eq!(row.duration_secs, 62);
        assert_eq!(
            (row.answered_at.unwrap() - row.started_at).whole_seconds(),
            3
        );
        assert_eq!(row.disposition, Disposition::Answered);
    }
}
