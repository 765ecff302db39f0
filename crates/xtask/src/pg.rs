//! Finding a Postgres for the tests: probe the configured server (does it let the tests' user
//! in without a password?), and otherwise start a throwaway cluster with the machine's own
//! `initdb` and `pg_ctl` in a temp dir, on a free loopback port, with trust auth; stop it and
//! remove the dir on Drop.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, ToSocketAddrs as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The parts of a `postgres://user[:password]@host[:port][/db][?query]` URL a probe needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub has_password: bool,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| format!("{url:?} is not a postgres:// URL"))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, has_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((name, _)) => (name, true),
                None => (u, false),
            },
            None => ("", false),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed [ in the host of {url:?}"))?;
            (h, tail.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("port {p:?} in {url:?} is not a number"))?,
            None => 5432,
        };
        Ok(Target {
            user: if user.is_empty() { "postgres" } else { user }.to_owned(),
            has_password,
            host: if host.is_empty() { "localhost" } else { host }.to_owned(),
            port,
        })
    }
}

/// What a server said to a connection attempt as the tests' user, database `postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Authentication OK without a password: the tests can use it.
    Trusts,
    /// The server wants a password (authentication request code).
    WantsPassword(u32),
    /// The server refused with this message (no pg_hba.conf entry, no such role, ...).
    Refused(String),
    /// Nothing usable answers (connection refused, timeout, not PostgreSQL).
    NoAnswer(String),
}

/// Opens a connection to `target` and sends a protocol-3 startup message; reads the first
/// answer only, then says goodbye. Bounded by `timeout` per step.
pub fn probe(target: &Target, timeout: Duration) -> Probe {
    let addrs = match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Probe::NoAnswer(format!("cannot resolve {}: {e}", target.host)),
    };
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return startup(s, &target.user, timeout),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Probe::NoAnswer(last)
}

fn startup(mut s: TcpStream, user: &str, timeout: Duration) -> Probe {
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [("user", user), ("database", "postgres")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let Ok(len) = u32::try_from(body.len() + 4) else {
        return Probe::NoAnswer("user name too long".into());
    };
    let mut msg = len.to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    if let Err(e) = s.write_all(&msg) {
        return Probe::NoAnswer(format!("send: {e}"));
    }
    let mut head = [0u8; 5];
    if let Err(e) = s.read_exact(&mut head) {
        return Probe::NoAnswer(format!("no answer to a PostgreSQL startup message: {e}"));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=65_536).contains(&len) {
        return Probe::NoAnswer("the answer is not PostgreSQL's".into());
    }
    let mut payload = vec![0u8; len - 4];
    if let Err(e) = s.read_exact(&mut payload) {
        return Probe::NoAnswer(format!("short answer: {e}"));
    }
    let _ = s.write_all(&[b'X', 0, 0, 0, 4]); // Terminate
    match head[0] {
        b'R' if payload.len() >= 4 => {
            match u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) {
                0 => Probe::Trusts,
                code => Probe::WantsPassword(code),
            }
        }
        b'E' => Probe::Refused(error_message(&payload)),
        _ => Probe::NoAnswer("the answer is not PostgreSQL's".into()),
    }
}

/// The `M` (message) field of an ErrorResponse body.
fn error_message(payload: &[u8]) -> String {
    let mut rest = payload;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        if kind == b'M' {
            return String::from_utf8_lossy(&tail[..end]).into_owned();
        }
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    "an error without a message".into()
}

/// The directory holding `initdb` and `pg_ctl`: `explicit` if given (and it must hold them),
/// else the first `PATH` entry holding both, else the newest `/usr/lib/postgresql/N/bin`
/// (Debian, Ubuntu), else `/usr/local/pgsql/bin`. `lib_root` is `/usr/lib/postgresql` outside
/// tests.
pub fn find_bindir(
    explicit: Option<PathBuf>,
    path_var: Option<OsString>,
    lib_root: &Path,
) -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = explicit {
        return has_both(&d).then_some(d);
    }
    if let Some(p) = path_var
        && let Some(d) = std::env::split_paths(&p).find(|d| has_both(d))
    {
        return Some(d);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(lib_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let key = name
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((key, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let local = PathBuf::from("/usr/local/pgsql/bin");
    has_both(&local).then_some(local)
}

/// The user a cluster runs as when this process is root (initdb refuses root).
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam with a valid C string; the fields are copied out at once, before any
    // other call that could reuse its static buffer (this process is single-threaded here).
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to getpwnam's static passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(RunAs {
        name: name.to_owned(),
        uid,
        gid,
    })
}

/// A throwaway PostgreSQL cluster: trust auth, loopback only, fsync off, in a temp dir that
/// Drop removes after stopping the server.
pub struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    run_as: Option<RunAs>,
    pub port: u16,
    pub version: String,
    started: bool,
}

const START_ATTEMPTS: usize = 3;

impl Cluster {
    /// initdb + pg_ctl start; returns once the server lets `postgres` in without a password.
    pub fn start(bindir: &Path) -> Result<Cluster, String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = if root {
            Some(
                lookup_user("postgres")
                    .or_else(|| lookup_user("nobody"))
                    .ok_or("running as root, and neither a `postgres` nor a `nobody` user exists to run initdb as (initdb refuses root)")?,
            )
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!(
            "switchboard-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            bindir: bindir.to_owned(),
            dir,
            run_as,
            port: 0,
            version: String::new(),
            started: false,
        };
        if let Some(u) = &cluster.run_as {
            std::os::unix::fs::chown(&cluster.dir, Some(u.uid), Some(u.gid)).map_err(|e| {
                format!(
                    "cannot give {} to user {}: {e}",
                    cluster.dir.display(),
                    u.name
                )
            })?;
        }
        cluster.version = cluster
            .run(cluster.tool("pg_ctl").arg("--version"))
            .ok()
            .and_then(|o| {
                let s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.split_once("(PostgreSQL) ")
                    .map(|(_, v)| v.split_whitespace().next().unwrap_or("").to_owned())
            })
            .unwrap_or_else(|| "of unknown version".into());
        let data = cluster.data();
        let out = cluster.run(
            cluster
                .tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync"]),
        )?;
        if !out.status.success() {
            return Err(format!("initdb failed:\n{}", tail(&out)));
        }
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            cluster.configure(port)?;
            let out = cluster.run(
                cluster
                    .tool("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(cluster.dir.join("server.log"))
                    .args(["-w", "-t", "60", "start"]),
            )?;
            cluster.started = true;
            if out.status.success() {
                cluster.port = port;
                let target = Target {
                    user: "postgres".into(),
                    has_password: false,
                    host: "127.0.0.1".into(),
                    port,
                };
                return match probe(&target, Duration::from_secs(5)) {
                    Probe::Trusts => Ok(cluster),
                    other => Err(format!(
                        "the cluster started on port {port} but does not let postgres in: {other:?}"
                    )),
                };
            }
            // Most likely someone took the port between our probe and the server's bind.
            last = format!("{}\n{}", tail(&out), cluster.server_log());
            cluster.stop();
        }
        Err(format!(
            "pg_ctl start failed {START_ATTEMPTS} times; last:\n{last}"
        ))
    }

    /// The URL the tests use for this cluster (their user `postgres`, trusted).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_ref().map(|u| u.name.as_str())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Appends the settings for `port` to postgresql.conf (a later line wins over an earlier).
    fn configure(&self, port: u16) -> Result<(), String> {
        let conf = self.data().join("postgresql.conf");
        let socket_dir = self.dir.display().to_string().replace('\'', "''");
        let settings = format!(
            "\n# cargo xtask test: a throwaway cluster for the tests\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             max_connections = 200\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", conf.display()))
    }

    /// A command for one of the cluster's tools, as the cluster's user, in its dir.
    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bindir.join(name));
        c.current_dir(&self.dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            // The server pg_ctl starts keeps these open: files, not pipes we would wait on.
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(u) = &self.run_as {
            c.uid(u.uid).gid(u.gid).env("HOME", &self.dir);
        }
        c
    }

    fn run(&self, cmd: &mut Command) -> Result<Output, String> {
        cmd.output()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))
    }

    /// Stops the server if it runs (fast shutdown; SIGQUIT to the postmaster if pg_ctl fails).
    pub fn stop(&mut self) {
        if !self.started {
            return;
        }
        self.started = false;
        let data = self.data();
        let ok = self
            .run(
                self.tool("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .args(["-m", "fast", "-w", "-t", "30", "stop"]),
            )
            .is_ok_and(|o| o.status.success());
        if !ok && let Some(pid) = postmaster_pid(&data) {
            // SAFETY: plain kill(2) of the pid our own cluster's pid file names.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only checks that the process exists.
            while Instant::now() < deadline && unsafe { libc::kill(pid, 0) } == 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn postmaster_pid(data: &Path) -> Option<libc::pid_t> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a command's output, for an error message.
fn tail(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
#[path = "pg_tests.rs"]
mod tests;
