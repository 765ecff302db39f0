//! A minimal registrar for tests and self-measurement: it challenges every
//! REGISTER without credentials (SHA-256 and MD5, via `sip::auth::Verifier`),
//! verifies the answer against the users' HA1s and answers 200 or 403. It
//! keeps no bindings. Not a product: the real registrar lives in `pbx`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, Credentials, Verdict, Verifier, VerifierConfig, ha1_md5, ha1_sha256};
use sip::{Limits, Message, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::users::User;

#[derive(Debug, Default)]
pub struct FakeStats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub challenged: AtomicU64,
    pub registered: AtomicU64,
    pub refused: AtomicU64,
}

pub struct FakeRegistrar {
    verifier: Verifier,
    /// (username, realm) → (MD5 HA1, SHA-256 HA1)
    ha1: HashMap<(String, String), (String, String)>,
    drop_next: AtomicUsize,
    md5_only: bool,
    pub stats: FakeStats,
}

fn epoch_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl FakeRegistrar {
    pub fn new(users: &[User]) -> Self {
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
        FakeRegistrar {
            verifier: Verifier::new(&secret, VerifierConfig::default()),
            ha1,
            drop_next: AtomicUsize::new(0),
            md5_only: false,
            stats: FakeStats::default(),
        }
    }

    /// Silently drop the next `n` requests (to exercise retransmission).
    pub fn drop_first(self, n: usize) -> Self {
        self.drop_next.store(n, Ordering::Relaxed);
        self
    }

    /// Offer only an MD5 challenge.
    pub fn md5_only(mut self) -> Self {
        self.md5_only = true;
        self
    }

    /// Handles one message; returns the response bytes, if any.
    pub fn handle(&self, bytes: &[u8], stream: bool) -> Option<Vec<u8>> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let dropping = self
            .drop_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if dropping {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let limits = Limits::default();
        let parsed = if stream {
            sip::parse_stream_message(bytes, &limits)
        } else {
            sip::parse_datagram(bytes, &limits)
        };
        let Ok(Message::Request(req)) = parsed else {
            return None;
        };
        let resp = match req.method {
            sip::Method::Register => self.register(&req),
            _ => req.response_tagged(StatusCode::NOT_IMPLEMENTED),
        };
        Some(resp.to_bytes())
    }

    fn challenge(&self, req: &Request, realm: &str, stale: bool) -> sip::Response {
        self.stats.challenged.fetch_add(1, Ordering::Relaxed);
        let mut r = req.response_tagged(StatusCode::UNAUTHORIZED);
        let [sha, md5] = self.verifier.challenge_headers(realm, stale, epoch_now());
        if !self.md5_only {
            r.headers.push("WWW-Authenticate", &sha);
        }
        r.headers.push("WWW-Authenticate", &md5);
        r
    }

    fn register(&self, req: &Request) -> sip::Response {
        let realm = req.uri.host().to_owned();
        let Some(auth) = req.headers("Authorization").next() else {
            return self.challenge(req, &realm, false);
        };
        let Ok(creds) = Credentials::parse(auth) else {
            return self.refuse(req);
        };
        let uri = req.uri.as_str();
        let now = epoch_now();
        let verdict = match self.ha1.get(&(creds.username.clone(), realm.clone())) {
            Some((md5, sha)) => {
                let stored = match creds.algorithm.base() {
                    Algorithm::Md5 => md5,
                    _ => sha,
                };
                self.verifier
                    .verify(&creds, "REGISTER", uri, &realm, stored, now)
            }
            None => self
                .verifier
                .verify_unknown_user(&creds, "REGISTER", uri, &realm, now),
        };
        match verdict {
            Verdict::Ok => {
                self.stats.registered.fetch_add(1, Ordering::Relaxed);
                let mut r = req.response_tagged(StatusCode::OK);
                if let Some(c) = req.headers("Contact").next() {
                    let expires = req.headers("Expires").next().unwrap_or("3600");
                    r.headers.push("Contact", &format!("{c};expires={expires}"));
                }
                r
            }
            v if v.is_stale() => self.challenge(req, &realm, true),
            _ => self.refuse(req),
        }
    }

    fn refuse(&self, req: &Request) -> sip::Response {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        req.response_tagged(StatusCode::FORBIDDEN)
    }
}

/// Serves UDP until the task is dropped, replying to each datagram's source.
pub async fn serve_udp(sock: UdpSocket, reg: Arc<FakeRegistrar>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from): (usize, SocketAddr) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => continue,
        };
        if let Some(out) = reg.handle(buf.get(..n).unwrap_or(&[]), false) {
            let _ = sock.send_to(&out, from).await;
        }
    }
}

/// Serves TCP until the task is dropped: one task per connection.
pub async fn serve_tcp(listener: TcpListener, reg: Arc<FakeRegistrar>) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let reg = Arc::clone(&reg);
        tokio::spawn(async move {
            let limits = Limits::default();
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
            let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
            loop {
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut at = 0;
                loop {
                    let rest = buf.get(at..).unwrap_or(&[]);
                    match sip::frame_stream(rest, &limits) {
                        sip::Framing::Complete(n) => {
                            if let Some(r) = reg.handle(rest.get(..n).unwrap_or(&[]), true) {
                                out.extend_from_slice(&r);
                            }
                            at += n;
                        }
                        sip::Framing::Ping(n) => {
                            out.extend_from_slice(b"\r\n");
                            at += n;
                        }
                        sip::Framing::Pong(n) => at += n,
                        sip::Framing::Incomplete => break,
                        sip::Framing::Error(_) => return,
                    }
                }
                buf.drain(..at);
                if !out.is_empty() {
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        });
    }
}
