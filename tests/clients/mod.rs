//! Real SIP clients for end-to-end tests: baresip (a softphone), sipsak
//! (registrar checks) and sipvicious (`svwar`, `svcrack`: the scanners
//! attackers run). Everything talks to loopback only, every process is
//! killed on Drop, and every wait is bounded.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Db, Output, Server, cli, run_bounded};

pub mod carrier;
pub mod pbx;
pub mod sipua;

/// A second and a third loopback address: "another machine" for tests that
/// need two sources (Linux routes all of 127/8 to `lo`).
pub const PHONE_IP: &str = "127.0.0.2";
pub const OTHER_IP: &str = "127.0.0.3";
const ATTACKER_IP: &str = "127.0.0.1";

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ skipping

/// Returns false (after saying so on stdout and stderr) when a client is not
/// installed; the caller then returns without asserting anything. `.ci/run`
/// installs them all, so in CI these tests always run. Setting
/// `SWITCHBOARD_E2E_REQUIRE_CLIENTS=1` turns a missing client into a failure.
/// Either way the run ledger notes it, so `cargo xtask test` counts which tests
/// ran with which client and which skipped.
pub fn clients_available(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        testkit::ledger::client_ready(test, tools);
        return true;
    }
    let mut packages: Vec<&str> = missing
        .iter()
        .map(|t| match *t {
            "svwar" | "svcrack" | "svmap" => "sipvicious",
            other => other,
        })
        .collect();
    packages.dedup();
    let msg = format!(
        "SKIPPED {test}: {} not found on PATH (apt-get install {}; .ci/run does)",
        missing.join(", "),
        packages.join(" ")
    );
    if testkit::env_flag(testkit::REQUIRE_CLIENTS_ENV) {
        panic!("{msg}");
    }
    testkit::ledger::client_missing(test, &missing);
    println!("{msg}");
    eprintln!("{msg}");
    false
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

// ------------------------------------------------------------------ server side

/// The server's SIP listeners, learnt from its start-up log.
#[derive(Debug, Clone, Copy)]
pub struct SipAddrs {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

/// Waits (bounded) for the `sip listening on udp|tcp addr=IP:PORT` lines.
pub fn sip_addrs(server: &Server) -> SipAddrs {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.log();
        let find = |proto: &str| {
            let needle = format!("sip listening on {proto}");
            log.lines()
                .filter(|l| l.contains(&needle))
                .find_map(addr_field)
        };
        if let (Some(udp), Some(tcp)) = (find("udp"), find("tcp")) {
            return SipAddrs { udp, tcp };
        }
        assert!(
            Instant::now() < deadline,
            "the server never logged its SIP addresses; log:\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn addr_field(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("addr=")? + 5..];
    rest.split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// A provisioned tenant with one extension, using the credentials the CLI
/// printed (a generated password, as an operator would hand it out).
#[derive(Debug, Clone)]
pub struct Account {
    pub domain: String,
    pub user: String,
    pub password: String,
}

pub fn provision(db: &Db, domain: &str, numbers: &[&str]) -> Vec<Account> {
    cli(
        db,
        &[
            "--json", "tenant", "add", "--name", "Acme Ltd", "--domain", domain,
        ],
    )
    .json();
    numbers
        .iter()
        .map(|n| {
            let out = cli(
                db,
                &[
                    "--json",
                    "extension",
                    "add",
                    "--tenant",
                    domain,
                    "--number",
                    n,
                    "--name",
                    &format!("Phone {n}"),
                ],
            )
            .json();
            let sip = &out["sip"];
            Account {
                domain: sip["domain"].as_str().expect("sip.domain").to_owned(),
                user: sip["username"].as_str().expect("sip.username").to_owned(),
                password: sip["password"].as_str().expect("sip.password").to_owned(),
            }
        })
        .collect()
}

/// The tenant's live bindings, as `switchboard registration list --json`
/// reads them from the directory.
pub fn bindings(db: &Db, domain: &str) -> Vec<serde_json::Value> {
    let out = cli(db, &["--json", "registration", "list", "--tenant", domain]);
    match out.json() {
        serde_json::Value::Array(rows) => rows,
        other => panic!("registration list is not an array: {other}"),
    }
}

/// Polls the directory until `pred` holds for the binding list (bounded).
pub fn wait_for_bindings(
    db: &Db,
    domain: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = bindings(db, domain);
        if pred(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {timeout:?}; bindings now: {rows:#?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

// ------------------------------------------------------------------ processes

/// A running client whose stdout and stderr are collected into one log;
/// killed (SIGKILL) on Drop if still running.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, dir: Option<tempfile::TempDir>) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut l) = sink.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        Self {
            name,
            child,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a log line satisfies `pred`; returns it, or None on timeout
    /// or when the process has exited without printing it.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log().lines().find(|l| pred(l)) {
                return Some(l.to_owned());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                // One last look: the reader threads may lag the exit.
                thread::sleep(Duration::from_millis(100));
                return self.log().lines().find(|l| pred(l)).map(str::to_owned);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the client vanishes without unregistering, like a phone
    /// whose power is cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

// ------------------------------------------------------------------ baresip

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

fn baresip_module_path() -> Option<&'static str> {
    [
        "/usr/lib/baresip/modules",
        "/usr/lib/x86_64-linux-gnu/baresip/modules",
        "/usr/lib/aarch64-linux-gnu/baresip/modules",
        "/usr/local/lib/baresip/modules",
    ]
    .into_iter()
    .find(|p| Path::new(p).join("account.so").is_file())
}

/// Starts baresip headless with one account registering to `registrar`
/// from `local_ip`. It quits on its own after 90 s at the latest.
pub fn baresip(
    account: &Account,
    password: &str,
    local_ip: &str,
    registrar: SocketAddr,
    transport: Transport,
) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let modules = baresip_module_path().expect("baresip modules directory (account.so)");
    let mut config = format!(
        "poll_method\tepoll\n\
         sip_listen\t{local_ip}:0\n\
         net_interface\t{local_ip}\n\
         sip_trans_def\t{t}\n\
         audio_player\taubridge,nil\n\
         audio_source\tausine,440\n\
         audio_alert\taubridge,nil\n\
         module_path\t{modules}\n",
        t = transport.as_str()
    );
    // Audio is irrelevant to registration; load what exists, never a sound card.
    for m in ["g711.so", "ausine.so", "aubridge.so"] {
        if Path::new(modules).join(m).is_file() {
            config.push_str(&format!("module\t\t{m}\n"));
        }
    }
    config.push_str("module_app\taccount.so\n");
    std::fs::write(dir.path().join("config"), config).expect("write baresip config");
    let t = transport.as_str();
    let accounts = format!(
        "<sip:{user}@{domain};transport={t}>;auth_pass={password};outbound=\"sip:{registrar};transport={t}\";regint=600\n",
        user = account.user,
        domain = account.domain,
    );
    std::fs::write(dir.path().join("accounts"), accounts).expect("write baresip accounts");
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(dir.path()).args(["-t", "90"]);
    cmd.env("HOME", dir.path());
    Proc::spawn("baresip", cmd, Some(dir))
}

/// baresip's log line for a successful registration, e.g.
/// `101@acme.example: {0/UDP/v4} 200 OK () [1 binding]`.
pub fn is_registered_line(line: &str) -> bool {
    line.contains(" 200 OK") && line.contains("binding")
}

/// baresip's log line for a refused registration, e.g.
/// `reg: sip:101@acme.example: 403 Forbidden ()`.
pub fn is_refused_line(line: &str) -> bool {
    line.contains("reg: ") && (line.contains(" 401 ") || line.contains(" 403 "))
}

// ------------------------------------------------------------------ sipsak

/// One `sipsak` usrloc run: REGISTER `contact` for the account (digest auth
/// with `password`) with `expires` seconds, sent from `local_ip`. `-vvv`
/// prints the final response (its Contact list included).
pub fn sipsak_register(
    account: &Account,
    password: &str,
    local_ip: &str,
    registrar: SocketAddr,
    transport: Transport,
    contact: &str,
    expires: u32,
) -> Output {
    let mut cmd = Command::new("sipsak");
    // -p must come before -s, or sipsak tries to resolve the SIP domain.
    cmd.args(["-vvv", "-i", "-k", local_ip])
        .args(["-p", &registrar.to_string()])
        .args(["-E", transport.as_str()])
        .args(["-U", "-C", contact])
        .args(["-u", &account.user, "-a", password])
        .args(["-x", &expires.to_string()])
        .args(["-s", &format!("sip:{}@{}", account.user, account.domain)]);
    run_captured(cmd)
}

/// `sipsak` shoot mode: one OPTIONS to the server (`sip:DOMAIN`), `-vvv`
/// prints the reply.
pub fn sipsak_options(local_ip: &str, target: SocketAddr, domain: &str) -> Output {
    let mut cmd = Command::new("sipsak");
    cmd.args(["-vvv", "-k", local_ip])
        .args(["-p", &target.to_string()])
        .args(["-s", &format!("sip:{domain}")]);
    run_captured(cmd)
}

// ------------------------------------------------------------------ sipvicious

/// A UDP port free on `ip` right now, for tools that want `-P PORT`
/// (sipvicious binds 5060 by default).
pub fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

fn sipvicious(tool: &str, args: &[String], home: &Path) -> Output {
    let mut cmd = Command::new(tool);
    cmd.args(args).env("HOME", home);
    run_captured(cmd)
}

/// Runs a client to completion (bounded), capturing stdout and stderr.
fn run_captured(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_bounded(cmd, None, CLIENT_TIMEOUT)
}

/// `svwar`: enumerate extensions 100-110 with `method` (REGISTER/OPTIONS).
pub fn svwar(target: SocketAddr, domain: &str, method: &str) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let args = [
        "--force".to_owned(),
        "-e100-110".to_owned(),
        "-m".to_owned(),
        method.to_owned(),
        "-p".to_owned(),
        target.port().to_string(),
        "-b".to_owned(),
        ATTACKER_IP.to_owned(),
        "-P".to_owned(),
        free_udp_port(ATTACKER_IP).to_string(),
        "--domain".to_owned(),
        domain.to_owned(),
        "--maximumtime".to_owned(),
        "5".to_owned(),
        target.ip().to_string(),
    ];
    sipvicious("svwar", &args, home.path())
}

/// `svmap`: probe `target` with OPTIONS and report what answers (and its
/// User-Agent), from 127.0.0.1.
pub fn svmap(target: SocketAddr) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let args = [
        "-p".to_owned(),
        target.port().to_string(),
        "-b".to_owned(),
        ATTACKER_IP.to_owned(),
        "-P".to_owned(),
        free_udp_port(ATTACKER_IP).to_string(),
        target.ip().to_string(),
    ];
    sipvicious("svmap", &args, home.path())
}

/// `svcrack`: guess `user`'s password from `dictionary`, from 127.0.0.1.
pub fn svcrack(target: SocketAddr, domain: &str, user: &str, dictionary: &[String]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let dict = home.path().join("dictionary.txt");
    std::fs::write(&dict, dictionary.join("\n") + "\n").expect("write dictionary");
    let args = [
        format!("-u{user}"),
        "-d".to_owned(),
        dict.display().to_string(),
        "-p".to_owned(),
        target.port().to_string(),
        "-b".to_owned(),
        ATTACKER_IP.to_owned(),
        "-P".to_owned(),
        free_udp_port(ATTACKER_IP).to_string(),
        "--domain".to_owned(),
        domain.to_owned(),
        "--maximumtime".to_owned(),
        "5".to_owned(),
        target.ip().to_string(),
    ];
    sipvicious("svcrack", &args, home.path())
}

// ------------------------------------------------------------------ raw probe

/// Sends one OPTIONS from `local_ip` and returns the status line of the
/// answer, or None if nothing came back within `timeout`.
pub fn options_probe(
    local_ip: &str,
    target: SocketAddr,
    domain: &str,
    timeout: Duration,
) -> Option<String> {
    let sock = UdpSocket::bind((local_ip.parse::<IpAddr>().expect("IP"), 0)).expect("bind probe");
    let local = sock.local_addr().expect("probe address");
    let branch = format!("z9hG4bK{:x}", rand_u64());
    let msg = format!(
        "OPTIONS sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{domain}>;tag={tag:x}\r\n\
         To: <sip:{domain}>\r\n\
         Call-ID: {branch}@probe\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        tag = rand_u64()
    );
    sock.send_to(msg.as_bytes(), target).expect("send probe");
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .map(str::to_owned),
        Err(_) => None,
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

// ------------------------------------------------------------ baresip calls

/// How a call-making baresip behaves.
#[derive(Debug, Clone)]
pub struct PhoneOpts {
    /// Local address (127.0.0.x: another "machine").
    pub ip: &'static str,
    /// The sine its microphone sends, in Hz.
    pub tone: u32,
    /// Answer incoming calls at once.
    pub auto_answer: bool,
    /// A number to dial at start-up (`/dial`), e.g. `102`.
    pub dial: Option<String>,
    /// baresip quits (hanging up its calls) after this many seconds.
    pub quit_after: u32,
    /// Accept commands (`hold`, `resume`, ...) over baresip's ctrl_tcp
    /// module on this loopback port: [`Phone::command`].
    pub control_port: Option<u16>,
}

/// A baresip softphone with a tone generator as microphone and its audio
/// recorded by the sndfile module (`*-dec.wav`: what it heard).
pub struct Phone {
    pub proc: Proc,
    pub rec: PathBuf,
    control: Option<u16>,
}

pub fn baresip_phone(account: &Account, registrar: SocketAddr, opts: &PhoneOpts) -> Phone {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).expect("recordings dir");
    let modules = baresip_module_path().expect("baresip modules directory (account.so)");
    // ausine only produces 48 kHz stereo; baresip resamples to G.711.
    let mut config = format!(
        "poll_method\tepoll\n\
         sip_listen\t{ip}:0\n\
         net_interface\t{ip}\n\
         sip_trans_def\tudp\n\
         audio_player\taubridge,nil\n\
         audio_source\tausine,{tone}\n\
         audio_alert\taubridge,nil\n\
         ausrc_srate\t48000\n\
         auplay_srate\t48000\n\
         ausrc_channels\t2\n\
         snd_path\t{rec}\n\
         module_path\t{modules}\n",
        ip = opts.ip,
        tone = opts.tone,
        rec = rec.display(),
    );
    for m in ["g711.so", "ausine.so", "aubridge.so", "sndfile.so"] {
        config.push_str(&format!("module\t\t{m}\n"));
    }
    if let Some(port) = opts.control_port {
        config.push_str(&format!(
            "module\t\tctrl_tcp.so\nctrl_tcp_listen\t127.0.0.1:{port}\n"
        ));
    }
    config.push_str("module_app\taccount.so\nmodule_app\tmenu.so\n");
    std::fs::write(dir.path().join("config"), config).expect("write baresip config");
    let answer = if opts.auto_answer {
        ";answermode=auto"
    } else {
        ""
    };
    let accounts = format!(
        "<sip:{user}@{domain};transport=udp>;auth_pass={password};outbound=\"sip:{registrar};transport=udp\";regint=600{answer}\n",
        user = account.user,
        domain = account.domain,
        password = account.password,
    );
    std::fs::write(dir.path().join("accounts"), accounts).expect("write baresip accounts");
    let mut cmd = Command::new("baresip");
    cmd.arg("-f")
        .arg(dir.path())
        .args(["-t", &opts.quit_after.to_string()]);
    if let Some(n) = &opts.dial {
        cmd.args(["-e", &format!("/dial sip:{n}@{}", account.domain)]);
    }
    cmd.env("HOME", dir.path());
    Phone {
        proc: Proc::spawn("baresip", cmd, Some(dir)),
        rec,
        control: opts.control_port,
    }
}

/// A free TCP port on loopback (for baresip's ctrl_tcp).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
        .port()
}

impl Phone {
    /// Waits (bounded) for this phone's registration.
    pub fn wait_registered(&mut self) {
        let line = self
            .proc
            .wait_for_line(Duration::from_secs(15), is_registered_line);
        assert!(
            line.is_some(),
            "baresip did not register:\n{}",
            self.proc.log()
        );
    }

    /// Runs a baresip command (e.g. `hold`, `resume`) over ctrl_tcp (a
    /// netstring of JSON) and returns whether baresip said it succeeded.
    pub fn command(&self, command: &str) -> bool {
        self.command_with(command, "")
    }

    /// [`Phone::command`] with a parameter (e.g. `transfer` and a URI).
    pub fn command_with(&self, command: &str, params: &str) -> bool {
        use std::io::{Read as _, Write as _};
        let port = self.control.expect("phone started with a control_port");
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let body = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        let _ = s.write_all(format!("{}:{body},", body.len()).as_bytes());
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let mut reply = [0u8; 512];
        let n = s.read(&mut reply).unwrap_or(0);
        String::from_utf8_lossy(&reply[..n]).contains(r#""ok":true"#)
    }

    /// Waits until baresip has exited (its `-t` ran out).
    pub fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("baresip did not exit in {timeout:?}:\n{}", self.proc.log());
    }

    /// The audio this phone heard (16-bit mono samples and their rate), from
    /// the sndfile module's decode dump.
    pub fn heard(&self) -> (Vec<i16>, u32) {
        let file = std::fs::read_dir(&self.rec)
            .expect("recordings dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("no decode recording in {}", self.rec.display()));
        read_wav(&file)
    }
}

/// Reads a 16-bit PCM WAV file into mono samples (first channel).
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).expect("read wav");
    assert!(bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE");
    let (mut rate, mut channels, mut at) = (8000u32, 1usize, 12usize);
    let mut samples = Vec::new();
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]])).max(1);
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            samples = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    (samples, rate)
}
