//! Outside calls: B-legs towards trunks, tried one at a time in the dial
//! plan's order, failing over on 5xx, 408 or silence, and answering the
//! provider's digest challenge.

use std::net::IpAddr;
use std::time::Instant;

use sip::auth::Challenge;
use sip::{Method, Response};
use store::{Direction, Disposition};

use super::dialog::Dialog;
use super::engine::{Call, CallEngine, ForkState, TrunkLeg};
use super::media::MediaError;
use super::{OutsideCall, TrunkRoute};
use crate::trunks::inbound::in_net;

/// Whether a trunk's final response means "try the next trunk": the
/// provider failed (5xx), timed out (408), or never answered. Anything
/// else (404, 486, 603...) is the far end's answer and goes to the caller.
pub(crate) fn is_failover(code: u16) -> bool {
    code == 408 || (500..600).contains(&code)
}

impl CallEngine {
    /// Replaces what the engine knows of the trunks' addresses (their
    /// `inbound_source` blocks and resolved hosts): in-dialog requests on a
    /// trunk leg are accepted from any of them (carriers send from SBC
    /// pools).
    pub fn set_trunk_networks(
        &mut self,
        networks: impl IntoIterator<Item = (store::TrunkId, IpAddr, u8)>,
    ) {
        self.trunk_nets.clear();
        for (trunk, net, prefix) in networks {
            self.trunk_nets
                .entry(trunk)
                .or_default()
                .push((net, prefix));
        }
    }

    /// Whether a request from `source` may act on dialog `d`: a phone's
    /// dialog only from the flow it was set up over (UDP: same address and
    /// port; TCP/TLS/WS: the same connection's address); a trunk's from the
    /// peer's IP or any of the trunk's configured addresses.
    pub(crate) fn is_leg_flow(
        &self,
        d: &super::dialog::Dialog,
        source: sip::transaction::Target,
    ) -> bool {
        if source == d.peer {
            return true;
        }
        let Some(trunk) = d.trunk else {
            return false;
        };
        let ip = source.addr.ip();
        in_net(ip, d.peer.addr.ip(), if ip.is_ipv4() { 32 } else { 128 })
            || self
                .trunk_nets
                .get(&trunk)
                .is_some_and(|nets| nets.iter().any(|&(n, p)| in_net(ip, n, p)))
    }

    /// Starts an outside call (or a forward to an outside number).
    pub(crate) fn route_outside(&mut self, call: &mut Call, outside: OutsideCall, now: Instant) {
        call.direction = if outside.emergency {
            Direction::Emergency
        } else {
            Direction::Outbound
        };
        if !outside.emergency && !call.outside_counted {
            call.outside_counted = true;
            self.outside_started.push_back(call.tenant);
        }
        call.callee = outside.number;
        call.routes = outside.routes.into();
        let emergency = outside.emergency;
        let Some(first) = call.routes.pop_front() else {
            return self.fail(call, 503, Disposition::Failed, "no trunk available", now);
        };
        let Some(first) = self.pick_trunk(first, &mut call.routes, emergency, now) else {
            return self.fail(
                call,
                503,
                Disposition::Failed,
                "no trunk available: every trunk is over its call rate",
                now,
            );
        };
        if let Err(e) = self.open_media(call) {
            let code = if matches!(e, MediaError::Exhausted) {
                503
            } else {
                488
            };
            return self.fail(call, code, Disposition::Failed, &e.to_string(), now);
        }
        call.round += 1;
        call.failures.clear();
        call.no_answer_at = (!outside.emergency).then(|| now + self.config.outside_ring_timeout);
        self.start_trunk_fork(call, first, now);
    }

    fn start_trunk_fork(&mut self, call: &mut Call, route: TrunkRoute, now: Instant) {
        call.trunk = Some(route.trunk);
        self.launch_trunk_leg(call, route, now);
    }

    /// Sends the INVITE of a B-leg through `route`; returns the fork's index.
    pub(crate) fn launch_trunk_leg(
        &mut self,
        call: &mut Call,
        route: TrunkRoute,
        now: Instant,
    ) -> usize {
        let call_id = format!("{}@switchboard", self.tokens.next());
        let tag = self.tokens.next();
        let mut dialog = Dialog::uac(
            call_id,
            tag.clone(),
            route.from.clone(),
            format!("<{}>", route.request_uri),
            route.request_uri.clone(),
            route.dest,
            self.contact(route.dest.transport),
        );
        dialog.trunk = Some(route.trunk);
        tracing::debug!(call = call.id, trunk = %route.trunk, "trying trunk");
        let leg = TrunkLeg {
            route,
            auth_tried: false,
            setup_deadline: Some(now + self.config.trunk_setup_timeout),
        };
        self.launch_fork(call, dialog, tag, Some(leg));
        call.forks.len() - 1
    }

    /// Every B-leg of the round failed: the next trunk, if the failure was
    /// the trunk's. Returns whether a trunk was tried.
    pub(crate) fn fail_over(&mut self, call: &mut Call, now: Instant) -> bool {
        let trunk_failed = call.failures.last().is_some_and(|&c| is_failover(c));
        if !trunk_failed {
            return false;
        }
        let Some(next) = call.routes.pop_front() else {
            return false;
        };
        let emergency = call.direction == Direction::Emergency;
        let Some(next) = self.pick_trunk(next, &mut call.routes, emergency, now) else {
            return false;
        };
        self.start_trunk_fork(call, next, now);
        true
    }

    /// The trunk to try now, from `first` and then `rest` in order: a trunk
    /// the keepalive found down is put at the back of `rest` (tried only
    /// after the others), and one over its call rate is passed over
    /// (emergency calls are never rate limited). `None`: every trunk is over
    /// its rate.
    pub(crate) fn pick_trunk(
        &self,
        first: TrunkRoute,
        rest: &mut std::collections::VecDeque<TrunkRoute>,
        emergency: bool,
        now: Instant,
    ) -> Option<TrunkRoute> {
        let status = &self.trunk_status;
        let mut down = Vec::new();
        let mut next = Some(first);
        while let Some(route) = next.take().or_else(|| rest.pop_front()) {
            if status.is_down(route.trunk) {
                tracing::debug!(trunk = %route.trunk, "trunk down: tried last");
                down.push(route);
                continue;
            }
            if emergency || status.take_call(route.trunk, now) {
                rest.extend(down);
                return Some(route);
            }
            tracing::info!(trunk = %route.trunk, "trunk call rate exceeded: next trunk");
            metrics::counter!("trunk_rate_limited_total", "direction" => "outbound").increment(1);
        }
        // only trunks believed down remain: try them anyway, in order
        let mut down = down.into_iter();
        while let Some(route) = down.next() {
            if emergency || status.take_call(route.trunk, now) {
                rest.extend(down);
                return Some(route);
            }
        }
        None
    }

    /// A 401/407 on a trunk leg: re-sends the INVITE once with credentials
    /// (same dialog, next CSeq, RFC 3261 §22.2). Returns whether it did.
    pub(crate) fn answer_trunk_challenge(
        &mut self,
        call: &mut Call,
        i: usize,
        resp: &Response,
    ) -> bool {
        let header = if resp.status.as_u16() == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let fork = &call.forks[i];
        let Some(leg) = &fork.trunk else { return false };
        let Some(creds) = &leg.route.credentials else {
            return false;
        };
        let ringing = call.phase == super::CallPhase::Ringing || call.transfer.is_some();
        if leg.auth_tried || fork.cancelled || !ringing {
            return false;
        }
        let Some(challenge) = resp
            .headers
            .get_all(header.0)
            .find_map(|v| Challenge::parse(v).ok())
        else {
            return false;
        };
        let uri = leg.route.request_uri.to_string();
        let cnonce = self.tokens.next();
        let answer = challenge
            .answer(&creds.username, &creds.password, "INVITE", &uri, 1, &cnonce)
            .to_header_value();
        let branch = self.tokens.branch();
        let mut dialog = call.forks[i].dialog.clone();
        let mut invite = self.fork_invite(call, &mut dialog, &branch);
        invite.headers.push(header.1, &answer);
        let fork = &mut call.forks[i];
        fork.dialog = dialog;
        fork.invite = invite.clone();
        fork.branch = branch;
        fork.state = ForkState::Calling;
        if let Some(t) = &mut fork.trunk {
            t.auth_tried = true;
        }
        let dest = fork.dialog.peer;
        debug_assert_eq!(invite.method, Method::Invite);
        self.send_request(call, invite, dest);
        true
    }

    /// Trunk legs that stayed silent past the set-up timeout are abandoned
    /// (cancelled if they wake up) and the next trunk is tried.
    pub(crate) fn trunk_timeouts(&mut self, call: &mut Call, now: Instant) {
        for i in 0..call.forks.len() {
            let fork = &mut call.forks[i];
            let Some(t) = &mut fork.trunk else { continue };
            if t.setup_deadline.is_none_or(|d| d > now) {
                continue;
            }
            t.setup_deadline = None;
            if fork.state != ForkState::Calling {
                continue;
            }
            tracing::debug!(call = call.id, trunk = %t.route.trunk, "trunk silent, failing over");
            self.cancel_fork(call, i, None);
            let fork = &mut call.forks[i];
            fork.state = ForkState::Done;
            if call.transfer.as_ref().is_some_and(|t| i >= t.first_fork) {
                self.transfer_leg_failed(call, i, "408 Request Timeout", now);
                continue;
            }
            let fork = &mut call.forks[i];
            if fork.member.is_some() && fork.round == call.round && call.group.is_some() {
                self.member_failed(call, i, 408, now);
                continue;
            }
            if fork.round == call.round {
                call.failures.push(408);
            }
            self.check_all_failed(call, now);
        }
    }
}

impl CallEngine {
    /// An out-of-dialog request from Switchboard itself to a trunk (the
    /// OPTIONS keepalive, REGISTER to the provider): our Via and Contact,
    /// a fresh branch, and a fresh Call-ID and From tag unless given.
    pub(crate) fn trunk_request(
        &mut self,
        method: Method,
        uri: sip::Uri,
        (from, to): (&str, &str),
        dest: sip::transaction::Target,
        call_id: Option<&str>,
        cseq: u32,
    ) -> sip::Request {
        let mut req = sip::Request::new(method.clone(), uri);
        let branch = self.tokens.branch();
        req.headers.push(
            "Via",
            &format!(
                "SIP/2.0/{} {};branch={branch};rport",
                dest.transport, self.config.sip_addr
            ),
        );
        req.headers.push("Max-Forwards", "70");
        let tag = self.tokens.next();
        req.headers.push("From", &format!("{from};tag={tag}"));
        req.headers.push("To", to);
        let call_id = match call_id {
            Some(c) => c.to_owned(),
            None => format!("{}@switchboard", self.tokens.next()),
        };
        req.headers.push("Call-ID", &call_id);
        req.headers.push("CSeq", &format!("{cseq} {method}"));
        req.headers.push("Contact", &self.contact(dest.transport));
        req
    }

    /// Our SIP address (Via sent-by, Contact host).
    pub(crate) fn sip_addr(&self) -> std::net::SocketAddr {
        self.config.sip_addr
    }
}
