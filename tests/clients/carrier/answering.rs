//! Carriers that answer (the trunk's far side itself, no phone behind):
//! over TCP, over UDP with OPTIONS and REGISTER, Kamailio as a proxy, and
//! helpers for raw inbound INVITEs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{header, headers, is_request, method_of, status_of};

/// A carrier that answers over TCP: accepts connections on `listener`,
/// answers every INVITE with 200 and an audio answer, every BYE with 200,
/// and logs each request's method.
pub struct TcpCarrier {
    pub addr: SocketAddr,
    pub methods: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpCarrier {
    pub fn start(listener: std::net::TcpListener) -> Self {
        use std::io::{Read as _, Write as _};
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let methods = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (methods, connections, stop) = (
                Arc::clone(&methods),
                Arc::clone(&connections),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                let mut streams: Vec<(std::net::TcpStream, Vec<u8>)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((s, _)) = listener.accept() {
                        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
                        *connections.lock().unwrap() += 1;
                        streams.push((s, Vec::new()));
                    }
                    for (s, buf) in &mut streams {
                        let mut chunk = [0u8; 8192];
                        if let Ok(n) = s.read(&mut chunk) {
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        while let Some(msg) = take_message(buf) {
                            if !is_request(&msg) {
                                continue;
                            }
                            let method = method_of(&msg);
                            methods.lock().unwrap().push(method.clone());
                            let reply = match method.as_str() {
                                "ACK" => continue,
                                "INVITE" => reply_to(&msg, "200 OK", addr, true, true),
                                _ => reply_to(&msg, "200 OK", addr, true, false),
                            };
                            let _ = s.write_all(reply.as_bytes());
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        TcpCarrier {
            addr,
            methods,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn saw(&self, method: &str) -> bool {
        self.methods.lock().unwrap().iter().any(|m| m == method)
    }
}

impl Drop for TcpCarrier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Cuts one message (by Content-Length) off the front of `buf`.
fn take_message(buf: &mut Vec<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(buf).into_owned();
    let end = text.find("\r\n\r\n")? + 4;
    let len: usize = header(&text[..end], "Content-Length")
        .or_else(|| header(&text[..end], "l"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    let msg = String::from_utf8_lossy(&buf[..end + len]).into_owned();
    buf.drain(..end + len);
    Some(msg)
}

/// A response to `req` from the carrier at `me` (Contact over TCP when
/// `tcp`), with an audio answer when `sdp`.
fn reply_to(req: &str, status: &str, me: SocketAddr, tcp: bool, sdp: bool) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for v in headers(req, "Via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    let to = header(req, "To").unwrap_or_default();
    let to = if to.contains("tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=tcpcarrier")
    };
    let body = if sdp {
        "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    } else {
        ""
    };
    let ct = if sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    r.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:carrier@{me}{tp}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        header(req, "From").unwrap_or_default(),
        header(req, "Call-ID").unwrap_or_default(),
        header(req, "CSeq").unwrap_or_default(),
        body.len(),
        tp = if tcp { ";transport=tcp" } else { "" },
    ));
    r
}

/// A bare inbound INVITE from a carrier at `me` to `number` at `pbx`.
pub fn inbound_invite(
    me: SocketAddr,
    pbx: SocketAddr,
    number: &str,
    call_id: &str,
    cseq: u32,
    extra: &str,
) -> String {
    let sdp = format!(
        "v=0\r\no=carrier 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = me.ip()
    );
    format!(
        "INVITE sip:{number}@{pbx} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+447700900123@carrier.example>;tag={call_id}\r\n\
         To: <sip:{number}@{pbx}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <sip:carrier@{me}>\r\n{extra}Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        len = sdp.len()
    )
}

/// Waits for the final response on `sock` to the INVITE with `call_id` and
/// CSeq number `cseq`.
pub fn final_response(
    sock: &UdpSocket,
    call_id: &str,
    cseq: u32,
    within: Duration,
) -> Option<String> {
    let want = format!("{cseq} INVITE");
    let until = Instant::now() + within;
    let mut buf = vec![0u8; 65_536];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while Instant::now() < until {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if header(&msg, "Call-ID") == Some(call_id)
            && header(&msg, "CSeq") == Some(want.as_str())
            && status_of(&msg).is_some_and(|s| s >= 200)
        {
            return Some(msg);
        }
    }
    None
}

/// ACKs a non-2xx final response to an INVITE for `uri` (RFC 3261
/// §17.1.1.3: same branch, the response's To).
pub fn ack_non_2xx(sock: &UdpSocket, resp: &str, uri: &str, pbx: SocketAddr) {
    let seq = header(resp, "CSeq")
        .and_then(|c| c.split_whitespace().next())
        .unwrap_or("1");
    let ack = format!(
        "ACK {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\n\
         Call-ID: {cid}\r\nCSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n",
        via = header(resp, "Via").unwrap_or_default(),
        from = header(resp, "From").unwrap_or_default(),
        to = header(resp, "To").unwrap_or_default(),
        cid = header(resp, "Call-ID").unwrap_or_default(),
    );
    let _ = sock.send_to(ack.as_bytes(), pbx);
}

/// A carrier over UDP: answers OPTIONS, INVITE (200 with an audio answer),
/// BYE and CANCEL with 200; challenges a REGISTER without credentials with
/// 401 and grants one with credentials for `grant` seconds. Logs every
/// request (method, Authorization) with its arrival time.
/// Requests a carrier received: method, Authorization, arrival.
pub type RequestLog = Arc<Mutex<Vec<(String, Option<String>, Instant)>>>;

pub struct UdpCarrier {
    pub addr: SocketAddr,
    pub requests: RequestLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpCarrier {
    pub fn start(sock: UdpSocket, grant: u32) -> Self {
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if !is_request(&msg) {
                        continue;
                    }
                    let method = method_of(&msg);
                    let auth = header(&msg, "Authorization").map(str::to_owned);
                    requests
                        .lock()
                        .unwrap()
                        .push((method.clone(), auth.clone(), Instant::now()));
                    let reply = match method.as_str() {
                        "ACK" => continue,
                        "INVITE" => reply_to(&msg, "200 OK", addr, false, true),
                        "REGISTER" if auth.is_none() => reply_to(&msg, "401 Unauthorized", addr, false, false)
                            .replace(
                                "Content-Length: 0",
                                "WWW-Authenticate: Digest realm=\"carrier.example\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0",
                            ),
                        "REGISTER" => {
                            let contact = header(&msg, "Contact").unwrap_or_default();
                            reply_to(&msg, "200 OK", addr, false, false).replace(
                                "Content-Length: 0",
                                &format!("Expires: {grant}\r\nContact: {contact};expires={grant}\r\nContent-Length: 0"),
                            )
                        }
                        _ => reply_to(&msg, "200 OK", addr, false, false),
                    };
                    let _ = sock.send_to(reply.as_bytes(), from);
                }
            })
        };
        UdpCarrier {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Requests received with `method`: their Authorization and arrival.
    pub fn received(&self, method: &str) -> Vec<(Option<String>, Instant)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, a, at)| (a.clone(), *at))
            .collect()
    }
}

impl Drop for UdpCarrier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running Kamailio. Dropping it sends SIGTERM (its main process then
/// stops its worker processes; SIGKILL would orphan them) and waits.
pub struct Kamailio(pub crate::clients::Proc);

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.0.terminate(Duration::from_secs(5));
    }
}

/// Kamailio as the carrier's proxy on `listen` (tests/kamailio/carrier.cfg),
/// sending dialog-creating requests to `pbx`; runs in the foreground until
/// dropped.
pub fn kamailio(listen: SocketAddr, pbx: SocketAddr) -> Kamailio {
    let dir = tempfile::tempdir().expect("temp dir");
    let template = include_str!("../../kamailio/carrier.cfg");
    let cfg = template
        .replace("LISTEN", &listen.to_string())
        .replace("PBX", &pbx.to_string());
    let path = dir.path().join("kamailio.cfg");
    std::fs::write(&path, cfg).expect("write kamailio.cfg");
    let mut cmd = std::process::Command::new("kamailio");
    cmd.arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-P"])
        .arg(dir.path().join("kamailio.pid"))
        .arg("-Y")
        .arg(dir.path());
    let mut p = crate::clients::Proc::spawn("kamailio", cmd, Some(dir));
    // its last start-up line: the socket is bound
    assert!(
        p.wait_for_line(Duration::from_secs(10), |l| l
            .contains("SO_RCVBUF is finally"))
            .is_some(),
        "kamailio did not start: {}",
        p.log()
    );
    Kamailio(p)
}
