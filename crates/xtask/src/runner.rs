//! Running the test runner (cargo-nextest, or `cargo test` without it) under supervision:
//! Ctrl-C, SIGTERM and SIGHUP are caught here and passed on to the runner's process group,
//! so that the caller gets control back and can stop the cluster it started. Reading what the
//! runner counted: nextest's JUnit report, or libtest's `test result:` lines.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP are noted instead of ending this process (a child
/// gets the default handlers back at exec).
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs an async-signal-safe handler (one atomic store).
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// The signal that asked this process to stop, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Runs `cmd` in its own process group (stdin closed) and waits for it. A signal noted by
/// [`catch_signals`] is passed on to the whole group once; the child's exit is still awaited.
/// With `on_line`, the child's stdout is read line by line (and echoed) instead of inherited.
pub fn supervise(
    cmd: &mut Command,
    mut on_line: Option<&mut dyn FnMut(&str)>,
) -> std::io::Result<ExitStatus> {
    cmd.process_group(0).stdin(Stdio::null());
    if on_line.is_some() {
        cmd.stdout(Stdio::piped());
    }
    let mut child = cmd.spawn()?;
    let pgid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    });
    let mut forwarded = false;
    loop {
        while let Ok(line) = rx.try_recv() {
            println!("{line}");
            if let Some(f) = on_line.as_mut() {
                f(&line);
            }
        }
        if let Some(status) = child.try_wait()? {
            if let Some(r) = reader {
                let _ = r.join();
            }
            for line in rx.try_iter() {
                println!("{line}");
                if let Some(f) = on_line.as_mut() {
                    f(&line);
                }
            }
            return Ok(status);
        }
        if let (Some(sig), false) = (interrupted(), forwarded) {
            // SAFETY: kill(2) of the process group we just created.
            unsafe { libc::kill(-pgid, sig) };
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cargo nextest --version`'s first line, when nextest is installed.
pub fn nextest_version() -> Option<String> {
    let out = Command::new("cargo")
        .args(["nextest", "--version"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_owned)
}

/// What the runner counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    /// Marked `#[ignore]` (cargo test) and so not run.
    pub ignored: usize,
}

/// The totals on the root `<testsuites>` element of nextest's JUnit report.
pub fn junit_counts(xml: &str) -> Option<Counts> {
    let start = xml.find("<testsuites")?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let attr = |name: &str| -> Option<usize> {
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        tag[i..i + tag[i..].find('"')?].parse().ok()
    };
    let tests = attr("tests")?;
    let failed = attr("failures").unwrap_or(0) + attr("errors").unwrap_or(0);
    Some(Counts {
        passed: tests.saturating_sub(failed),
        failed,
        ignored: 0,
    })
}

/// Reads nextest's JUnit report at `path`.
pub fn read_junit(path: &Path) -> Option<Counts> {
    junit_counts(&std::fs::read_to_string(path).ok()?)
}

/// Adds one libtest `test result: ok. 3 passed; 1 failed; 2 ignored; ...` line to `c`.
pub fn add_libtest_line(c: &mut Counts, line: &str) {
    let Some(rest) = line.trim().strip_prefix("test result: ") else {
        return;
    };
    let Some((_, counts)) = rest.split_once(". ") else {
        return;
    };
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else {
            continue;
        };
        match what {
            "passed" => c.passed += n,
            "failed" => c.failed += n,
            "ignored" => c.ignored += n,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two supervise tests share this process's signal flag (under `cargo test`).
    static SIGNAL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn junit_counts_read_the_root_totals() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="684" failures="2" errors="1" uuid="x" time="172.1">
    <testsuite name="store::contract" tests="300" disabled="0" errors="0" failures="0">"#;
        assert_eq!(
            junit_counts(xml),
            Some(Counts {
                passed: 681,
                failed: 3,
                ignored: 0
            })
        );
        assert_eq!(junit_counts("<html>"), None);
    }

    #[test]
    fn libtest_lines_add_up() {
        let mut c = Counts::default();
        for line in [
            "running 3 tests",
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: FAILED. 10 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.5s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
            "test something ... ok",
        ] {
            add_libtest_line(&mut c, line);
        }
        assert_eq!(
            c,
            Counts {
                passed: 13,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn a_signal_reaches_the_runners_whole_process_group() {
        // The runner's child (here `sleep`, under a shell) must end when we are signalled,
        // so that the caller can stop its cluster and return.
        let _one_at_a_time = SIGNAL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        catch_signals();
        let t0 = std::time::Instant::now();
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: raise(3) on this process; the handler installed above only notes it.
            unsafe { libc::raise(libc::SIGTERM) };
        });
        let status = supervise(
            Command::new("sh").args(["-c", "sleep 30; echo not reached"]),
            None,
        )
        .unwrap();
        assert!(!status.success());
        assert_eq!(interrupted(), Some(libc::SIGTERM));
        SIGNAL.store(0, Ordering::SeqCst);
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    #[test]
    fn supervised_output_lines_reach_the_callback() {
        let _one_at_a_time = SIGNAL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = Vec::new();
        let mut f = |l: &str| seen.push(l.to_owned());
        let status = supervise(
            Command::new("sh").args(["-c", "echo one; echo two"]),
            Some(&mut f),
        )
        .unwrap();
        assert!(status.success());
        assert_eq!(seen, ["one", "two"]);
    }
}
