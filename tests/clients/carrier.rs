//! A scripted carrier network for trunk tests: a record-routing proxy (the
//! carrier's SBC, the address Switchboard knows as the trunk) in front of a
//! far-end phone whose network reaches only that proxy, as behind a real
//! carrier. UDP on loopback, blocking, every wait bounded; the proxy runs on
//! its own thread until dropped.
//!
//! The proxy relays statelessly (RFC 3261 §16.11): it adds its Via to every
//! request and takes it off every response, adds `Record-Route:
//! <sip:PROXY;lr>` to the dialog-creating INVITE it relays to Switchboard,
//! removes its own Route from in-dialog requests and sends them on to the
//! next Route or the Request-URI. It logs each message it relays.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub mod answering;

/// Header values called `name` (one per line; comma lists not split).
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    headers(msg, name).into_iter().next()
}

/// `host:port` of a SIP URI or name-addr (`<sip:u@127.0.0.1:5070;lr>`).
pub fn uri_addr(v: &str) -> Option<SocketAddr> {
    let v = v.trim();
    let v = v.find('<').map_or(v, |i| &v[i + 1..]);
    let v = v.split('>').next()?;
    let v = v.strip_prefix("sip:")?;
    let v = v.rsplit_once('@').map_or(v, |(_, h)| h);
    let hostport = v.split([';', '?']).next()?;
    if hostport.contains(':') {
        hostport.parse().ok()
    } else {
        format!("{hostport}:5060").parse().ok()
    }
}

/// Where a response goes by its top Via: `received`/`rport` when present,
/// else the sent-by.
fn via_addr(via: &str) -> Option<SocketAddr> {
    let mut parts = via.split(';');
    let sent_by = parts.next()?.split_whitespace().nth(1)?;
    let (mut host, mut port) = match sent_by.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().ok()?),
        None => (sent_by.to_owned(), 5060u16),
    };
    for p in parts {
        match p.trim().split_once('=') {
            Some(("received", ip)) => host = ip.to_owned(),
            Some(("rport", n)) => port = n.parse().ok()?,
            _ => {}
        }
    }
    format!("{host}:{port}").parse().ok()
}

fn is_request(msg: &str) -> bool {
    !msg.starts_with("SIP/2.0 ")
}

fn method_of(msg: &str) -> String {
    if is_request(msg) {
        msg.split_whitespace().next().unwrap_or_default().to_owned()
    } else {
        header(msg, "CSeq")
            .and_then(|c| c.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned()
    }
}

fn status_of(msg: &str) -> Option<u16> {
    msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

fn has_to_tag(msg: &str) -> bool {
    header(msg, "To").is_some_and(|t| t.contains("tag="))
}

/// One relayed message, as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Relayed {
    /// `"far->pbx"` or `"pbx->far"`.
    pub direction: &'static str,
    /// `"INVITE"`, `"ACK"`, `"BYE"`... for requests; `"200 BYE"` for responses.
    pub what: String,
    pub at: Instant,
}

/// The carrier's record-routing proxy.
pub struct RecordRoutingProxy {
    pub addr: SocketAddr,
    pub relayed: Arc<Mutex<Vec<Relayed>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordRoutingProxy {
    /// Runs the proxy on `sock`; dialog-creating requests from the far end
    /// (at `far_ip`) go on to `pbx`.
    pub fn start(sock: UdpSocket, pbx: SocketAddr, far_ip: &str) -> Self {
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let far_ip: std::net::IpAddr = far_ip.parse().unwrap();
        let relayed = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (relayed, stop) = (Arc::clone(&relayed), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut n_branch = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let direction = if from.ip() == far_ip {
                        "far->pbx"
                    } else {
                        "pbx->far"
                    };
                    n_branch += 1;
                    let Some((out, to)) = relay(&msg, addr, pbx, n_branch) else {
                        continue;
                    };
                    let what = match status_of(&msg) {
                        Some(s) => format!("{s} {}", method_of(&msg)),
                        None => method_of(&msg),
                    };
                    relayed.lock().unwrap().push(Relayed {
                        direction,
                        what,
                        at: Instant::now(),
                    });
                    let _ = sock.send_to(out.as_bytes(), to);
                }
            })
        };
        RecordRoutingProxy {
            addr,
            relayed,
            stop,
            thread: Some(thread),
        }
    }

    /// Whether a message matching `direction` and `what` was relayed.
    pub fn saw(&self, direction: &str, what: &str) -> Option<Instant> {
        self.relayed
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.direction == direction && r.what == what)
            .map(|r| r.at)
    }
}

impl Drop for RecordRoutingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The relayed message and where it goes; `None` drops it.
fn relay(msg: &str, me: SocketAddr, pbx: SocketAddr, n: u32) -> Option<(String, SocketAddr)> {
    let (head, body) = msg.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let rest: Vec<&str> = lines.collect();
    let mine = |v: &str| uri_addr(v) == Some(me);
    if !is_request(msg) {
        // drop our Via (the first one), send by the next
        let mut out = vec![first.to_owned()];
        let mut dropped = false;
        let mut next = None;
        for l in rest {
            if let Some((name, v)) = l.split_once(':') {
                if name.trim().eq_ignore_ascii_case("Via") {
                    if !dropped {
                        dropped = true;
                        continue;
                    }
                    next = next.or_else(|| via_addr(v.trim()));
                }
            }
            out.push(l.to_owned());
        }
        return Some((format!("{}\r\n\r\n{body}", out.join("\r\n")), next?));
    }
    let initial = method_of(msg) == "INVITE" && !has_to_tag(msg);
    let uri = first.split_whitespace().nth(1)?;
    let mut out = vec![
        first.to_owned(),
        format!("Via: SIP/2.0/UDP {me};branch=z9hG4bKcarrier{n}"),
    ];
    if initial {
        out.push(format!("Record-Route: <sip:{me};lr>"));
    }
    let mut next_route = None;
    for l in rest {
        if let Some((name, v)) = l.split_once(':') {
            if name.trim().eq_ignore_ascii_case("Route") {
                if mine(v) {
                    continue;
                }
                next_route = next_route.or_else(|| uri_addr(v));
            }
        }
        out.push(l.to_owned());
    }
    let to = match next_route {
        Some(r) => r,
        None if initial => pbx,
        None => uri_addr(uri)?,
    };
    Some((format!("{}\r\n\r\n{body}", out.join("\r\n")), to))
}

/// A far-end phone behind the carrier: calls Switchboard through the proxy
/// and keeps the dialog. Its network reaches only the proxy: a message for
/// any other address is not sent but kept in `undeliverable`.
pub struct FarEnd {
    sock: UdpSocket,
    carrier: SocketAddr,
    pub undeliverable: Vec<String>,
    call_id: String,
    from: String,
    to: String,
    remote_target: String,
    route_set: Vec<String>,
    cseq: u32,
    /// Requests received in the dialog (method), answered 200.
    pub received: Vec<String>,
}

impl FarEnd {
    pub fn new(ip: &str, carrier: SocketAddr) -> Self {
        let sock = UdpSocket::bind((ip, 0)).expect("bind the far end");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        FarEnd {
            sock,
            carrier,
            undeliverable: Vec::new(),
            call_id: String::new(),
            from: String::new(),
            to: String::new(),
            remote_target: String::new(),
            route_set: Vec::new(),
            cseq: 1,
            received: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn send_to(&mut self, text: &str, to: SocketAddr) {
        if to == self.carrier {
            self.sock.send_to(text.as_bytes(), to).unwrap();
        } else {
            self.undeliverable
                .push(format!("{} to {to}", method_of(text)));
        }
    }

    /// Sends an INVITE for `number` at `pbx` (through the carrier), with an
    /// audio offer for `rtp`.
    pub fn invite(&mut self, number: &str, pbx: SocketAddr, rtp: SocketAddr) {
        let me = self.addr();
        self.call_id = format!("far-{}@{me}", me.port());
        self.from = format!("<sip:+447700900123@carrier.example>;tag=far{}", me.port());
        self.to = format!("<sip:{number}@{pbx}>");
        let sdp = format!(
            "v=0\r\no=far 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        );
        let text = format!(
            "INVITE sip:{number}@{pbx} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKfar1;rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:far@{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            from = self.from,
            to = self.to,
            cid = self.call_id,
            len = sdp.len(),
        );
        let carrier = self.carrier;
        self.send_to(&text, carrier);
    }

    /// Reads one message (bounded), answering in-dialog requests with 200.
    fn poll(&mut self) -> Option<String> {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if is_request(&msg) {
            let method = method_of(&msg);
            self.received.push(method.clone());
            if method != "ACK" {
                let mut r = String::from("SIP/2.0 200 OK\r\n");
                for v in headers(&msg, "Via") {
                    r.push_str(&format!("Via: {v}\r\n"));
                }
                for name in ["From", "To", "Call-ID", "CSeq"] {
                    r.push_str(&format!("{name}: {}\r\n", header(&msg, name).unwrap_or("")));
                }
                r.push_str("Content-Length: 0\r\n\r\n");
                let to = headers(&msg, "Via").first().and_then(|v| via_addr(v));
                if let Some(to) = to {
                    self.send_to(&r, to);
                }
            }
            return None;
        }
        Some(msg)
    }

    /// Waits for the final response to `method`; a 2xx to the INVITE sets
    /// up the dialog (remote tag, target, route set = Record-Route reversed).
    pub fn wait_final(&mut self, method: &str, within: Duration) -> Option<String> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let Some(msg) = self.poll() else { continue };
            if method_of(&msg) != method || status_of(&msg).is_none_or(|s| s < 200) {
                continue;
            }
            if method == "INVITE" && status_of(&msg).is_some_and(|s| s < 300) {
                self.to = header(&msg, "To").unwrap_or_default().to_owned();
                self.remote_target = header(&msg, "Contact")
                    .map(|c| {
                        let c = c.trim_start_matches('<');
                        c.split('>').next().unwrap_or_default().to_owned()
                    })
                    .unwrap_or_default();
                let mut rr: Vec<String> = headers(&msg, "Record-Route")
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(|v| v.trim().to_owned())
                    .collect();
                rr.reverse();
                self.route_set = rr;
            }
            return Some(msg);
        }
        None
    }

    /// Reads the network for `d`, answering what comes in.
    pub fn run(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            let _ = self.poll();
        }
    }

    /// The dialog's Route headers.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// Sends a request in the dialog (ACK with the INVITE's CSeq), to the
    /// first Route if any, else to the remote target (RFC 3261 §12.2.1.1).
    pub fn in_dialog(&mut self, method: &str) {
        let me = self.addr();
        let seq = if method == "ACK" {
            1
        } else {
            self.cseq += 1;
            self.cseq
        };
        let mut text = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKfar{method}{seq};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {seq} {method}\r\n",
            target = self.remote_target,
            from = self.from,
            to = self.to,
            cid = self.call_id,
        );
        for r in &self.route_set {
            text.push_str(&format!("Route: {r}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        let next = self
            .route_set
            .first()
            .and_then(|r| uri_addr(r))
            .or_else(|| uri_addr(&self.remote_target));
        match next {
            Some(to) => self.send_to(&text, to),
            None => self
                .undeliverable
                .push(format!("{method} without a target")),
        }
    }
}
