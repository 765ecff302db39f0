//! Test harness: a SQLite directory in a temp dir with one tenant and two extensions, the SIP
//! service on 127.0.0.1:0, and a small SIP user agent over real UDP/TCP sockets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pbx::{SipConfig, SipService, SipServiceHandle};
use sip::auth::{Challenge, ha1_md5, ha1_sha256};
use sip::{Limits, Message, Response};
use store::{
    Directory, ExtensionSettings, NewCredential, NewExtension, NewTenant, SipCredential, Tenant,
    TenantSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;

pub const DOMAIN: &str = "acme.example.com";
pub const PASSWORD: &str = "correct horse";
pub const WAIT: Duration = Duration::from_secs(3);

pub struct Env {
    pub dir: Arc<dyn Directory>,
    pub tenant: Tenant,
    pub alice: SipCredential,
    pub bob: SipCredential,
    pub url: String,
    _tmp: tempfile::TempDir,
}

async fn extension(dir: &dyn Directory, tenant: &Tenant, number: &str) -> SipCredential {
    let (_, cred) = dir
        .create_extension(
            tenant.id,
            &NewExtension {
                number: number.parse().unwrap(),
                settings: ExtensionSettings::new(format!("Ext {number}")),
            },
            Some(&NewCredential {
                username: number.parse().unwrap(),
                ha1_md5: ha1_md5(number, DOMAIN, PASSWORD).parse().unwrap(),
                ha1_sha256: ha1_sha256(number, DOMAIN, PASSWORD).parse().unwrap(),
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    cred.unwrap()
}

pub async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("sb.db").display());
    let dir = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    let tenant = dir
        .create_tenant(&NewTenant {
            slug: "acme".parse().unwrap(),
            sip_domain: DOMAIN.parse().unwrap(),
            settings: TenantSettings::new("Acme"),
        })
        .await
        .unwrap();
    let alice = extension(&*dir, &tenant, "1001").await;
    let bob = extension(&*dir, &tenant, "1002").await;
    Env {
        dir,
        tenant,
        alice,
        bob,
        url,
        _tmp: tmp,
    }
}

pub struct Running {
    pub handle: SipServiceHandle,
    pub stop: oneshot::Sender<()>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addrs().udp
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.handle.join())
            .await
            .expect("service stops in time")
            .unwrap();
    }
}

pub async fn start(env: &Env, tweak: impl FnOnce(&mut SipConfig)) -> Running {
    let mut cfg = SipConfig::new("127.0.0.1:0".parse().unwrap());
    // no OPTIONS keepalive to the tests' scripted carriers unless a test turns it on
    cfg.calls.trunk_keepalive = std::time::Duration::ZERO;
    tweak(&mut cfg);
    let (stop, rx) = oneshot::channel::<()>();
    let handle = SipService::start(cfg, Arc::clone(&env.dir), async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Running { handle, stop }
}

pub fn parse_response(bytes: &[u8]) -> Response {
    match sip::parse_datagram(bytes, &Limits::default()).expect("response parses") {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {r:?}"),
    }
}

/// A REGISTER (or other request) under construction.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: &'static str,
    pub uri: String,
    pub user: String,
    pub call_id: String,
    pub cseq: u32,
    pub branch: String,
    pub contacts: Vec<String>,
    pub expires: Option<u32>,
    pub auth: Option<String>,
    pub via_host: Option<String>,
    pub extra: Vec<String>,
}

pub fn rand_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The user agent: one socket (UDP or TCP) to the server.
pub struct Ua {
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: &'static str,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    tcp_buf: Vec<u8>,
    pub user: String,
    pub password: String,
    pub call_id: String,
    pub cseq: u32,
    pub last_sent: Vec<u8>,
}

impl Ua {
    pub async fn udp(bind_ip: &str, server: SocketAddr, user: &str) -> Ua {
        let sock = UdpSocket::bind(format!("{bind_ip}:0")).await.unwrap();
        Ua {
            local: sock.local_addr().unwrap(),
            server,
            transport: "UDP",
            udp: Some(sock),
            tcp: None,
            tcp_buf: Vec::new(),
            user: user.to_owned(),
            password: PASSWORD.to_owned(),
            call_id: format!("{}@test", rand_token()),
            cseq: 0,
            last_sent: Vec::new(),
        }
    }

    pub async fn tcp(server: SocketAddr, user: &str) -> Ua {
        let stream = TcpStream::connect(server).await.unwrap();
        Ua {
            local: stream.local_addr().unwrap(),
            server,
            transport: "TCP",
            udp: None,
            tcp: Some(stream),
            tcp_buf: Vec::new(),
            user: user.to_owned(),
            password: PASSWORD.to_owned(),
            call_id: format!("{}@test", rand_token()),
            cseq: 0,
            last_sent: Vec::new(),
        }
    }

    /// A REGISTER for this UA's user with its own contact, next CSeq, fresh branch.
    pub fn register_req(&mut self) -> Req {
        self.cseq += 1;
        Req {
            method: "REGISTER",
            uri: format!("sip:{DOMAIN}"),
            user: self.user.clone(),
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            branch: format!("z9hG4bK{}", rand_token()),
            contacts: vec![format!("<sip:{}@{}>", self.user, self.local)],
            expires: None,
            auth: None,
            via_host: None,
            extra: Vec::new(),
        }
    }

    pub fn render(&self, r: &Req) -> Vec<u8> {
        let via_host = r.via_host.clone().unwrap_or_else(|| self.local.to_string());
        let mut s = format!(
            "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{}@{DOMAIN}>;tag=ua{}\r\nTo: <sip:{}@{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
            r.method,
            r.uri,
            self.transport,
            via_host,
            r.branch,
            r.user,
            r.call_id.len(),
            r.user,
            r.call_id,
            r.cseq,
            r.method
        );
        for c in &r.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = r.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &r.auth {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        for x in &r.extra {
            s.push_str(x);
            s.push_str("\r\n");
        }
        s.push_str("User-Agent: switchboard-test\r\nContent-Length: 0\r\n\r\n");
        s.into_bytes()
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.last_sent = bytes.to_vec();
        if let Some(u) = &self.udp {
            u.send_to(bytes, self.server).await.unwrap();
        } else if let Some(t) = &mut self.tcp {
            t.write_all(bytes).await.unwrap();
        }
    }

    /// The next response, or `None` after `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Response> {
        self.recv_bytes(wait).await.map(|b| parse_response(&b))
    }

    pub async fn recv_bytes(&mut self, wait: Duration) -> Option<Vec<u8>> {
        if let Some(u) = &self.udp {
            let mut buf = vec![0u8; 65535];
            let (n, _) = tokio::time::timeout(wait, u.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            buf.truncate(n);
            return Some(buf);
        }
        let t = self.tcp.as_mut()?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // a client that sent a ping knows a lone CRLF is its pong (the framer
            // waits for more, since for a server it may be half a ping)
            if self.tcp_buf == b"\r\n" {
                return Some(std::mem::take(&mut self.tcp_buf));
            }
            match sip::frame_stream(&self.tcp_buf, &Limits::default()) {
                sip::Framing::Complete(n) => {
                    let msg = self.tcp_buf.drain(..n).collect();
                    return Some(msg);
                }
                sip::Framing::Pong(n) | sip::Framing::Ping(n) => {
                    let msg = self.tcp_buf.drain(..n).collect();
                    return Some(msg);
                }
                sip::Framing::Error(e) => panic!("bad frame from server: {e}"),
                sip::Framing::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, t.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.tcp_buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn recv(&mut self) -> Response {
        self.recv_within(WAIT).await.expect("a response in time")
    }

    pub async fn send(&mut self, r: &Req) -> Response {
        let bytes = self.render(r);
        self.send_raw(&bytes).await;
        self.recv().await
    }

    /// Answers the first (SHA-256) challenge of a 401 for `r` (nc=1, fresh cnonce).
    pub fn authorize(&self, r: &mut Req, challenge: &Response, password: &str) {
        let www = challenge
            .headers("WWW-Authenticate")
            .next()
            .expect("a WWW-Authenticate header");
        let c = Challenge::parse(www).unwrap();
        let creds = c.answer(&r.user, password, r.method, &r.uri, 1, &rand_token());
        r.auth = Some(creds.to_header_value());
    }

    /// The whole dance: REGISTER, 401, REGISTER with credentials. Returns the final answer.
    pub async fn register_with(&mut self, mut r: Req, password: &str) -> Response {
        let first = self.send(&r).await;
        assert_eq!(first.status.as_u16(), 401, "challenge expected: {first:?}");
        self.cseq += 1;
        r.cseq = self.cseq;
        r.branch = format!("z9hG4bK{}", rand_token());
        self.authorize(&mut r, &first, password);
        self.send(&r).await
    }

    pub async fn register(&mut self) -> Response {
        let r = self.register_req();
        let pw = self.password.clone();
        self.register_with(r, &pw).await
    }
}

pub fn contacts(r: &Response) -> Vec<String> {
    r.headers("Contact").map(str::to_owned).collect()
}

pub fn header_names(r: &Response) -> Vec<String> {
    let mut v: Vec<String> = r.headers.iter().map(|(n, _)| n.to_owned()).collect();
    v.sort();
    v
}
