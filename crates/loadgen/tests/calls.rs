//! `sb-loadgen calls` as a script would run it, against the fake B2BUA on
//! loopback (its own thread and runtime): registration, the 407 round,
//! both legs, RTP through a real relay, the JSON report and exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use loadgen::fake_pbx::{self, FakePbx, PbxStats, UdpRelay};
use loadgen::users::{generate, write_users};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sb-loadgen"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-loadgen-calls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the fake B2BUA for `users`; returns its address and its stats.
fn fake_pbx(users: &[loadgen::users::User]) -> (SocketAddr, Arc<Mutex<FakePbx<UdpRelay>>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let users = users.to_vec();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = sock.local_addr().unwrap();
            let pbx = Arc::new(Mutex::new(FakePbx::new(
                addr,
                &users,
                UdpRelay::new(addr.ip()),
            )));
            tx.send((addr, Arc::clone(&pbx))).unwrap();
            fake_pbx::serve_udp(sock, pbx).await;
        });
    });
    rx.recv().unwrap()
}

fn field(json: &str, name: &str) -> String {
    let key = format!("\"{name}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    json[at..]
        .chars()
        .take_while(|c| *c != ',' && *c != '}')
        .collect()
}

#[test]
fn calls_with_rtp_through_a_b2bua_complete_without_loss() {
    let dir = scratch("rtp");
    let users = generate(40, 200_000, "calls.example", 16).unwrap();
    let csv = dir.join("users.csv");
    write_users(
        &users,
        std::fs::File::create(&csv).unwrap(),
        None::<Vec<u8>>,
    )
    .unwrap();
    let (server, pbx) = fake_pbx(&users);
    let out = bin()
        .args(["calls", "--server", &server.to_string(), "--users"])
        .arg(&csv)
        .args([
            "--rate",
            "20",
            "--duration",
            "1s",
            "--hold",
            "800ms",
            "--rtp",
            "--rtp-sockets",
            "2",
            // a generous drain: on a loaded machine the fake relay may lag,
            // and what it still holds when the BYE closes it would count as lost
            "--media-drain",
            "300ms",
            "--grace",
            "5s",
            "--json",
        ])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{json}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field(&json, "registered"), "20", "{json}");
    assert_eq!(field(&json, "completed"), "20", "{json}");
    assert_eq!(field(&json, "failed"), "0", "{json}");
    assert_eq!(field(&json, "answered"), "20", "{json}");
    // 20 calls x 2 streams, 40 packets each in the 800 ms hold (the BYE
    // follows 300 ms after the media stops); fewer if the machine is so
    // busy that the sender skips
    assert_eq!(field(&json, "streams"), "40", "{json}");
    let sent: u64 = field(&json, "sent").parse().unwrap();
    assert!((200..=1700).contains(&sent), "{json}");
    assert_eq!(field(&json, "received"), sent.to_string(), "{json}");
    assert_eq!(field(&json, "lost"), "0", "{json}");
    assert_eq!(field(&json, "misrouted"), "0", "{json}");
    let stats: PbxStats = pbx.lock().unwrap().stats;
    assert_eq!(
        (stats.calls, stats.answered, stats.ended),
        (20, 20, 20),
        "{stats:?}"
    );
    // every INVITE was challenged once (plus the 20 REGISTERs)
    assert_eq!(stats.challenged, 40, "{stats:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_calls_fail_with_their_status_and_exit_1() {
    let dir = scratch("refused");
    let users = generate(8, 200_000, "calls.example", 16).unwrap();
    let (server, _pbx) = fake_pbx(&users);
    // the callers' passwords are wrong: every INVITE gets a 403
    let mut wrong = users.clone();
    for u in wrong.iter_mut().take(4) {
        u.password = "not-the-password".into();
    }
    let csv = dir.join("wrong.csv");
    write_users(
        &wrong,
        std::fs::File::create(&csv).unwrap(),
        None::<Vec<u8>>,
    )
    .unwrap();
    let out = bin()
        .args(["calls", "--server", &server.to_string(), "--users"])
        .arg(&csv)
        .args(["--rate", "8", "--duration", "500ms", "--json"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert!(json.contains("\"failures\":{\"403\":4}"), "{json}");

    // bad input is explained and exits 2
    let out = bin()
        .args(["calls", "--users"])
        .arg(&csv)
        .args(["--concurrent", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("room for 1 to 4 calls"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
