//! A scripted SIP phone behind its own transaction layer: it places calls,
//! answers them according to a [`Behavior`], and logs what it saw.

// Shared by several test binaries; each uses a part.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::transaction::{Config, Event, Target, TransactionLayer, Transport, TxKey};
use sip::{Message, Method, Request, Response, StatusCode, Uri};

/// How a phone treats an incoming INVITE.
#[derive(Clone, Copy, Debug)]
pub enum Behavior {
    /// 180 at once, 200 after the delay (`None`: rings until cancelled).
    Ring {
        answer_after: Option<Duration>,
        early_media: bool,
    },
    /// A final response at once (486, 603...).
    Reject(u16),
}

/// One dialog as the phone keeps it.
#[derive(Clone, Debug)]
pub struct PhoneDialog {
    pub call_id: String,
    pub local: String,
    pub remote: String,
    pub target: Uri,
    pub cseq: u32,
}

#[derive(Debug)]
pub struct Incoming {
    pub key: TxKey,
    pub invite: Request,
    pub tag: String,
    pub answer_at: Option<Instant>,
    pub ok: Option<Response>,
    pub ok_next: Option<Instant>,
    pub acked: bool,
    pub finished: bool,
    pub dialog: PhoneDialog,
}

pub struct Phone {
    pub name: &'static str,
    pub ext: &'static str,
    pub addr: SocketAddr,
    pub layer: TransactionLayer,
    pub behavior: Behavior,
    pub requests: Vec<Request>,
    pub responses: Vec<Response>,
    pub incoming: Vec<Incoming>,
    pub outgoing: Option<(TxKey, Request)>,
    pub dialog: Option<PhoneDialog>,
    pub reinvite_status: u16,
    pub max_forwards: u8,
    /// Offer SDP in INVITEs; ACK 2xx responses; a Require header to send.
    pub send_sdp: bool,
    pub ack_2xx: bool,
    pub require: Option<&'static str>,
    /// Act as a provider demanding digest auth: (verifier, realm, HA1).
    pub challenge: Option<(sip::auth::Verifier, &'static str, String)>,
    /// 2xx to re-INVITEs awaiting their ACK: (key, response, CSeq, next send).
    pub reinvite_oks: Vec<(TxKey, Response, u32, Instant)>,
    pub ended: bool,
    /// Headers added to the next in-dialog request.
    pub extra_headers: Vec<(&'static str, String)>,
    /// The SDP offered in new calls instead of the default one.
    pub offer: Option<Vec<u8>>,
    server: Target,
    counter: u32,
}

pub fn sdp(ip: &str, port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 7 7 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    .into_bytes()
}

fn tag_of(v: Option<&str>) -> Option<String> {
    v.and_then(|v| sip::NameAddr::parse(v, "To").ok())
        .and_then(|n| n.tag().map(str::to_owned))
}

impl Phone {
    pub fn new(
        name: &'static str,
        ext: &'static str,
        addr: SocketAddr,
        server: SocketAddr,
        seed: u64,
    ) -> Phone {
        Phone {
            name,
            ext,
            addr,
            layer: TransactionLayer::new(Config::default(), seed),
            behavior: Behavior::Ring {
                answer_after: Some(Duration::from_secs(2)),
                early_media: false,
            },
            requests: Vec::new(),
            responses: Vec::new(),
            incoming: Vec::new(),
            outgoing: None,
            dialog: None,
            reinvite_status: 200,
            max_forwards: 70,
            send_sdp: true,
            ack_2xx: true,
            require: None,
            challenge: None,
            reinvite_oks: Vec::new(),
            ended: false,
            extra_headers: Vec::new(),
            offer: None,
            server: Target::new(Transport::Udp, server),
            counter: 0,
        }
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    fn body(&self) -> Vec<u8> {
        sdp(&self.ip(), 40000 + self.addr.port() % 1000)
    }

    /// Places a call to `dialled`.
    pub fn call(&mut self, dialled: &str, now: Instant) -> TxKey {
        self.counter += 1;
        let uri = Uri::parse(&format!("sip:{dialled}@pbx.test")).unwrap();
        let mut r = Request::new(Method::Invite, uri.clone());
        r.headers
            .push("Via", &format!("SIP/2.0/UDP {};rport", self.addr));
        r.headers
            .push("Max-Forwards", &self.max_forwards.to_string());
        let local = format!(
            "<sip:{}@pbx.test>;tag={}-t{}",
            self.ext, self.name, self.counter
        );
        r.headers.push("From", &local);
        r.headers.push("To", &format!("<sip:{dialled}@pbx.test>"));
        let call_id = format!("{}-{}@{}", self.name, self.counter, self.ip());
        r.headers.push("Call-ID", &call_id);
        r.headers.push("CSeq", "1 INVITE");
        r.headers
            .push("Contact", &format!("<sip:{}@{}>", self.ext, self.addr));
        if let Some(req) = self.require {
            r.headers.push("Require", req);
        }
        for (name, value) in &self.extra_headers {
            r.headers.push(name, value);
        }
        if self.send_sdp {
            r.headers.push("Content-Type", "application/sdp");
            r.body = self.offer.clone().unwrap_or_else(|| self.body());
        }
        self.dialog = Some(PhoneDialog {
            call_id,
            local,
            remote: format!("<sip:{dialled}@pbx.test>"),
            target: uri,
            cseq: 1,
        });
        let key = self
            .layer
            .send_request(r.clone(), self.server, now)
            .unwrap();
        self.outgoing = Some((key.clone(), r));
        key
    }

    /// CANCELs the outgoing INVITE.
    pub fn cancel(&mut self, now: Instant) {
        if let Some((key, _)) = &self.outgoing {
            let _ = self.layer.cancel(key, now);
        }
    }

    /// Sends `method` in the phone's current dialog (outgoing call, or the
    /// last answered incoming one).
    pub fn send_in_dialog(&mut self, method: Method, body: bool, now: Instant) -> Option<TxKey> {
        let sdp_body = body.then(|| self.body());
        self.send_in_dialog_with_body(method, sdp_body, now)
    }

    /// Like [`Phone::send_in_dialog`] with a given SDP body.
    pub fn send_in_dialog_with(
        &mut self,
        method: Method,
        body: Vec<u8>,
        now: Instant,
    ) -> Option<TxKey> {
        self.send_in_dialog_with_body(method, Some(body), now)
    }

    /// REFER in the current dialog (a blind transfer to `refer_to`).
    pub fn refer(&mut self, refer_to: &str, now: Instant) -> Option<TxKey> {
        self.extra_headers = vec![("Refer-To", refer_to.to_owned())];
        let key = self.send_in_dialog_with_body(Method::Refer, None, now);
        self.extra_headers.clear();
        key
    }

    fn send_in_dialog_with_body(
        &mut self,
        method: Method,
        sdp_body: Option<Vec<u8>>,
        now: Instant,
    ) -> Option<TxKey> {
        let addr = self.addr;
        let d = self.current_dialog()?;
        d.cseq += 1;
        let mut r = Request::new(method.clone(), d.target.clone());
        r.headers.push("Via", &format!("SIP/2.0/UDP {addr};rport"));
        r.headers.push("Max-Forwards", "70");
        r.headers.push("From", &d.local);
        r.headers.push("To", &d.remote);
        r.headers.push("Call-ID", &d.call_id);
        r.headers
            .push("CSeq", &format!("{} {}", d.cseq, method.as_str()));
        if method == Method::Invite {
            r.headers.push("Contact", &format!("<sip:x@{addr}>"));
        }
        for (name, value) in &self.extra_headers {
            r.headers.push(name, value);
        }
        if let Some(b) = sdp_body {
            r.headers.push("Content-Type", "application/sdp");
            r.body = b;
        }
        self.layer.send_request(r, self.server, now).ok()
    }

    fn current_dialog(&mut self) -> Option<&mut PhoneDialog> {
        if let Some(i) = self.incoming.iter().rposition(|c| c.ok.is_some()) {
            return Some(&mut self.incoming[i].dialog);
        }
        self.dialog.as_mut()
    }

    pub fn next_timeout(&mut self) -> Option<Instant> {
        let own = self
            .incoming
            .iter()
            .flat_map(|c| [c.answer_at, c.ok_next])
            .chain(self.reinvite_oks.iter().map(|r| Some(r.3)))
            .flatten()
            .min();
        [own, self.layer.poll_timeout()].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        for (key, ok, _, next) in &mut self.reinvite_oks {
            if *next <= now {
                let _ = self.layer.send_response(key, ok.clone(), now);
                *next = now + Duration::from_millis(500);
            }
        }
        let body = self.body();
        let contact = format!("<sip:{}@{}>", self.ext, self.addr);
        for c in &mut self.incoming {
            if c.answer_at.is_some_and(|t| t <= now) && !c.finished {
                c.answer_at = None;
                let mut ok = c.invite.response(StatusCode::OK);
                ok.set_to_tag(&c.tag);
                ok.headers.push("Contact", &contact);
                let ok = ok.with_body("application/sdp", body.clone());
                let _ = self.layer.send_response(&c.key, ok.clone(), now);
                c.ok = Some(ok);
                c.ok_next = Some(now + Duration::from_millis(500));
                c.finished = true;
            } else if c.ok_next.is_some_and(|t| t <= now) {
                if c.acked {
                    c.ok_next = None;
                } else {
                    let _ = self.layer.send_response(&c.key, c.ok.clone().unwrap(), now);
                    c.ok_next = Some(now + Duration::from_secs(1));
                }
            }
        }
    }

    pub fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Request {
                key,
                request,
                cancels,
                ..
            } => self.on_request(key, request, cancels, now),
            Event::Response { response, .. } | Event::StrayResponse { response, .. } => {
                self.on_response(response)
            }
            Event::Ack { request, .. } => {
                let seq = request.cseq().ok().flatten().map_or(0, |c| c.seq);
                self.reinvite_oks.retain(|r| r.2 != seq);
                let cid = request.headers.get("Call-ID").unwrap_or("").to_owned();
                for c in &mut self.incoming {
                    if c.invite.headers.get("Call-ID") == Some(cid.as_str()) {
                        c.acked = true;
                    }
                }
                self.requests.push(request);
            }
            _ => {}
        }
    }

    fn on_request(&mut self, key: TxKey, req: Request, cancels: Option<TxKey>, now: Instant) {
        self.requests.push(req.clone());
        let has_tag = tag_of(req.headers.get("To")).is_some();
        match req.method {
            Method::Invite if !has_tag && !self.authorized(&req) => {
                let now_unix = Duration::from_secs(1_800_000_000);
                let (v, realm, _) = self.challenge.as_ref().unwrap();
                let mut r = req.response(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
                r.set_to_tag("chal");
                for h in v.challenge_headers(realm, false, now_unix) {
                    r.headers.push("Proxy-Authenticate", &h);
                }
                let _ = self.layer.send_response(&key, r, now);
            }
            Method::Invite if !has_tag => {
                let tag = format!("{}-r{}", self.name, self.incoming.len());
                let remote_target = match req.contacts() {
                    Ok(sip::Contacts::List(l)) if !l.is_empty() => l[0].uri.to_uri(),
                    _ => req.uri.clone(),
                };
                let dialog = PhoneDialog {
                    call_id: req.headers.get("Call-ID").unwrap().to_owned(),
                    local: format!("{};tag={tag}", req.headers.get("To").unwrap()),
                    remote: req.headers.get("From").unwrap().to_owned(),
                    target: remote_target,
                    cseq: 100,
                };
                let mut inc = Incoming {
                    key: key.clone(),
                    invite: req.clone(),
                    tag: tag.clone(),
                    answer_at: None,
                    ok: None,
                    ok_next: None,
                    acked: false,
                    finished: false,
                    dialog,
                };
                match self.behavior {
                    Behavior::Reject(code) => {
                        let mut r = req.response(StatusCode::new(code).unwrap());
                        r.set_to_tag(&tag);
                        let _ = self.layer.send_response(&key, r, now);
                        inc.finished = true;
                    }
                    Behavior::Ring {
                        answer_after,
                        early_media,
                    } => {
                        let mut r = req.response(
                            StatusCode::new(if early_media { 183 } else { 180 }).unwrap(),
                        );
                        r.set_to_tag(&tag);
                        r.headers
                            .push("Contact", &format!("<sip:{}@{}>", self.ext, self.addr));
                        if early_media {
                            r = r.with_body("application/sdp", self.body());
                        }
                        let _ = self.layer.send_response(&key, r, now);
                        inc.answer_at = answer_after.map(|d| now + d);
                    }
                }
                self.incoming.push(inc);
            }
            Method::Invite => {
                let code = StatusCode::new(self.reinvite_status).unwrap();
                let mut r = req.response(code);
                if code.is_success() {
                    r.headers
                        .push("Contact", &format!("<sip:{}@{}>", self.ext, self.addr));
                    r = r.with_body("application/sdp", self.body());
                    let seq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
                    self.reinvite_oks.push((
                        key.clone(),
                        r.clone(),
                        seq,
                        now + Duration::from_millis(500),
                    ));
                }
                let _ = self.layer.send_response(&key, r, now);
            }
            Method::Cancel => {
                let _ = self
                    .layer
                    .send_response(&key, req.response(StatusCode::OK), now);
                if let Some(inv) = cancels {
                    if let Some(c) = self
                        .incoming
                        .iter_mut()
                        .find(|c| c.key == inv && !c.finished)
                    {
                        let mut r = c.invite.response(StatusCode::new(487).unwrap());
                        r.set_to_tag(&c.tag);
                        let _ = self.layer.send_response(&inv, r, now);
                        c.finished = true;
                        c.answer_at = None;
                    }
                }
            }
            Method::Bye => {
                self.ended = true;
                let _ = self
                    .layer
                    .send_response(&key, req.response(StatusCode::OK), now);
            }
            _ => {
                let _ = self
                    .layer
                    .send_response(&key, req.response(StatusCode::OK), now);
            }
        }
    }

    /// Whether an INVITE passes this phone's digest check (if it has one).
    fn authorized(&self, req: &Request) -> bool {
        let Some((v, realm, ha1)) = &self.challenge else {
            return true;
        };
        let now_unix = Duration::from_secs(1_800_000_000);
        req.headers
            .get_all("Proxy-Authorization")
            .filter_map(|h| sip::auth::Credentials::parse(h).ok())
            .any(|c| {
                v.verify(&c, "INVITE", req.uri.as_str(), realm, ha1, now_unix)
                    .is_ok()
            })
    }

    fn on_response(&mut self, resp: Response) {
        let is_invite_2xx = resp.status.is_success()
            && resp
                .cseq()
                .ok()
                .flatten()
                .is_some_and(|c| c.method == Method::Invite);
        if is_invite_2xx && self.ack_2xx {
            let seq = resp.cseq().unwrap().unwrap().seq;
            if let Some(d) = self
                .dialog
                .as_mut()
                .filter(|d| Some(d.call_id.as_str()) == resp.headers.get("Call-ID"))
            {
                d.remote = resp.headers.get("To").unwrap().to_owned();
                if let Ok(sip::Contacts::List(l)) = resp.contacts() {
                    if let Some(c) = l.first() {
                        d.target = c.uri.to_uri();
                    }
                }
                let mut ack = Request::new(Method::Ack, d.target.clone());
                ack.headers.push(
                    "Via",
                    &format!(
                        "SIP/2.0/UDP {};branch=z9hG4bKack{}{};rport",
                        self.addr, self.name, seq
                    ),
                );
                ack.headers.push("Max-Forwards", "70");
                ack.headers.push("From", &d.local);
                ack.headers.push("To", &d.remote);
                ack.headers.push("Call-ID", &d.call_id);
                ack.headers.push("CSeq", &format!("{seq} ACK"));
                self.layer
                    .send_stateless(&Message::Request(ack), self.server);
            } else if let Some(c) = self
                .incoming
                .iter()
                .find(|c| c.dialog.call_id == resp.headers.get("Call-ID").unwrap_or(""))
            {
                let d = &c.dialog;
                let mut ack = Request::new(Method::Ack, d.target.clone());
                ack.headers.push(
                    "Via",
                    &format!(
                        "SIP/2.0/UDP {};branch=z9hG4bKack{}{};rport",
                        self.addr, self.name, seq
                    ),
                );
                ack.headers.push("Max-Forwards", "70");
                ack.headers.push("From", &d.local);
                ack.headers.push("To", &d.remote);
                ack.headers.push("Call-ID", &d.call_id);
                ack.headers.push("CSeq", &format!("{seq} ACK"));
                self.layer
                    .send_stateless(&Message::Request(ack), self.server);
            }
        }
        self.responses.push(resp);
    }

    /// Final status codes received for the phone's INVITEs.
    pub fn invite_finals(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .responses
            .iter()
            .filter(|r| {
                r.status.is_final()
                    && r.cseq()
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.method == Method::Invite && c.seq == 1)
            })
            .map(|r| r.status.as_u16())
            .collect();
        v.dedup();
        v
    }

    pub fn received(&self, method: Method) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| r.method == method)
            .collect()
    }
}
