//! The TCP listener: one reader task and one writer task per connection. The reader frames
//! messages by Content-Length ([`sip::frame_stream`]), answers RFC 5626 CRLFCRLF pings with a
//! CRLF pong and closes idle or broken connections; the writer drains a bounded channel that
//! [`super::Outbound`] feeds, so responses go back on the connection the request came on.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip::{Framing, Limits, frame_stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{ConnTable, Flow, Inbound, TransportKind};

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
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(600),
            send_queue: 256,
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
        let (tx, rx) = mpsc::channel::<Bytes>(cfg.send_queue.max(1));
        let Some(id) = conns.register(TransportKind::Tcp, remote, tx.clone(), cfg.max_connections)
        else {
            tracing::debug!(%remote, "TCP connection refused: too many connections");
            drop(stream);
            continue;
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
/// with its queue (the transaction then times out).
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
        let id = conns
            .register(
                TransportKind::Tcp,
                remote,
                tx.clone(),
                self.cfg.max_connections,
            )
            .ok_or(super::SendError::QueueFull)?;
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
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "outbound TCP connection timed out");
                        conns.remove(id);
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
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'conn: loop {
        // consume every complete message in the buffer
        loop {
            match frame_stream(&buf, limits) {
                Framing::Complete(len) => {
                    if let Some(msg) = buf.get(..len) {
                        sink.on_stream_message(flow, msg);
                    }
                    buf.drain(..len.min(buf.len()));
                }
                Framing::Ping(len) => {
                    let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                    buf.drain(..len.min(buf.len()));
                }
                Framing::Pong(len) => {
                    buf.drain(..len.min(buf.len()));
                }
                Framing::Incomplete => break,
                Framing::Error(e) => {
                    // answer what can be answered (e.g. 513 for an oversized message), then
                    // close: the stream cannot be resynchronised
                    if let Some(r) = sip::error_response(&buf, &e, limits) {
                        let _ = tx.try_send(Bytes::from(r.to_bytes()));
                    }
                    tracing::debug!(remote = %flow.remote, error = %e, "closing TCP connection");
                    break 'conn;
                }
            }
        }
        let read = tokio::select! {
            r = tokio::time::timeout(cfg.idle_timeout, reader.read(&mut chunk)) => r,
            _ = stop.changed() => break,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(_) => {
                tracing::debug!(remote = %flow.remote, "closing idle TCP connection");
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
