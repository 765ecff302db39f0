//! The TCP listener: one reader task and one writer task per connection. The reader frames
//! messages by Content-Length ([`sip::StreamFramer`], linear in the bytes received however
//! they are split), answers RFC 5626 CRLFCRLF pings with a CRLF pong and closes idle or broken
//! connections; the writer drains a bounded channel that [`super::Outbound`] feeds, so
//! responses go back on the connection the request came on.
//!
//! At accept, a connection from a banned source is closed at once, and so is one past
//! `max_per_ip` open connections from its IP (IPv6: its /64; exempt sources such as trunks
//! are not limited). A connection must deliver its first complete message within
//! `first_message_timeout` of being accepted (a slow drip does not extend it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip::{Frame, Limits, StreamFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{ConnTable, ConnectionPolicy, Flow, Inbound, TransportKind};

/// Limits of the TCP transport.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Open connections at most; further ones are closed at once. Default 10,000.
    pub max_connections: usize,
    /// A connection that sends nothing (not even a keep-alive) for this long is closed.
    /// Default 10 minutes (phones ping every 30–120 s, RFC 5626 suggests ≤ 120 s).
    pub idle_timeout: Duration,
    /// Messages queued for one connection's writer; beyond, sends fail. Default 256.
    pub send_queue: usize,
    /// Open connections from one IP (IPv6: one /64) at most. Default 32.
    pub max_per_ip: usize,
    /// Time from accept to the first complete message; then the connection is closed.
    /// Default 10 s.
    pub first_message_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(600),
            send_queue: 256,
            max_per_ip: 32,
            first_message_timeout: Duration::from_secs(10),
        }
    }
}

/// Accepts connections until `stop` turns true.
pub(crate) async fn run(
    listener: TcpListener,
    conns: Arc<ConnTable>,
    sink: Arc<dyn Inbound>,
    cfg: TcpConfig,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let per_ip = match sink.connection_policy(remote) {
            ConnectionPolicy::Refuse => {
                metrics::counter!("sip_tcp_refused_total", "reason" => "banned").increment(1);
                tracing::debug!(%remote, "TCP connection refused: source banned");
                drop(stream);
                continue;
            }
            ConnectionPolicy::Unlimited => usize::MAX,
            ConnectionPolicy::Limited => cfg.max_per_ip.max(1),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(cfg.send_queue.max(1));
        let id = match conns.register_inbound(
            TransportKind::Tcp,
            remote,
            tx.clone(),
            cfg.max_connections,
            per_ip,
        ) {
            Ok(id) => id,
            Err(why) => {
                metrics::counter!("sip_tcp_refused_total", "reason" => why).increment(1);
                tracing::debug!(%remote, why, "TCP connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let flow = Flow {
            kind: TransportKind::Tcp,
            local,
            remote,
            conn: Some(id),
        };
        let conns = Arc::clone(&conns);
        let sink = Arc::clone(&sink);
        let cfg = cfg.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(stream, flow, tx, rx, sink, &cfg, &limits, stop, &conns).await;
        });
    }
}

/// Opens outbound TCP connections (trunks over TCP): the first message is
/// queued at once and the connection is registered before it is up, so
/// later sends to the same address share it; once connected it runs like an
/// accepted connection (responses and in-dialog requests come back on it).
/// A connection that cannot be made within [`CONNECT_TIMEOUT`] is dropped
/// with its queue, and the sink is told, so the transactions sent over it
/// fail at once (a trunk's call fails over without waiting out its timers).
#[derive(Clone)]
pub(crate) struct TcpDialer {
    /// Weak: the sink (the SIP core) owns the [`super::Outbound`] that owns this dialer.
    pub sink: std::sync::Weak<dyn Inbound>,
    pub cfg: TcpConfig,
    pub limits: Limits,
    pub stop: watch::Receiver<bool>,
}

/// How long an outbound TCP connect may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl TcpDialer {
    pub(crate) fn dial(
        &self,
        conns: &Arc<ConnTable>,
        remote: std::net::SocketAddr,
        bytes: Bytes,
    ) -> Result<(), super::SendError> {
        let sink = self
            .sink
            .upgrade()
            .ok_or(super::SendError::ConnectionGone)?;
        let (tx, rx) = mpsc::channel::<Bytes>(self.cfg.send_queue.max(1));
        // our own connections are not held to the per-source limit of accepted ones
        let id = conns
            .register_inbound(
                TransportKind::Tcp,
                remote,
                tx.clone(),
                self.cfg.max_connections,
                usize::MAX,
            )
            .map_err(|_| super::SendError::QueueFull)?;
        tx.try_send(bytes)
            .map_err(|_| super::SendError::QueueFull)?;
        let (conns, d) = (Arc::clone(conns), self.clone());
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!(%remote, error = %e, "outbound TCP connection failed");
                        conns.remove(id);
                        sink.connect_failed(TransportKind::Tcp, remote);
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "outbound TCP connection timed out");
                        conns.remove(id);
                        sink.connect_failed(TransportKind::Tcp, remote);
                        return;
                    }
                };
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(remote);
            tracing::debug!(%remote, %local, "outbound TCP connection open");
            let flow = Flow {
                kind: TransportKind::Tcp,
                local,
                remote,
                conn: Some(id),
            };
            connection(
                stream, flow, tx, rx, sink, &d.cfg, &d.limits, d.stop, &conns,
            )
            .await;
        });
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    flow: Flow,
    tx: mpsc::Sender<Bytes>,
    mut rx: mpsc::Receiver<Bytes>,
    sink: Arc<dyn Inbound>,
    cfg: &TcpConfig,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
    conns: &ConnTable,
) {
    let (mut reader, mut writer) = stream.into_split();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut framer = StreamFramer::new();
    let mut chunk = vec![0u8; 16 * 1024];
    // until the first complete message, the connection lives on a fixed deadline
    let mut first_by = Some(tokio::time::Instant::now() + cfg.first_message_timeout);
    'conn: loop {
        // consume every complete message in the buffer
        loop {
            match framer.next_frame(limits) {
                Frame::Message(msg) => {
                    first_by = None;
                    sink.on_stream_message(flow, msg);
                }
                Frame::Ping => {
                    let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                }
                Frame::Pong => {}
                Frame::Incomplete => break,
                Frame::Error(e, bytes) => {
                    // answer what can be answered (e.g. 513 for an oversized message), then
                    // close: the stream cannot be resynchronised
                    if let Some(r) = sip::error_response(bytes, &e, limits) {
                        let _ = tx.try_send(Bytes::from(r.to_bytes()));
                    }
                    tracing::debug!(remote = %flow.remote, error = %e, "closing TCP connection");
                    break 'conn;
                }
            }
        }
        let wait = match first_by {
            Some(at) => at
                .saturating_duration_since(tokio::time::Instant::now())
                .min(cfg.idle_timeout),
            None => cfg.idle_timeout,
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, reader.read(&mut chunk)) => r,
            _ = stop.changed() => break,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => framer.push(chunk.get(..n).unwrap_or(&[])),
            Err(_) => {
                if first_by.is_some() {
                    metrics::counter!("sip_tcp_closed_total", "reason" => "no_first_message")
                        .increment(1);
                    tracing::debug!(remote = %flow.remote, "closing TCP connection: no complete message in time");
                } else {
                    tracing::debug!(remote = %flow.remote, "closing idle TCP connection");
                }
                break;
            }
        }
    }
    if let Some(id) = flow.conn {
        conns.remove(id);
    }
    drop(tx);
    // every sender is gone now: the writer flushes what is queued (an error answer) and ends
    let _ = tokio::time::timeout(Duration::from_millis(200), writer_task).await;
}
