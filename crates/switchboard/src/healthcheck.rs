//! `switchboard healthcheck`: asks a running server's `/readyz` over a plain
//! TCP connection, so a container image needs no HTTP client.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_RESPONSE: u64 = 64 * 1024;

/// Where to connect for a server listening on `listen`: a wildcard listen
/// address is reached through loopback.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Returns the response body when `/readyz` answers 200, an error otherwise.
pub fn check(listen: SocketAddr) -> anyhow::Result<String> {
    let addr = target(listen);
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("cannot reach {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: switchboard-healthcheck\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("cannot send to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .with_context(|| format!("no answer from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or_default();
    if status == "200" {
        Ok(body.to_owned())
    } else if status.is_empty() {
        bail!("{addr} did not answer HTTP")
    } else {
        bail!("{addr}/readyz answered {status}: {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn one_shot_server(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(response.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn ready_server_passes() {
        let addr = one_shot_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ready\"}",
        );
        assert_eq!(check(addr).unwrap(), "{\"status\":\"ready\"}");
    }

    #[test]
    fn unready_server_fails_with_body() {
        let addr =
            one_shot_server("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"database\":\"down\"}");
        let err = check(addr).unwrap_err().to_string();
        assert!(err.contains("503") && err.contains("down"), "{err}");
    }

    #[test]
    fn closed_port_fails() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(check(addr).is_err());
    }

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(
            target("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            target("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
    }
}
