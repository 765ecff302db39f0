//! The asynchronous resolver over the directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::Uri;
use sip::transaction::{Target, Transport as SipTransport};
use store::{
    Directory, E164, Extension, ExtensionNumber, ForwardTarget, Number, NumberScope, Page,
    RingGroup, RingGroupMember, RouteTarget, StoreError, Tenant, TenantId, Transport, Trunk,
};

use super::classify::{Dialled, classify};
use super::prepared::{Lookup, OutsideCalls, PreparedPlan};
use super::tariff::Tariff;
use crate::call::{
    Destination, ExtensionProfile, GroupMember, MemberTarget, OutsideCall, RingGroupPlan,
    TrunkCredentials, TrunkRoute,
};

type Result<T> = std::result::Result<T, StoreError>;

/// An inbound call resolved: the tenant holding the number and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// `None` when the number is not assigned to any tenant.
    pub tenant: Option<TenantId>,
    pub destination: Destination,
    /// The tenant's concurrent-call limit (0 when no tenant).
    pub call_limit: u32,
}

/// Resolves dialled strings against the directory. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    dir: Arc<dyn Directory>,
    /// Forwarding hops followed by [`Resolver::prepare`] (the engine cuts
    /// chains at its own `max_forward_hops`).
    max_forward_hops: usize,
}

fn refused(status: u16, reason: impl Into<String>) -> Destination {
    Destination::Refused {
        status,
        reason: reason.into(),
    }
}

fn not_yet(kind: &str) -> Destination {
    refused(480, format!("{kind} calls are not available yet"))
}

fn profile(ext: &Extension) -> ExtensionProfile {
    ExtensionProfile {
        id: ext.id,
        number: ext.number.clone(),
        display_name: ext.settings.display_name.clone(),
        dnd: ext.settings.dnd,
        forwarding: ext.settings.forwarding.clone(),
        no_answer_timeout: Duration::from_secs(u64::from(ext.settings.no_answer_timeout_secs)),
        max_calls: ext.settings.max_concurrent_calls,
    }
}

fn sip_transport(t: Transport) -> SipTransport {
    match t {
        Transport::Udp => SipTransport::Udp,
        Transport::Tcp => SipTransport::Tcp,
        Transport::Tls => SipTransport::Tls,
        Transport::Ws => SipTransport::Ws,
        Transport::Wss => SipTransport::Wss,
    }
}

impl Resolver {
    pub fn new(dir: Arc<dyn Directory>) -> Self {
        Self {
            dir,
            max_forward_hops: 5,
        }
    }

    /// What `dialled` leads to for a caller of `tenant` (the calling extension
    /// chooses the presented caller ID), with the outside-call limit applied
    /// against `calls`.
    pub async fn resolve(
        &self,
        tenant: TenantId,
        caller: Option<&ExtensionNumber>,
        dialled: &str,
        calls: &OutsideCalls,
    ) -> Result<Destination> {
        let lookup = self.lookup(tenant, caller, dialled).await?;
        Ok(lookup.decide(calls.live(tenant)))
    }

    /// Resolves `dialled`, the caller's own extension and every forwarding
    /// target reachable from the callee, and stores them in `plan` for the
    /// engine. Returns what `dialled` resolves to now (limit applied).
    pub async fn prepare(
        &self,
        plan: &PreparedPlan,
        tenant: TenantId,
        caller: Option<&ExtensionNumber>,
        dialled: &str,
    ) -> Result<Destination> {
        let now = Instant::now();
        plan.maybe_purge(now);
        let caller_str = caller.map(ExtensionNumber::as_str);
        // The same caller dialling the same thing within a second (a burst
        // of calls, a retried INVITE): what was prepared is still current.
        if let Some(d) = plan.recently_prepared(tenant, caller_str, dialled, now) {
            return Ok(d);
        }
        let first = self.lookup(tenant, caller, dialled).await?;
        plan.insert(tenant, caller_str, dialled, first.clone(), now);
        if let Some(c) = caller {
            let own = self.lookup(tenant, None, c.as_str()).await?;
            plan.insert(tenant, None, c.as_str(), own, now);
        }
        self.prepare_forwards(plan, tenant, caller, &first.destination, now)
            .await?;
        plan.mark_prepared(tenant, caller_str, dialled, now);
        Ok(first.decide(plan.outside_calls().live(tenant)))
    }

    /// Follows forwarding targets, ring groups' external members and
    /// fallbacks breadth-first, up to `max_forward_hops`.
    async fn prepare_forwards(
        &self,
        plan: &PreparedPlan,
        tenant: TenantId,
        caller: Option<&ExtensionNumber>,
        start: &Destination,
        now: Instant,
    ) -> Result<()> {
        let mut seen: Vec<String> = Vec::new();
        let mut frontier = vec![start.clone()];
        for _ in 0..self.max_forward_hops {
            let mut next = Vec::new();
            for dest in &frontier {
                let keys: Vec<String> = match dest {
                    Destination::Extension(p) => {
                        let f = &p.forwarding;
                        [&f.always, &f.busy, &f.no_answer]
                            .into_iter()
                            .flatten()
                            .map(|target| match target {
                                ForwardTarget::Extension(e) => e.as_str().to_owned(),
                                ForwardTarget::External(n) => n.as_str().to_owned(),
                            })
                            .collect()
                    }
                    // External members are dialled through the plan (caller
                    // ID, limit); the fallback is a number of the tenant.
                    Destination::RingGroup(g) => g
                        .members
                        .iter()
                        .filter_map(|m| match &m.target {
                            MemberTarget::External(n) => Some(n.clone()),
                            MemberTarget::Extension(_) => None,
                        })
                        .chain(g.fallback.clone())
                        .collect(),
                    _ => continue,
                };
                for key in keys {
                    if seen.contains(&key) {
                        continue;
                    }
                    seen.push(key.clone());
                    let l = self.lookup(tenant, caller, &key).await?;
                    next.push(l.destination.clone());
                    plan.insert(tenant, caller.map(ExtensionNumber::as_str), &key, l, now);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(())
    }

    /// An INVITE from a trunk for `dialled` (the Request-URI user): the
    /// number's tenant and route target. When a tenant is found, the result
    /// is also stored in `plan` under `dialled` for the engine's
    /// `on_inbound`.
    pub async fn prepare_inbound(&self, plan: &PreparedPlan, dialled: &str) -> Result<Inbound> {
        let inbound = self.resolve_inbound(dialled).await?;
        if let Some(t) = inbound.tenant {
            let now = Instant::now();
            let lookup = Lookup {
                destination: inbound.destination.clone(),
                outside_limit: 0,
                call_limit: inbound.call_limit,
            };
            plan.insert(t, None, dialled, lookup, now);
            self.prepare_forwards(plan, t, None, &inbound.destination, now)
                .await?;
        }
        Ok(inbound)
    }

    /// The inbound lookup alone (no caching).
    pub async fn resolve_inbound(&self, dialled: &str) -> Result<Inbound> {
        // Trunks send the number with or without the `+`.
        let trimmed = dialled.trim();
        let plus = if trimmed.starts_with('+') || trimmed.starts_with('0') {
            trimmed.to_owned()
        } else {
            format!("+{trimmed}")
        };
        let unknown = Inbound {
            tenant: None,
            destination: Destination::Unknown,
            call_limit: 0,
        };
        let Ok(e164) = plus.parse::<E164>() else {
            return Ok(unknown);
        };
        let number = match self.dir.get_number_by_e164(&e164).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(unknown),
            Err(e) => return Err(e),
        };
        let Some(tenant_id) = number.tenant_id else {
            return Ok(unknown);
        };
        let tenant = self.dir.get_tenant(tenant_id).await?;
        let destination = if tenant.suspended {
            refused(403, "tenant suspended")
        } else {
            self.route_target(tenant_id, number.route).await?
        };
        Ok(Inbound {
            tenant: Some(tenant_id),
            destination,
            call_limit: tenant.settings.max_concurrent_calls,
        })
    }

    /// What a public number's route target rings.
    async fn route_target(&self, tenant: TenantId, route: RouteTarget) -> Result<Destination> {
        Ok(match route {
            RouteTarget::None => Destination::Unknown,
            RouteTarget::Extension(id) => match self.dir.get_extension(tenant, id).await {
                Ok(ext) => Destination::Extension(profile(&ext)),
                Err(e) if e.is_not_found() => Destination::Unknown,
                Err(e) => return Err(e),
            },
            RouteTarget::RingGroup(id) => match self.dir.get_ring_group(tenant, id).await {
                Ok(g) => Destination::RingGroup(self.group_plan(tenant, g).await?),
                Err(e) if e.is_not_found() => Destination::Unknown,
                Err(e) => return Err(e),
            },
            RouteTarget::Ivr(_) => not_yet("IVR"),
            RouteTarget::Conference(_) => not_yet("conference"),
        })
    }

    /// A ring group with its members' profiles and its fallback's number.
    async fn group_plan(&self, tenant: TenantId, g: RingGroup) -> Result<RingGroupPlan> {
        let mut members = Vec::with_capacity(g.members.len());
        for (i, m) in g.members.iter().enumerate() {
            let position = u32::try_from(i).unwrap_or(u32::MAX);
            let target = match m {
                RingGroupMember::Extension(id) => match self.dir.get_extension(tenant, *id).await {
                    Ok(ext) => MemberTarget::Extension(profile(&ext)),
                    // Deleted meanwhile (deleting removes it from groups).
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                },
                RingGroupMember::External(n) => MemberTarget::External(n.as_str().to_owned()),
            };
            members.push(GroupMember { position, target });
        }
        let fallback = match g.settings.fallback {
            RouteTarget::None => None,
            RouteTarget::Extension(id) => match self.dir.get_extension(tenant, id).await {
                Ok(ext) => Some(ext.number.to_string()),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
            RouteTarget::RingGroup(id) => match self.dir.get_ring_group(tenant, id).await {
                Ok(other) => Some(other.number.to_string()),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
            // Not callable yet: the caller gets the group's own answer.
            RouteTarget::Ivr(_) | RouteTarget::Conference(_) => None,
        };
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Ok(RingGroupPlan {
            id: g.id,
            number: g.number,
            name: g.settings.name,
            strategy: g.settings.strategy,
            ring_timeout: secs(g.settings.ring_timeout_secs),
            member_timeout: secs(g.settings.member_timeout_secs),
            members,
            last_answered: g.last_answered_member,
            fallback,
        })
    }

    /// The destination before the outside-call limit.
    pub async fn lookup(
        &self,
        tenant_id: TenantId,
        caller: Option<&ExtensionNumber>,
        dialled: &str,
    ) -> Result<Lookup> {
        let tenant = self.dir.get_tenant(tenant_id).await?;
        let outside_limit = tenant.settings.max_outside_calls;
        let call_limit = tenant.settings.max_concurrent_calls;
        let lookup = |destination| Lookup {
            destination,
            outside_limit,
            call_limit,
        };
        let class = classify(dialled);
        if tenant.suspended && !matches!(class, Dialled::Emergency(_)) {
            return Ok(lookup(refused(403, "tenant suspended")));
        }
        let destination = match class {
            Dialled::Invalid(why) => {
                tracing::debug!(%tenant_id, dialled, why, "dial plan: not a number");
                Destination::Unknown
            }
            Dialled::Short(n) => match self.dir.resolve_dialable(tenant_id, &n).await {
                Ok(target) => self.route_target(tenant_id, target).await?,
                Err(e) if e.is_not_found() => Destination::Unknown,
                Err(e) => return Err(e),
            },
            Dialled::Emergency(code) => {
                let trunks = self.dir.list_emergency_trunks().await?;
                let cid = self.caller_id(&tenant, caller).await?;
                let routes = self.routes(&trunks, code, cid.as_ref()).await;
                if routes.is_empty() {
                    tracing::error!(%tenant_id, code, "no emergency trunk can be reached");
                    refused(503, "no emergency trunk available")
                } else {
                    Destination::Outside(OutsideCall {
                        number: code.to_owned(),
                        routes,
                        emergency: true,
                    })
                }
            }
            Dialled::Number(n) => self.outside(&tenant, caller, &n).await?,
        };
        Ok(lookup(destination))
    }

    async fn outside(
        &self,
        tenant: &Tenant,
        caller: Option<&ExtensionNumber>,
        number: &E164,
    ) -> Result<Destination> {
        let held = self.held_numbers(tenant.id).await?;
        if let Some(own) = held.iter().find(|h| h.e164 == *number) {
            // One of the tenant's own numbers: ring its target, no trunk.
            return self.route_target(tenant.id, own.route).await;
        }
        match super::tariff(number) {
            Tariff::Premium if !tenant.settings.allow_premium => {
                return Ok(refused(
                    403,
                    format!("premium-rate numbers are not allowed for this tenant ({number})"),
                ));
            }
            Tariff::Special(kind) if !tenant.settings.allow_premium => {
                return Ok(refused(
                    403,
                    format!(
                        "{kind} numbers are not allowed for this tenant ({number}); \
                         the operator can allow premium and special-rate calls"
                    ),
                ));
            }
            _ => {}
        }
        if super::tariff(number) == Tariff::International && !tenant.settings.allow_international {
            return Ok(refused(
                403,
                format!("international calls are not allowed for this tenant ({number})"),
            ));
        }
        let Some(cid) = self.pick_caller_id(tenant, caller, &held).await? else {
            return Ok(refused(403, "the tenant holds no number to present"));
        };
        let trunks = self.dir.list_outbound_trunks().await?;
        let routes = self.routes(&trunks, number.as_str(), Some(&cid)).await;
        if routes.is_empty() {
            return Ok(refused(503, "no outbound trunk available"));
        }
        Ok(Destination::Outside(OutsideCall {
            number: number.as_str().to_owned(),
            routes,
            emergency: false,
        }))
    }

    /// Every number the tenant holds, in E.164 order.
    async fn held_numbers(&self, tenant: TenantId) -> Result<Vec<Number>> {
        let mut out = Vec::new();
        loop {
            let page = Page::new(
                Page::MAX_LIMIT,
                u32::try_from(out.len()).unwrap_or(u32::MAX),
            );
            let got = self
                .dir
                .list_numbers(NumberScope::Tenant(tenant), page)
                .await?;
            let n = got.items.len();
            out.extend(got.items);
            if n == 0 || out.len() as u64 >= got.total {
                return Ok(out);
            }
        }
    }

    /// The presented caller ID for `caller` of `tenant` (see the module docs).
    pub async fn caller_id(
        &self,
        tenant: &Tenant,
        caller: Option<&ExtensionNumber>,
    ) -> Result<Option<E164>> {
        let held = self.held_numbers(tenant.id).await?;
        self.pick_caller_id(tenant, caller, &held).await
    }

    async fn pick_caller_id(
        &self,
        tenant: &Tenant,
        caller: Option<&ExtensionNumber>,
        held: &[Number],
    ) -> Result<Option<E164>> {
        if let Some(c) = caller {
            match self.dir.get_extension_by_number(tenant.id, c).await {
                Ok(ext) => {
                    let own = RouteTarget::Extension(ext.id);
                    if let Some(n) = held.iter().find(|n| n.route == own) {
                        return Ok(Some(n.e164.clone()));
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(tenant
            .settings
            .main_number
            .clone()
            .or_else(|| held.first().map(|n| n.e164.clone())))
    }

    /// One route per trunk whose address resolves, in the given order.
    async fn routes(&self, trunks: &[Trunk], number: &str, cid: Option<&E164>) -> Vec<TrunkRoute> {
        let mut routes = Vec::with_capacity(trunks.len());
        for trunk in trunks {
            match self.route(trunk, number, cid).await {
                Some(r) => routes.push(r),
                None => {
                    tracing::warn!(trunk = %trunk.settings.name, "trunk skipped: its address does not resolve")
                }
            }
        }
        routes
    }

    async fn route(&self, trunk: &Trunk, number: &str, cid: Option<&E164>) -> Option<TrunkRoute> {
        let s = &trunk.settings;
        let addr: SocketAddr = tokio::net::lookup_host((s.host.as_str(), s.port))
            .await
            .ok()?
            .next()?;
        let host = if s.host.contains(':') {
            format!("[{}]", s.host)
        } else {
            s.host.clone()
        };
        let hostport = if s.port == 5060 {
            host.clone()
        } else {
            format!("{host}:{}", s.port)
        };
        let request_uri = Uri::parse(&format!("sip:{number}@{hostport}")).ok()?;
        let from_host = s.from_domain.clone().unwrap_or(host);
        let from = match cid {
            Some(n) => format!("<sip:{n}@{from_host}>"),
            None => format!("\"Anonymous\" <sip:anonymous@{from_host}>"),
        };
        let credentials = match (&s.username, &s.password) {
            (Some(u), Some(p)) => Some(TrunkCredentials {
                username: u.clone(),
                password: p.expose().to_owned(),
            }),
            _ => None,
        };
        Some(TrunkRoute {
            trunk: trunk.id,
            dest: Target::new(sip_transport(s.transport), addr),
            request_uri,
            from,
            credentials,
        })
    }
}
