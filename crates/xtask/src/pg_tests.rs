use super::*;

#[test]
fn target_parse_reads_user_password_host_and_port() {
    let t = Target::parse("postgres://postgres@127.0.0.1:5432").unwrap();
    assert_eq!(
        t,
        Target {
            user: "postgres".into(),
            has_password: false,
            host: "127.0.0.1".into(),
            port: 5432
        }
    );
    let t = Target::parse("postgresql://sb:secret@db.example:6000/sb?sslmode=disable").unwrap();
    assert_eq!((t.user.as_str(), t.has_password), ("sb", true));
    assert_eq!((t.host.as_str(), t.port), ("db.example", 6000));
    let t = Target::parse("postgres://[::1]:5433/x").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
    let t = Target::parse("postgres://localhost").unwrap();
    assert_eq!((t.user.as_str(), t.port), ("postgres", 5432));
    assert!(Target::parse("mysql://x").is_err());
    assert!(Target::parse("postgres://h:port").is_err());
}

/// A one-connection server that reads a startup message and answers `reply`.
fn fake_server(reply: Vec<u8>) -> Target {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        s.read_exact(&mut body).unwrap();
        assert_eq!(&body[..4], &196_608u32.to_be_bytes(), "protocol 3.0");
        assert!(
            body.windows(14).any(|w| w == b"user\0postgres\0"),
            "startup names the user"
        );
        s.write_all(&reply).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    Target {
        user: "postgres".into(),
        has_password: false,
        host: "127.0.0.1".into(),
        port,
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    m
}

const T: Duration = Duration::from_secs(5);

#[test]
fn probe_sees_trust_auth() {
    let t = fake_server(message(b'R', &0u32.to_be_bytes()));
    assert_eq!(probe(&t, T), Probe::Trusts);
}

#[test]
fn probe_sees_a_server_that_wants_a_password() {
    // 10: SASL (scram-sha-256), Debian's default for TCP connections.
    let t = fake_server(message(b'R', &10u32.to_be_bytes()));
    assert_eq!(probe(&t, T), Probe::WantsPassword(10));
}

#[test]
fn probe_reports_the_servers_refusal() {
    let t = fake_server(message(
        b'E',
        b"SFATAL\0C28000\0Mno pg_hba.conf entry for host \"127.0.0.1\"\0\0",
    ));
    assert_eq!(
        probe(&t, T),
        Probe::Refused("no pg_hba.conf entry for host \"127.0.0.1\"".into())
    );
}

#[test]
fn probe_of_something_else_is_no_answer() {
    let t = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    assert!(matches!(probe(&t, T), Probe::NoAnswer(_)));
}

#[test]
fn probe_of_a_closed_port_is_no_answer() {
    let port = free_port().unwrap();
    let t = Target {
        user: "postgres".into(),
        has_password: false,
        host: "127.0.0.1".into(),
        port,
    };
    assert!(matches!(probe(&t, T), Probe::NoAnswer(_)));
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "xtask-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fake_bin(dir: &Path, tools: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for t in tools {
        std::fs::write(dir.join(t), "").unwrap();
    }
}

#[test]
fn find_bindir_prefers_path_then_the_newest_debian_version() {
    let root = scratch("bindir");
    let lib = root.join("lib");
    fake_bin(&lib.join("9.6/bin"), &["initdb", "pg_ctl"]);
    fake_bin(&lib.join("15/bin"), &["initdb", "pg_ctl"]);
    fake_bin(&lib.join("16/bin"), &["initdb"]); // half installed: no pg_ctl
    fake_bin(&lib.join("notes/bin"), &["initdb", "pg_ctl"]);
    assert_eq!(find_bindir(None, None, &lib), Some(lib.join("15/bin")));

    let on_path = root.join("path");
    fake_bin(&on_path, &["initdb", "pg_ctl"]);
    let path = std::env::join_paths([root.join("empty"), on_path.clone()]).unwrap();
    assert_eq!(find_bindir(None, Some(path), &lib), Some(on_path));

    // An explicit directory must hold both tools: no silent fallback.
    assert_eq!(find_bindir(Some(lib.join("16/bin")), None, &lib), None);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn find_bindir_without_postgres_is_none() {
    let root = scratch("nobindir");
    if Path::new("/usr/local/pgsql/bin/initdb").exists() {
        return; // this machine has a source-built Postgres there: the fallback would find it
    }
    assert_eq!(find_bindir(None, None, &root), None);
    let _ = std::fs::remove_dir_all(&root);
}

/// The real thing, with the machine's initdb/pg_ctl: starts (as `postgres` or `nobody` when
/// root), lets `postgres` in without a password on a loopback port, and leaves nothing behind.
#[test]
fn throwaway_cluster_trusts_postgres_on_loopback_and_is_gone_after_drop() {
    let Some(bindir) = find_bindir(None, None, Path::new("/usr/lib/postgresql")) else {
        let msg = "SKIPPED throwaway_cluster: no initdb/pg_ctl (apt-get install postgresql)";
        assert!(!testkit::env_flag(testkit::REQUIRE_PG_ENV), "{msg}");
        println!("{msg}");
        return;
    };
    let cluster = Cluster::start(&bindir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            cluster.run_as().is_some(),
            "root runs the cluster as another user"
        );
    }
    let target = Target::parse(&cluster.url()).unwrap();
    assert_eq!(target.host, "127.0.0.1");
    assert_eq!(probe(&target, T), Probe::Trusts);
    let dir = cluster.dir().to_owned();
    assert!(dir.join("data/postmaster.pid").exists());
    drop(cluster);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        matches!(probe(&target, T), Probe::NoAnswer(_)),
        "the server still answers after Drop"
    );
}
