//! Ring groups: member parsing (one rule for the pages and the API) and the mutations.

use store::changes::Action;
use store::*;

use super::Service;
use crate::error::AppError;

/// Members one group may have.
pub const MAX_MEMBERS: usize = 100;

/// A member list as typed: each entry an extension number of the business or a phone number,
/// in ring order. Errors name the entry (1-based) on the field `members`.
pub async fn parse_members(
    dir: &dyn Directory,
    tenant: TenantId,
    entries: &[&str],
) -> Result<Vec<RingGroupMember>, AppError> {
    let entries: Vec<&str> = entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() > MAX_MEMBERS {
        return Err(AppError::invalid(
            "members",
            format!("A ring group can have at most {MAX_MEMBERS} members."),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    // Every bad member is reported, in one message, not only the first.
    let mut problems = Vec::new();
    for (i, typed) in entries.iter().enumerate() {
        let at = |m: String| format!("Member {}: {m}", i + 1);
        let member = match typed.parse::<ForwardTarget>() {
            Err(_) => {
                problems.push(at(format!(
                    "“{typed}” is neither an extension number nor a phone number."
                )));
                continue;
            }
            Ok(ForwardTarget::External(e164)) => RingGroupMember::External(e164),
            Ok(ForwardTarget::Extension(n)) => {
                match dir.get_extension_by_number(tenant, &n).await {
                    Ok(e) => RingGroupMember::Extension(e.id),
                    Err(e) if e.is_not_found() => {
                        problems.push(at(format!("there is no extension {n}.")));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if out.contains(&member) {
            problems.push(at(format!("{typed} is listed twice.")));
            continue;
        }
        out.push(member);
    }
    if !problems.is_empty() {
        return Err(AppError::invalid("members", problems.join(" ")));
    }
    Ok(out)
}

impl Service {
    /// Creates the group with its members; nothing is left behind when the members are refused.
    pub async fn create_ring_group(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        settings: &RingGroupSettings,
        members: &[RingGroupMember],
    ) -> Result<RingGroup, AppError> {
        let dir = &**self.directory();
        let g = dir.create_ring_group(tenant, number, settings).await?;
        let g = if members.is_empty() {
            g
        } else {
            match dir.set_ring_group_members(tenant, g.id, members).await {
                Ok(g) => g,
                Err(e) => {
                    if let Err(undo) = dir.delete_ring_group(tenant, g.id).await {
                        tracing::warn!(error = %undo, "a half-created ring group could not be removed");
                    }
                    return Err(e.into());
                }
            }
        };
        self.group_changed(tenant, g.id, Action::Created).await;
        Ok(g)
    }

    /// Stores new settings, and the members only if they changed (a new member list restarts
    /// the round-robin rotation).
    pub async fn update_ring_group(
        &self,
        tenant: TenantId,
        g: &RingGroup,
        settings: &RingGroupSettings,
        members: Option<&[RingGroupMember]>,
    ) -> Result<RingGroup, AppError> {
        let dir = &**self.directory();
        let mut current = dir.update_ring_group(tenant, g.id, settings).await?;
        if let Some(m) = members.filter(|m| *m != g.members.as_slice()) {
            current = dir.set_ring_group_members(tenant, g.id, m).await?;
        }
        self.group_changed(tenant, g.id, Action::Updated).await;
        Ok(current)
    }

    /// Deletes a group (`Conflict` while a number or another group still routes to it).
    pub async fn delete_ring_group(
        &self,
        tenant: TenantId,
        id: RingGroupId,
    ) -> Result<(), AppError> {
        self.directory().delete_ring_group(tenant, id).await?;
        self.group_changed(tenant, id, Action::Deleted).await;
        Ok(())
    }

    async fn group_changed(&self, tenant: TenantId, group: RingGroupId, action: Action) {
        self.publish(Change::RingGroup {
            tenant,
            group,
            action,
        })
        .await;
    }
}
