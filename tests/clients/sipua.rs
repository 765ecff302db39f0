//! A scripted SIP phone for the flows Debian's baresip 1.0 cannot drive
//! (attended transfer, INVITE with Replaces): UDP, digest auth, one or more
//! dialogs, REFER with NOTIFY, and a G.711 tone both ways through the relay.
//! Blocking, single-threaded; every wait is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// One dialog of the scripted phone.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// From/To header values without tags, as this phone writes them.
    pub local_uri: String,
    pub remote_uri: String,
    pub remote_target: String,
    pub cseq: u32,
    /// Where the relay wants this phone's RTP.
    pub media: Option<SocketAddr>,
}

/// A message and its first line.
struct Msg {
    text: String,
}

impl Msg {
    fn first(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.text, name)
    }
    fn status(&self) -> Option<u16> {
        self.first()
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
    }
    fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
    fn cseq_method(&self) -> &str {
        self.header("CSeq")
            .and_then(|c| c.split_whitespace().nth(1))
            .unwrap_or_default()
    }
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    headers(msg, name).into_iter().next()
}

fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

fn tag_of(value: &str) -> String {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn without_tag(value: &str) -> String {
    value.split(";tag=").next().unwrap_or_default().to_owned()
}

fn media_addr(sdp: &str) -> Option<SocketAddr> {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

pub struct SipUa {
    pub user: String,
    password: String,
    domain: String,
    server: SocketAddr,
    sock: UdpSocket,
    rtp: UdpSocket,
    /// Requests received and not yet taken.
    inbox: VecDeque<Msg>,
    counter: u32,
    /// Received audio, decoded (8 kHz).
    pub heard: Vec<i16>,
    tone: media::tone::ToneGenerator,
    seq: u16,
    last_rtp: Instant,
    /// Sipfrag lines of NOTIFYs received.
    pub notifies: Vec<String>,
    /// BYEs received (answered 200), by Call-ID.
    pub byes: Vec<String>,
    /// P-Asserted-Identity of re-INVITEs received.
    pub identities: Vec<String>,
    /// Media addresses moved by re-INVITEs, by Call-ID.
    moved: HashMap<String, SocketAddr>,
    /// CANCELs received, by Call-ID.
    pub cancels: Vec<String>,
}

impl SipUa {
    pub fn new(
        ip: &str,
        server: SocketAddr,
        user: &str,
        password: &str,
        domain: &str,
        tone: f64,
    ) -> Self {
        let sock = UdpSocket::bind((ip, 0)).expect("bind SIP");
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let rtp = UdpSocket::bind((ip, 0)).expect("bind RTP");
        rtp.set_nonblocking(true).unwrap();
        SipUa {
            user: user.to_owned(),
            password: password.to_owned(),
            domain: domain.to_owned(),
            server,
            sock,
            rtp,
            inbox: VecDeque::new(),
            counter: 0,
            heard: Vec::new(),
            tone: media::tone::ToneGenerator::new(tone, 8000, 8000),
            seq: 0,
            last_rtp: Instant::now(),
            notifies: Vec::new(),
            byes: Vec::new(),
            identities: Vec::new(),
            moved: HashMap::new(),
            cancels: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    fn sdp(&self) -> String {
        let a = self.rtp.local_addr().unwrap();
        format!(
            "v=0\r\no=ua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
            ip = a.ip(),
            port = a.port()
        )
    }

    fn send(&self, text: &str) {
        self.sock.send_to(text.as_bytes(), self.server).unwrap();
    }

    /// Reads the network for `d`, answering what must be answered and
    /// keeping media flowing on `media` dialogs.
    pub fn run(&mut self, d: Duration, media: &[&Dialog]) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.poll(media);
        }
    }

    /// One round: at most one SIP message, RTP in and out.
    fn poll(&mut self, media: &[&Dialog]) -> Option<Msg> {
        let mut out = None;
        let mut buf = [0u8; 8192];
        if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
            let m = Msg {
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
            };
            if m.status().is_some() {
                out = Some(m);
            } else {
                self.on_request(m);
            }
        }
        while let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
            if n > 12 {
                self.heard
                    .extend(buf[12..n].iter().map(|b| media::g711::ulaw_to_linear(*b)));
            }
        }
        if self.last_rtp.elapsed() >= Duration::from_millis(20) {
            self.last_rtp = Instant::now();
            let samples = self.tone.samples(160);
            let payload: Vec<u8> = samples
                .iter()
                .map(|s| media::g711::linear_to_ulaw(*s))
                .collect();
            self.seq = self.seq.wrapping_add(1);
            let pkt = media::rtp::build_rtp(
                0,
                self.seq,
                u32::from(self.seq) * 160,
                0x5c41_1e00 ^ self.counter,
                false,
                &payload,
            );
            for d in media {
                if let Some(to) = self.moved.get(&d.call_id).copied().or(d.media) {
                    let _ = self.rtp.send_to(&pkt, to);
                }
            }
        }
        out
    }

    /// Requests: NOTIFY and BYE are answered here; INVITEs (initial or
    /// re-INVITE) are queued or answered.
    fn on_request(&mut self, m: Msg) {
        let method = m
            .first()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        match method.as_str() {
            "NOTIFY" => {
                self.notifies.push(m.body().trim().to_owned());
                self.reply(&m, "200 OK", "", "");
            }
            "BYE" => {
                self.byes
                    .push(m.header("Call-ID").unwrap_or_default().to_owned());
                self.reply(&m, "200 OK", "", "");
            }
            "INVITE" if tag_of(m.header("To").unwrap_or_default()).is_empty() => {
                self.inbox.push_back(m);
            }
            "INVITE" => {
                if let Some(id) = m.header("P-Asserted-Identity") {
                    self.identities.push(id.to_owned());
                }
                if let Some(to) = media_addr(m.body()) {
                    let cid = m.header("Call-ID").unwrap_or_default().to_owned();
                    self.moved.insert(cid, to);
                }
                let sdp = self.sdp();
                let extra = format!(
                    "Contact: <sip:{}@{}>\r\nContent-Type: application/sdp\r\n",
                    self.user,
                    self.addr()
                );
                self.reply(&m, "200 OK", &extra, &sdp);
                self.inbox.push_back(m);
            }
            "ACK" => {}
            "CANCEL" => {
                self.cancels
                    .push(m.header("Call-ID").unwrap_or_default().to_owned());
                self.reply(&m, "200 OK", "", "");
            }
            _ => self.reply(&m, "200 OK", "", ""),
        }
    }

    fn reply(&self, req: &Msg, status: &str, extra: &str, body: &str) {
        let mut r = format!("SIP/2.0 {status}\r\n");
        for v in headers(&req.text, "Via") {
            r.push_str(&format!("Via: {v}\r\n"));
        }
        r.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            req.header("From").unwrap_or_default(),
            req.header("To").unwrap_or_default(),
            req.header("Call-ID").unwrap_or_default(),
            req.header("CSeq").unwrap_or_default(),
            body.len()
        ));
        self.send(&r);
    }

    /// Waits for a response to the request with `call_id` and `cseq`.
    fn response(&mut self, call_id: &str, method: &str, media: &[&Dialog]) -> Msg {
        let until = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < until,
                "{}: no response to {method}",
                self.user
            );
            if let Some(m) = self.poll(media) {
                if m.header("Call-ID") == Some(call_id) && m.cseq_method() == method {
                    if m.status() == Some(100) {
                        continue;
                    }
                    return m;
                }
            }
        }
    }

    fn authorization(&self, challenge: &str, method: &str, uri: &str, header: &str) -> String {
        let c = sip::auth::Challenge::parse(challenge).expect("a digest challenge");
        let answer = c
            .answer(&self.user, &self.password, method, uri, 1, "0a4f113b")
            .to_header_value();
        format!("{header}: {answer}\r\n")
    }

    /// Registers (digest), so calls to this extension reach it.
    pub fn register(&mut self) {
        let status = self.try_register();
        assert_eq!(status, 200, "{}: REGISTER not accepted", self.user);
    }

    /// REGISTER, answering one 401 challenge with this UA's password; returns
    /// the final status (200, or e.g. 403 for a password that no longer works).
    pub fn try_register(&mut self) -> u16 {
        let n = self.next();
        let call_id = format!("reg-{}-{n}@{}", self.user, self.addr());
        let uri = format!("sip:{}", self.domain);
        let mut auth = String::new();
        for cseq in 1..=2 {
            let req = format!(
                "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKr{n}x{cseq};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{u}@{d}>;tag=r{n}\r\nTo: <sip:{u}@{d}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{u}@{a}>\r\nExpires: 300\r\n\
                 {auth}Content-Length: 0\r\n\r\n",
                a = self.addr(),
                u = self.user,
                d = self.domain
            );
            self.send(&req);
            let r = self.response(&call_id, "REGISTER", &[]);
            match r.status() {
                Some(401) if cseq == 1 => {
                    let ch = r.header("WWW-Authenticate").unwrap().to_owned();
                    auth = self.authorization(&ch, "REGISTER", &uri, "Authorization");
                }
                s => return s.unwrap_or(500),
            }
        }
        401
    }

    /// Uses `password` from now on (e.g. a regenerated one, or an old one).
    pub fn set_password(&mut self, password: &str) {
        password.clone_into(&mut self.password);
    }

    /// Refuses the oldest queued new call with `status` (e.g. "486 Busy Here").
    pub fn decline(&mut self, status: &str) {
        let Some(i) = self
            .inbox
            .iter()
            .position(|m| m.first().starts_with("INVITE "))
        else {
            panic!("{}: no call to decline", self.user);
        };
        let inv = self.inbox.remove(i).unwrap();
        let n = self.next();
        let to = format!("{};tag=d{n}", inv.header("To").unwrap_or_default());
        let tagged = inv
            .text
            .replacen(inv.header("To").unwrap_or_default(), &to, 1);
        self.reply(&Msg { text: tagged }, status, "", "");
    }

    /// Reads the network for `d`; whether a new call (initial INVITE) arrived.
    pub fn invited_within(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            let _ = self.poll(&[]);
            if self.inbox.iter().any(|m| m.first().starts_with("INVITE ")) {
                return true;
            }
        }
        false
    }

    /// Places a call (digest on 407) with extra headers; returns the
    /// dialog once answered and ACKed, or the final failure status.
    pub fn call(&mut self, number: &str, extra: &str, media: &[&Dialog]) -> Result<Dialog, u16> {
        let n = self.next();
        let call_id = format!("call-{}-{n}@{}", self.user, self.addr());
        let uri = format!("sip:{number}@{}", self.domain);
        let local_uri = format!("<sip:{}@{}>", self.user, self.domain);
        let local_tag = format!("t{n}{}", self.user);
        let sdp = self.sdp();
        let mut auth = String::new();
        for cseq in 1..=2u32 {
            let branch = format!("z9hG4bKi{n}x{cseq}");
            let req = format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: {local_uri};tag={local_tag}\r\nTo: <{uri}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{u}@{a}>\r\n{extra}{auth}\
                 Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
                a = self.addr(),
                u = self.user,
                len = sdp.len()
            );
            self.send(&req);
            let r = loop {
                let r = self.response(&call_id, "INVITE", media);
                if r.status().is_some_and(|s| s >= 200) {
                    break r;
                }
            };
            let status = r.status().unwrap_or(500);
            let to = r.header("To").unwrap_or_default().to_owned();
            if status >= 300 {
                // ACK the failure in its transaction.
                let ack = format!(
                    "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch={branch};rport\r\nMax-Forwards: 70\r\n\
                     From: {local_uri};tag={local_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\n\
                     Content-Length: 0\r\n\r\n",
                    a = self.addr()
                );
                self.send(&ack);
                if status == 407 && cseq == 1 {
                    let ch = r.header("Proxy-Authenticate").unwrap().to_owned();
                    auth = self.authorization(&ch, "INVITE", &uri, "Proxy-Authorization");
                    continue;
                }
                return Err(status);
            }
            let target = r
                .header("Contact")
                .map(|c| {
                    c.trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
                .unwrap_or_else(|| uri.clone());
            let d = Dialog {
                call_id: call_id.clone(),
                local_tag: local_tag.clone(),
                remote_tag: tag_of(&to),
                local_uri: local_uri.clone(),
                remote_uri: without_tag(&to),
                remote_target: target,
                cseq,
                media: media_addr(r.body()),
            };
            self.ack(&d, cseq);
            return Ok(d);
        }
        Err(407)
    }

    fn ack(&self, d: &Dialog, cseq: u32) {
        let ack = format!(
            "ACK {t} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKa{cseq}{lt};rport\r\nMax-Forwards: 70\r\n\
             From: {lu};tag={lt}\r\nTo: {ru};tag={rt}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            t = d.remote_target,
            a = self.addr(),
            lu = d.local_uri,
            lt = d.local_tag,
            ru = d.remote_uri,
            rt = d.remote_tag,
            cid = d.call_id
        );
        self.send(&ack);
    }

    /// Waits for an incoming call and answers it at once.
    pub fn answer(&mut self, media: &[&Dialog]) -> Dialog {
        let until = Instant::now() + WAIT;
        let inv = loop {
            assert!(Instant::now() < until, "{}: no incoming call", self.user);
            let _ = self.poll(media);
            if let Some(i) = self.inbox.iter().position(|m| {
                m.first().starts_with("INVITE ")
                    && tag_of(m.header("To").unwrap_or_default()).is_empty()
            }) {
                break self.inbox.remove(i).unwrap();
            }
        };
        let n = self.next();
        let tag = format!("a{n}{}", self.user);
        let to = format!("{};tag={tag}", inv.header("To").unwrap_or_default());
        let sdp = self.sdp();
        let extra = format!(
            "Contact: <sip:{}@{}>\r\nContent-Type: application/sdp\r\n",
            self.user,
            self.addr()
        );
        let mut ok = inv.text.clone();
        // reply() copies To from the request: give it ours with the tag
        ok = ok.replacen(inv.header("To").unwrap_or_default(), &to, 1);
        self.reply(&Msg { text: ok }, "200 OK", &extra, &sdp);
        let from = inv.header("From").unwrap_or_default();
        let target = inv
            .header("Contact")
            .map(|c| {
                c.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        Dialog {
            call_id: inv.header("Call-ID").unwrap_or_default().to_owned(),
            local_tag: tag,
            remote_tag: tag_of(from),
            local_uri: without_tag(inv.header("To").unwrap_or_default()),
            remote_uri: without_tag(from),
            remote_target: target,
            cseq: 100,
            media: media_addr(inv.body()),
        }
    }

    /// Waits for an incoming call and rings (180) without answering;
    /// returns the early dialog.
    pub fn ring(&mut self) -> Dialog {
        let until = Instant::now() + WAIT;
        let inv = loop {
            assert!(Instant::now() < until, "{}: no incoming call", self.user);
            let _ = self.poll(&[]);
            if let Some(i) = self
                .inbox
                .iter()
                .position(|m| m.first().starts_with("INVITE "))
            {
                break self.inbox.remove(i).unwrap();
            }
        };
        let n = self.next();
        let tag = format!("e{n}{}", self.user);
        let to = format!("{};tag={tag}", inv.header("To").unwrap_or_default());
        let ringing = inv
            .text
            .replacen(inv.header("To").unwrap_or_default(), &to, 1);
        let extra = format!("Contact: <sip:{}@{}>\r\n", self.user, self.addr());
        self.reply(&Msg { text: ringing }, "180 Ringing", &extra, "");
        let from = inv.header("From").unwrap_or_default();
        Dialog {
            call_id: inv.header("Call-ID").unwrap_or_default().to_owned(),
            local_tag: tag,
            remote_tag: tag_of(from),
            local_uri: without_tag(inv.header("To").unwrap_or_default()),
            remote_uri: without_tag(from),
            remote_target: String::new(),
            cseq: 100,
            media: None,
        }
    }

    /// An in-dialog request; returns its final response status.
    pub fn request(
        &mut self,
        d: &mut Dialog,
        method: &str,
        extra: &str,
        body: &str,
        media: &[&Dialog],
    ) -> u16 {
        d.cseq += 1;
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let req = format!(
            "{method} {t} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKq{c}{lt};rport\r\nMax-Forwards: 70\r\n\
             From: {lu};tag={lt}\r\nTo: {ru};tag={rt}\r\nCall-ID: {cid}\r\nCSeq: {c} {method}\r\n\
             Contact: <sip:{u}@{a}>\r\n{extra}{ct}Content-Length: {len}\r\n\r\n{body}",
            t = d.remote_target,
            a = self.addr(),
            c = d.cseq,
            lu = d.local_uri,
            lt = d.local_tag,
            ru = d.remote_uri,
            rt = d.remote_tag,
            cid = d.call_id,
            u = self.user,
            len = body.len()
        );
        self.send(&req);
        let call_id = d.call_id.clone();
        let r = loop {
            let r = self.response(&call_id, method, media);
            if r.status().is_some_and(|s| s >= 200) {
                break r;
            }
        };
        if method == "INVITE" && r.status().is_some_and(|s| s < 300) {
            if let Some(m) = media_addr(r.body()) {
                d.media = Some(m);
            }
            self.ack(d, d.cseq);
        }
        r.status().unwrap_or(500)
    }

    /// Holds `d` (re-INVITE sendonly).
    pub fn hold(&mut self, d: &mut Dialog) -> u16 {
        let sdp = self.sdp().replace("a=sendrecv", "a=sendonly");
        self.request(d, "INVITE", "", &sdp, &[])
    }

    /// The Replaces value naming `d` for the PBX (its tag is to-tag).
    pub fn replaces(d: &Dialog) -> String {
        format!(
            "{};to-tag={};from-tag={}",
            d.call_id, d.remote_tag, d.local_tag
        )
    }
}
