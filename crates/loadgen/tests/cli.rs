//! The binary as a script would use it: `users` writes both CSVs,
//! `register` prints JSON and gates on failures through its exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use loadgen::fake_registrar::{self, FakeRegistrar};
use loadgen::users::read_users;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sb-loadgen"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-loadgen-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the fake registrar on its own thread and runtime; returns its address.
fn fake_on_thread(reg: FakeRegistrar) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send(sock.local_addr().unwrap()).unwrap();
            let _ = fake_registrar::serve_udp(sock, Arc::new(reg)).await;
        });
    });
    rx.recv().unwrap()
}

#[test]
fn users_then_register_with_exit_codes() {
    let dir = scratch("flow");
    let users = dir.join("users.csv");
    let import = dir.join("ext.csv");
    let out = bin()
        .args(["users", "--count", "20", "--domain", "cli.example", "--out"])
        .arg(&users)
        .arg("--import-csv")
        .arg(&import)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = read_users(&users, None).unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list[0].username, "200000");
    assert_eq!(read_users(&import, Some("cli.example")).unwrap(), list);

    let server = fake_on_thread(FakeRegistrar::new(&list));
    let run = |csv: &PathBuf| {
        bin()
            .args(["register", "--server", &server.to_string(), "--users"])
            .arg(csv)
            .args([
                "--rate",
                "40",
                "--duration",
                "500ms",
                "--grace",
                "2s",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let ok = run(&users);
    let json = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{json}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(json.contains("\"completed\":20,"), "{json}");
    assert!(json.contains("\"failed\":0,"), "{json}");

    // the same users with other passwords: every registration gets a 403
    let wrong = dir.join("wrong.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    let mut bad = String::from("username,password,domain\n");
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let (u, _, d) = (f.next().unwrap(), f.next(), f.next().unwrap());
        bad.push_str(&format!("{u},wrong-password,{d}\n"));
    }
    std::fs::write(&wrong, bad).unwrap();
    let fail = run(&wrong);
    let json = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{json}");
    assert!(json.contains("\"failures\":{\"403\":20}"), "{json}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_explained_and_exits_2() {
    let dir = scratch("bad");
    let csv = dir.join("users.csv");
    std::fs::write(&csv, "user,pass\n1,2\n").unwrap();
    let out = bin()
        .args(["register", "--users"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1: header is `user,pass`"), "{err}");
    let out = bin()
        .args([
            "users",
            "--count",
            "10",
            "--start",
            "999995",
            "--domain",
            "a.example",
            "--out",
        ])
        .arg(dir.join("x.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 digits"));
    let _ = std::fs::remove_dir_all(&dir);
}
