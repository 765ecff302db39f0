//! Transaction users for the scenarios: small scripted UA/UAS cores.

use std::time::{Duration, Instant};

use sip::transaction::{Event, TxKey};
use sip::{Message, Method, Request, Response, StatusCode};

use crate::sim::{Ctx, Side, Tu, code, request};

/// Server TU for INVITEs: optional 180 at once, then a final response after
/// `delay`. With `retransmit_2xx` it also does the UAS core's job for 2xx
/// (RFC 3261 §13.3.1.4): resend it, T1 doubling to T2, until the ACK.
pub struct InviteAnswer {
    pub ring: bool,
    pub final_code: u16,
    pub delay: Duration,
    pub pending: Option<(Instant, TxKey, Request)>,
    pub retransmit_2xx: Option<(Instant, Duration, TxKey, Response)>,
    pub acks_for_2xx: usize,
}

impl InviteAnswer {
    pub fn new(ring: bool, final_code: u16, delay: Duration) -> Self {
        InviteAnswer {
            ring,
            final_code,
            delay,
            pending: None,
            retransmit_2xx: None,
            acks_for_2xx: 0,
        }
    }
}

impl Tu for InviteAnswer {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        match ev {
            Event::Request { key, request, .. } if request.method == Method::Invite => {
                if self.ring {
                    let r = request.response_tagged(StatusCode::RINGING);
                    cx.layer.send_response(key, r, cx.now).unwrap();
                }
                self.pending = Some((cx.now + self.delay, key.clone(), request.clone()));
            }
            Event::Ack { invite: None, .. } => {
                self.acks_for_2xx += 1;
                self.retransmit_2xx = None;
            }
            _ => {}
        }
    }
    fn wakeup(&self) -> Option<Instant> {
        [
            self.pending.as_ref().map(|p| p.0),
            self.retransmit_2xx.as_ref().map(|r| r.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }
    fn on_wakeup(&mut self, cx: &mut Ctx<'_>) {
        if let Some((at, key, req)) = self.pending.take() {
            if at > cx.now {
                self.pending = Some((at, key, req));
            } else {
                let r = req.response_tagged(StatusCode::new(self.final_code).unwrap());
                cx.layer.send_response(&key, r.clone(), cx.now).unwrap();
                if r.status.is_success() {
                    let t1 = cx.layer.config().t1;
                    self.retransmit_2xx = Some((cx.now + t1, t1, key, r));
                }
            }
        }
        if let Some((at, interval, key, r)) = self.retransmit_2xx.take() {
            if at > cx.now {
                self.retransmit_2xx = Some((at, interval, key, r));
            } else if cx.now - cx.t0 < Duration::from_secs(32) {
                cx.layer.send_response(&key, r.clone(), cx.now).unwrap();
                let next = (interval * 2).min(cx.layer.config().t2);
                self.retransmit_2xx = Some((cx.now + next, next, key, r));
            }
        }
    }
}

/// Client TU that ACKs every 2xx itself (new branch, outside the INVITE
/// transaction), as a UAC core does.
pub struct AckOn2xx;
impl Tu for AckOn2xx {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Response { key, response } = ev {
            if key.method() == &Method::Invite && response.status.is_success() {
                let mut ack = request(Method::Ack, cx.peer.transport, "call", 1);
                ack.headers.set("To", response.headers.get("To").unwrap());
                let branch = cx.layer.new_branch();
                ack.headers.set(
                    "Via",
                    &format!(
                        "SIP/2.0/{} 127.0.0.1:5070;rport;branch={branch}",
                        cx.peer.transport
                    ),
                );
                cx.layer.send_stateless(&Message::Request(ack), cx.peer);
            }
        }
    }
}

/// A network filter losing every ACK sent within 2 s of the first `status`
/// response the server sends.
pub fn ack_blackout(status: u16) -> impl FnMut(Side, &Message, Duration) -> bool {
    let mut first: Option<Duration> = None;
    move |_, m, t| {
        if m.as_response().is_some_and(|r| code(r) == status) && first.is_none() {
            first = Some(t);
        }
        is_ack(m) && first.is_none_or(|f| t < f + Duration::from_secs(2))
    }
}

pub fn is_ack(m: &Message) -> bool {
    m.as_request().is_some_and(|r| r.method == Method::Ack)
}

/// Two TUs in one: INVITEs to the first, everything else to the second.
pub struct Both<A, B>(pub A, pub B);
impl<A: Tu, B: Tu> Tu for Both<A, B> {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        self.0.on_event(cx, ev);
        self.1.on_event(cx, ev);
    }
    fn wakeup(&self) -> Option<Instant> {
        [self.0.wakeup(), self.1.wakeup()]
            .into_iter()
            .flatten()
            .min()
    }
    fn on_wakeup(&mut self, cx: &mut Ctx<'_>) {
        if self.0.wakeup().is_some_and(|w| w <= cx.now) {
            self.0.on_wakeup(cx);
        }
        if self.1.wakeup().is_some_and(|w| w <= cx.now) {
            self.1.on_wakeup(cx);
        }
    }
}

/// Client TU that cancels its INVITE — at once (the CANCEL then waits for a
/// provisional, §9.1) or on the first provisional response.
pub struct Canceller {
    pub immediately: bool,
    pub invite: Option<TxKey>,
    pub cancel: Option<TxKey>,
}
impl Tu for Canceller {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Response { key, response } = ev {
            if Some(key) == self.invite.as_ref()
                && response.status.is_provisional()
                && self.cancel.is_none()
            {
                self.cancel = Some(cx.layer.cancel(key, cx.now).unwrap());
            }
        }
    }
}

/// Server TU that rings and never answers; on CANCEL it answers 200 to the
/// CANCEL and 487 to the INVITE (RFC 3261 §9.2).
pub struct RingForever;
impl Tu for RingForever {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        let Event::Request {
            key,
            request,
            cancels,
            ..
        } = ev
        else {
            return;
        };
        match request.method {
            Method::Invite => {
                let r = request.response_tagged(StatusCode::RINGING);
                cx.layer.send_response(key, r, cx.now).unwrap();
            }
            Method::Cancel => {
                let Some(invite) = cancels else {
                    let r = request.response_tagged(StatusCode::new(481).unwrap());
                    cx.layer.send_response(key, r, cx.now).unwrap();
                    return;
                };
                assert_eq!(invite, &key.with_method(Method::Invite));
                let ok = request.response_tagged(StatusCode::OK);
                cx.layer.send_response(key, ok, cx.now).unwrap();
                // The 487 carries the INVITE's To tag: same request headers.
                let mut term = request.response_tagged(StatusCode::new(487).unwrap());
                term.headers.set("CSeq", "1 INVITE");
                let _ = cx.layer.send_response(invite, term, cx.now);
            }
            _ => {}
        }
    }
}

/// Server TU answering non-INVITE requests `code` after a per-request delay
/// (`delay_ms(n)` for the n-th request), optionally sending 100 first.
pub struct SlowAnswer {
    pub code: u16,
    pub trying_first: bool,
    pub delay_ms: Box<dyn FnMut(usize) -> u64>,
    pub seen: usize,
    pub pending: Vec<(Instant, TxKey, Request)>,
}

impl SlowAnswer {
    pub fn new(
        code: u16,
        trying_first: bool,
        delay_ms: impl FnMut(usize) -> u64 + 'static,
    ) -> Self {
        SlowAnswer {
            code,
            trying_first,
            delay_ms: Box::new(delay_ms),
            seen: 0,
            pending: Vec::new(),
        }
    }
}

impl Tu for SlowAnswer {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Request { key, request, .. } = ev {
            if self.trying_first {
                let r = request.response(StatusCode::TRYING);
                cx.layer.send_response(key, r, cx.now).unwrap();
            }
            let delay = Duration::from_millis((self.delay_ms)(self.seen));
            self.seen += 1;
            self.pending
                .push((cx.now + delay, key.clone(), request.clone()));
        }
    }
    fn wakeup(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.0).min()
    }
    fn on_wakeup(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| p.0 <= now);
        self.pending = later;
        for (_, key, request) in due {
            let r = request.response_tagged(StatusCode::new(self.code).unwrap());
            cx.layer.send_response(&key, r, now).unwrap();
        }
    }
}
