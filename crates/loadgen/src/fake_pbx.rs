//! A tiny B2BUA for tests and for measuring the generator: a registrar
//! (401 + digest, bindings by source address), INVITE with a 407 proxy
//! challenge, a second leg to the callee's registered address with a
//! relay address in its SDP, 180/200 relayed back with the other relay
//! address, ACK and BYE across. It keeps no transactions (it never
//! retransmits; it re-ACKs a repeated 200 and answers repeated requests
//! again) and is not the product: the real B2BUA lives in `pbx`.
//!
//! [`FakePbx::handle`] is sans-IO (address in, addressed datagrams out);
//! [`serve_udp`] runs it on a socket with a real RTP relay per call.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, Credentials, Verdict, Verifier, VerifierConfig, ha1_md5, ha1_sha256};
use sip::{Limits, Message, Method, Request, Response, StatusCode};

use crate::users::User;

/// Where the relay of a call listens: the caller's side and the callee's.
pub trait Relay {
    /// Opens a relay for call `n`: (address for the caller, for the callee).
    fn open(&mut self, n: u64) -> (SocketAddr, SocketAddr);
    /// Both legs' own RTP addresses are known.
    fn connect(&mut self, n: u64, caller: SocketAddr, callee: SocketAddr);
    fn close(&mut self, n: u64);
}

/// A relay that only hands out addresses (sans-IO tests).
#[derive(Debug, Default)]
pub struct PaperRelay {
    pub open: HashMap<u64, (SocketAddr, SocketAddr)>,
    pub connected: HashMap<u64, (SocketAddr, SocketAddr)>,
}

impl Relay for PaperRelay {
    fn open(&mut self, n: u64) -> (SocketAddr, SocketAddr) {
        let port = 20_000 + 4 * (n % 10_000) as u16;
        let a = SocketAddr::from(([127, 0, 0, 1], port));
        let b = SocketAddr::from(([127, 0, 0, 1], port + 2));
        self.open.insert(n, (a, b));
        (a, b)
    }
    fn connect(&mut self, n: u64, caller: SocketAddr, callee: SocketAddr) {
        self.connected.insert(n, (caller, callee));
    }
    fn close(&mut self, n: u64) {
        self.open.remove(&n);
        self.connected.remove(&n);
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PbxStats {
    pub registered: u64,
    pub challenged: u64,
    pub calls: u64,
    pub answered: u64,
    pub ended: u64,
    pub refused: u64,
}

#[derive(Debug)]
struct FakeCall {
    caller: SocketAddr,
    callee: SocketAddr,
    a_invite: Request,
    a_call_id: String,
    a_tag: String,
    /// The caller's From (with tag) and Contact.
    a_remote: String,
    a_target: String,
    a_rtp: Option<SocketAddr>,
    b_call_id: String,
    b_tag: String,
    b_remote: Option<String>,
    b_target: String,
    b_ack: Option<Vec<u8>>,
    relay: (SocketAddr, SocketAddr),
    /// A 200 for the caller, repeated when its INVITE is.
    a_ok: Option<Vec<u8>>,
    callee_user: String,
    caller_user: String,
    cseq: u32,
}

pub struct FakePbx<R: Relay> {
    addr: SocketAddr,
    verifier: Verifier,
    ha1: HashMap<(String, String), (String, String)>,
    bindings: HashMap<String, SocketAddr>,
    calls: HashMap<u64, FakeCall>,
    by_call_id: HashMap<String, u64>,
    next: u64,
    pub relay: R,
    pub stats: PbxStats,
}

fn epoch_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn user_of(value: Option<&str>) -> Option<String> {
    let na = sip::NameAddr::parse(value?, "From").ok()?;
    na.uri.user().map(str::to_owned)
}

fn tag_of(value: Option<&str>) -> Option<String> {
    let na = sip::NameAddr::parse(value?, "To").ok()?;
    na.tag().map(str::to_owned)
}

fn contact_of(h: &sip::Headers) -> Option<String> {
    match h.contacts().ok()? {
        sip::Contacts::List(l) => l.first().map(|na| na.uri.as_str().to_owned()),
        sip::Contacts::Star => None,
    }
}

type Out = Vec<(SocketAddr, Vec<u8>)>;

impl<R: Relay> FakePbx<R> {
    /// A server at `addr` (written into Via and Contact) for `users`.
    pub fn new(addr: SocketAddr, users: &[User], relay: R) -> Self {
        let mut secret = [0u8; 32];
        let mut rng = crate::scenario::Rng::from_os();
        for chunk in secret.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_ne_bytes());
        }
        let ha1 = users
            .iter()
            .map(|u| {
                (
                    (u.username.clone(), u.domain.clone()),
                    (
                        ha1_md5(&u.username, &u.domain, &u.password),
                        ha1_sha256(&u.username, &u.domain, &u.password),
                    ),
                )
            })
            .collect();
        FakePbx {
            addr,
            verifier: Verifier::new(&secret, VerifierConfig::default()),
            ha1,
            bindings: HashMap::new(),
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            next: 0,
            relay,
            stats: PbxStats::default(),
        }
    }

    /// Calls in progress.
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// Handles one datagram from `from`; returns what to send where.
    pub fn handle(&mut self, from: SocketAddr, bytes: &[u8]) -> Out {
        let mut out = Out::new();
        match sip::parse_datagram(bytes, &Limits::default()) {
            Ok(Message::Request(req)) => self.request(from, &req, &mut out),
            Ok(Message::Response(resp)) => self.response(&resp, &mut out),
            Err(_) => {}
        }
        out
    }

    fn verify(&self, req: &Request, header: &str, realm: &str) -> Option<Verdict> {
        let creds = req
            .headers(header)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(|c| c.realm == realm)?;
        let (method, uri, now) = (req.method.as_str(), req.uri.as_str(), epoch_now());
        Some(
            match self.ha1.get(&(creds.username.clone(), realm.to_owned())) {
                Some((md5, sha)) => {
                    let stored = if creds.algorithm.base() == Algorithm::Md5 {
                        md5
                    } else {
                        sha
                    };
                    self.verifier
                        .verify(&creds, method, uri, realm, stored, now)
                }
                None => self
                    .verifier
                    .verify_unknown_user(&creds, method, uri, realm, now),
            },
        )
    }

    fn challenge(
        &mut self,
        req: &Request,
        code: StatusCode,
        header: &str,
        realm: &str,
    ) -> Response {
        self.stats.challenged += 1;
        let mut r = req.response_tagged(code);
        for v in self.verifier.challenge_headers(realm, false, epoch_now()) {
            r.headers.push(header, &v);
        }
        r
    }

    fn request(&mut self, from: SocketAddr, req: &Request, out: &mut Out) {
        let call_id = req.headers.get("Call-ID").unwrap_or("").trim().to_owned();
        let in_dialog = tag_of(req.headers.get("To")).is_some();
        match &req.method {
            Method::Register => self.register(from, req, out),
            Method::Invite if !in_dialog => self.invite(from, req, &call_id, out),
            Method::Ack => {}
            Method::Bye => self.bye(from, req, &call_id, out),
            Method::Options => out.push((from, req.response_tagged(StatusCode::OK).to_bytes())),
            _ => out.push((
                from,
                req.response_tagged(StatusCode::NOT_IMPLEMENTED).to_bytes(),
            )),
        }
    }

    fn register(&mut self, from: SocketAddr, req: &Request, out: &mut Out) {
        let realm = req.uri.host().to_owned();
        let resp = match self.verify(req, "Authorization", &realm) {
            None => self.challenge(req, StatusCode::UNAUTHORIZED, "WWW-Authenticate", &realm),
            Some(Verdict::Ok) => {
                if let Some(user) = user_of(req.headers.get("To")) {
                    self.bindings.insert(user, from);
                }
                self.stats.registered += 1;
                let mut r = req.response_tagged(StatusCode::OK);
                if let Some(c) = req.headers.get("Contact") {
                    r.headers.push("Contact", &format!("{c};expires=3600"));
                }
                r
            }
            Some(_) => req.response_tagged(StatusCode::FORBIDDEN),
        };
        out.push((from, resp.to_bytes()));
    }

    fn invite(&mut self, from: SocketAddr, req: &Request, call_id: &str, out: &mut Out) {
        if let Some(n) = self.by_call_id.get(call_id) {
            // the INVITE again: the 200 again if we have one
            if let Some(ok) = self.calls.get(n).and_then(|c| c.a_ok.clone()) {
                out.push((from, ok));
            }
            return;
        }
        let realm = req.uri.host().to_owned();
        match self.verify(req, "Proxy-Authorization", &realm) {
            None => {
                let r = self.challenge(
                    req,
                    StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                    "Proxy-Authenticate",
                    &realm,
                );
                out.push((from, r.to_bytes()));
                return;
            }
            Some(Verdict::Ok) => {}
            Some(_) => {
                self.stats.refused += 1;
                out.push((from, req.response_tagged(StatusCode::FORBIDDEN).to_bytes()));
                return;
            }
        }
        out.push((from, req.response(StatusCode::TRYING).to_bytes()));
        let callee_user = req.uri.user().unwrap_or("").to_owned();
        let Some(callee) = self.bindings.get(&callee_user).copied() else {
            self.stats.refused += 1;
            out.push((from, req.response_tagged(StatusCode::NOT_FOUND).to_bytes()));
            return;
        };
        let a_rtp = crate::sdp::parse(&req.body).ok().map(|m| m.addr);
        let n = self.next;
        self.next += 1;
        self.stats.calls += 1;
        let relay = self.relay.open(n);
        let caller_user = user_of(req.headers.get("From")).unwrap_or_default();
        let call = FakeCall {
            caller: from,
            callee,
            a_invite: req.clone(),
            a_call_id: call_id.to_owned(),
            a_tag: format!("fa{n}"),
            a_remote: req.headers.get("From").unwrap_or("").trim().to_owned(),
            a_target: contact_of(&req.headers).unwrap_or_else(|| req.uri.as_str().to_owned()),
            a_rtp,
            b_call_id: format!("fb{n}@fake-pbx"),
            b_tag: format!("fbt{n}"),
            b_remote: None,
            b_target: format!("sip:{callee_user}@{callee}"),
            b_ack: None,
            relay,
            a_ok: None,
            callee_user,
            caller_user,
            cseq: 1,
        };
        let mut sdp = Vec::new();
        crate::sdp::write_sdp(&mut sdp, relay.1, &[crate::sdp::PCMU, crate::sdp::PCMA], n);
        let b_invite = self.leg_b_request(&call, "INVITE", n, 1, Some(&sdp));
        self.by_call_id.insert(call.a_call_id.clone(), n);
        self.by_call_id.insert(call.b_call_id.clone(), n);
        out.push((callee, b_invite));
        self.calls.insert(n, call);
    }

    /// A request on the callee's leg (we are its UAC).
    fn leg_b_request(
        &self,
        c: &FakeCall,
        method: &str,
        n: u64,
        cseq: u32,
        sdp: Option<&[u8]>,
    ) -> Vec<u8> {
        let to = match &c.b_remote {
            Some(t) => t.clone(),
            None => format!("<sip:{}@{}>", c.callee_user, self.addr),
        };
        self.request_bytes(&RequestLine {
            method,
            uri: &c.b_target,
            branch: &format!("z9hG4bKfb{n}.{method}.{cseq}"),
            from: &format!("<sip:{}@{}>;tag={}", c.caller_user, self.addr, c.b_tag),
            to: &to,
            call_id: &c.b_call_id,
            cseq,
            contact: &format!("<sip:fake-b{n}@{}>", self.addr),
            sdp,
        })
    }

    fn request_bytes(&self, r: &RequestLine<'_>) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        // writes to a String cannot fail
        let _ = write!(
            s,
            "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={};rport\r\nMax-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContact: {}\r\n",
            r.method,
            r.uri,
            self.addr,
            r.branch,
            r.from,
            r.to,
            r.call_id,
            r.cseq,
            r.method,
            r.contact
        );
        match r.sdp {
            Some(b) => {
                let _ = write!(
                    s,
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                );
                let mut v = s.into_bytes();
                v.extend_from_slice(b);
                v
            }
            None => {
                s.push_str("Content-Length: 0\r\n\r\n");
                s.into_bytes()
            }
        }
    }

    fn response(&mut self, resp: &Response, out: &mut Out) {
        let call_id = resp.headers.get("Call-ID").unwrap_or("").trim().to_owned();
        let Some(&n) = self.by_call_id.get(&call_id) else {
            return;
        };
        let method = resp.cseq().ok().flatten().map(|c| c.method);
        if method != Some(Method::Invite) {
            // a 200 to one of our BYEs: the call is over
            if resp.status.is_final() {
                self.end(n);
            }
            return;
        }
        let code = resp.status.as_u16();
        let addr = self.addr;
        let Some(c) = self.calls.get_mut(&n) else {
            return;
        };
        if code < 200 {
            if code == 180 {
                let mut r = c.a_invite.response(StatusCode::RINGING);
                r.set_to_tag(&c.a_tag);
                out.push((c.caller, r.to_bytes()));
            }
            return;
        }
        if let Some(ack) = &c.b_ack {
            out.push((c.callee, ack.clone()));
            return;
        }
        if code >= 300 {
            let r = c.a_invite.response_tagged(resp.status);
            out.push((c.caller, r.to_bytes()));
            self.end(n);
            return;
        }
        self.stats.answered += 1;
        c.b_remote = resp.headers.get("To").map(|t| t.trim().to_owned());
        if let Some(t) = contact_of(&resp.headers) {
            c.b_target = t;
        }
        let b_rtp = crate::sdp::parse(&resp.body).ok().map(|m| m.addr);
        let relay = c.relay;
        let mut sdp = Vec::new();
        crate::sdp::write_sdp(&mut sdp, relay.0, &[crate::sdp::first_pt(&resp.body)], n);
        let mut ok = c.a_invite.response(StatusCode::OK);
        ok.set_to_tag(&c.a_tag);
        ok.headers
            .push("Contact", &format!("<sip:fake-a{n}@{addr}>"));
        let ok = ok.with_body("application/sdp", sdp).to_bytes();
        c.a_ok = Some(ok.clone());
        out.push((c.caller, ok));
        let (caller_rtp, callee) = (c.a_rtp, c.callee);
        let ack = {
            let c = &self.calls[&n];
            self.leg_b_request(c, "ACK", n, 1, None)
        };
        out.push((callee, ack.clone()));
        if let Some(c) = self.calls.get_mut(&n) {
            c.b_ack = Some(ack);
        }
        if let (Some(a), Some(b)) = (caller_rtp, b_rtp) {
            self.relay.connect(n, a, b);
        }
    }

    fn bye(&mut self, from: SocketAddr, req: &Request, call_id: &str, out: &mut Out) {
        out.push((from, req.response(StatusCode::OK).to_bytes()));
        let Some(&n) = self.by_call_id.get(call_id) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&n) else {
            return;
        };
        c.cseq += 1;
        let cseq = c.cseq;
        let (dest, bye) = if call_id == c.a_call_id {
            (c.callee, {
                let c = &self.calls[&n];
                self.leg_b_request(c, "BYE", n, cseq, None)
            })
        } else {
            let c = &self.calls[&n];
            (
                c.caller,
                self.request_bytes(&RequestLine {
                    method: "BYE",
                    uri: &c.a_target,
                    branch: &format!("z9hG4bKfa{n}.BYE.{cseq}"),
                    from: &format!(
                        "{};tag={}",
                        c.a_invite.headers.get("To").unwrap_or("").trim(),
                        c.a_tag
                    ),
                    to: &c.a_remote,
                    call_id: &c.a_call_id,
                    cseq,
                    contact: &format!("<sip:fake-a{n}@{}>", self.addr),
                    sdp: None,
                }),
            )
        };
        out.push((dest, bye));
        self.relay.close(n);
    }

    fn end(&mut self, n: u64) {
        if let Some(c) = self.calls.remove(&n) {
            self.by_call_id.remove(&c.a_call_id);
            self.by_call_id.remove(&c.b_call_id);
            self.relay.close(n);
            self.stats.ended += 1;
        }
    }
}

struct RequestLine<'a> {
    method: &'a str,
    uri: &'a str,
    branch: &'a str,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
    cseq: u32,
    contact: &'a str,
    sdp: Option<&'a [u8]>,
}

/// A real relay: a pair of UDP sockets per call and a task forwarding
/// between them, latching each side to where its packets come from.
#[derive(Default)]
pub struct UdpRelay {
    ip: Option<std::net::IpAddr>,
    calls: HashMap<u64, tokio::task::JoinHandle<()>>,
    peers: HashMap<u64, Arc<Mutex<[Option<SocketAddr>; 2]>>>,
}

impl UdpRelay {
    pub fn new(ip: std::net::IpAddr) -> Self {
        UdpRelay {
            ip: Some(ip),
            ..UdpRelay::default()
        }
    }
}

impl Relay for UdpRelay {
    fn open(&mut self, n: u64) -> (SocketAddr, SocketAddr) {
        let ip = self.ip.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let bind = || -> std::io::Result<tokio::net::UdpSocket> {
            let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        };
        let (Ok(a), Ok(b)) = (bind(), bind()) else {
            // no ports: an address nobody listens on; the call's media is lost
            let dead = SocketAddr::new(ip, 9);
            return (dead, dead);
        };
        let addrs = (
            a.local_addr().unwrap_or(SocketAddr::new(ip, 9)),
            b.local_addr().unwrap_or(SocketAddr::new(ip, 9)),
        );
        let peers = Arc::new(Mutex::new([None, None]));
        self.peers.insert(n, Arc::clone(&peers));
        let task = tokio::spawn(async move {
            let (mut x, mut y) = ([0u8; 2048], [0u8; 2048]);
            loop {
                // 0: caller side (socket a), 1: callee side (socket b)
                let (side, n, from) = tokio::select! {
                    r = a.recv_from(&mut x) => match r { Ok((n, f)) => (0, n, f), Err(_) => continue },
                    r = b.recv_from(&mut y) => match r { Ok((n, f)) => (1, n, f), Err(_) => continue },
                };
                let to = {
                    let mut p = peers.lock().unwrap_or_else(|e| e.into_inner());
                    p[side] = Some(from);
                    p[1 - side]
                };
                let Some(to) = to else { continue };
                let _ = if side == 0 {
                    b.send_to(&x[..n], to).await
                } else {
                    a.send_to(&y[..n], to).await
                };
            }
        });
        self.calls.insert(n, task);
        addrs
    }

    fn connect(&mut self, n: u64, caller: SocketAddr, callee: SocketAddr) {
        if let Some(p) = self.peers.get(&n) {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p[0] = p[0].or(Some(caller));
            p[1] = p[1].or(Some(callee));
        }
    }

    fn close(&mut self, n: u64) {
        if let Some(t) = self.calls.remove(&n) {
            t.abort();
        }
        self.peers.remove(&n);
    }
}

/// Serves SIP on `sock` until the task is dropped. Must run inside a
/// tokio runtime (relays are spawned tasks).
pub async fn serve_udp(sock: tokio::net::UdpSocket, pbx: Arc<Mutex<FakePbx<UdpRelay>>>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let out = pbx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(from, &buf[..n]);
        for (to, bytes) in out {
            let _ = sock.send_to(&bytes, to).await;
        }
    }
}
