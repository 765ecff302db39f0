//! Process CPU time from `/proc/<pid>/stat` (no libc): user and system time
//! of all threads, and resident memory from `/proc/<pid>/status`. Used for
//! the generator itself and, optionally, for the server process under test.

use std::time::Duration;

/// CPU time consumed by a process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// Time used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Clock ticks per second, read from the ELF auxiliary vector
/// (`AT_CLKTCK`); Linux uses 100 almost everywhere, the fallback.
pub fn clock_ticks() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(raw) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    for pair in raw.chunks_exact(16) {
        let (k, v) = pair.split_at(8);
        let key = u64::from_ne_bytes(k.try_into().unwrap_or([0; 8]));
        let val = u64::from_ne_bytes(v.try_into().unwrap_or([0; 8]));
        if key == AT_CLKTCK && val > 0 {
            return val;
        }
        if key == 0 {
            break;
        }
    }
    100
}

/// Parses the contents of `/proc/<pid>/stat`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after the last
/// `)`; utime and stime are fields 14 and 15.
pub fn parse_stat(stat: &str, ticks_per_sec: u64) -> Option<CpuTimes> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    // after the name: field 3 (state) is index 0, so field n is index n-3
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let tick = |t: u64| {
        let hz = ticks_per_sec.max(1);
        Duration::from_secs(t / hz) + Duration::from_nanos((t % hz) * 1_000_000_000 / hz)
    };
    Some(CpuTimes {
        user: tick(utime),
        system: tick(stime),
    })
}

/// This process's CPU time.
pub fn own() -> Option<CpuTimes> {
    read("self")
}

/// Another process's CPU time, by pid.
pub fn of_pid(pid: u32) -> Option<CpuTimes> {
    read(&pid.to_string())
}

/// Resident set size of a process in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    parse_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in bytes.
pub fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut f = line.get(6..)?.split_ascii_whitespace();
    let n: u64 = f.next()?.parse().ok()?;
    match f.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

fn read(which: &str) -> Option<CpuTimes> {
    let s = std::fs::read_to_string(format!("/proc/{which}/stat")).ok()?;
    parse_stat(&s, clock_ticks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_after_an_awkward_command_name() {
        let stat = "4242 (sb load) gen)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    250 37 0 0 20 0 1 0 12345 1000000 500 18446744073709551615";
        let t = parse_stat(stat, 100).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(370));
        assert_eq!(t.total(), Duration::from_millis(2870));
        assert_eq!(parse_stat("garbage", 100), None);
        assert_eq!(parse_stat("1 (x) S 1 2", 100), None);
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tswitchboard\nVmPeak:\t  9000 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_rss(status), Some(20480 * 1024));
        assert_eq!(parse_rss("Name: x\n"), None);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_own_cpu_and_ticks() {
        assert!(clock_ticks() > 0);
        let a = own().expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = own().unwrap();
        assert!(b.total() >= a.total());
        assert_eq!(b.since(&b).total(), Duration::ZERO);
    }
}
