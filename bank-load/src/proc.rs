//! What /proc says about a process: resident memory, CPU time and children (Linux only; `None`
//! elsewhere).
#![allow(clippy::float_arithmetic)] // CPU seconds are a measurement

/// Resident set size (`VmRSS`) of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vmrss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The `VmRSS` line of a `/proc/PID/status` text, KiB.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The parent pid in a `/proc/PID/stat` text.
pub fn parse_ppid(stat: &str) -> Option<u32> {
    // After the command name (which may hold spaces and parentheses): state, then ppid.
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The lowest pid whose parent is `pid` (e.g. the program `strace` started), if any.
pub fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| parse_ppid(&stat))
                == Some(pid)
        })
        .min()
}

/// User plus system CPU time `pid` has used so far, seconds (at Linux's 100 ticks a second).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    ticks(pid, false).map(|t| t as f64 / 100.0)
}

/// CPU time, seconds, of `pid` and every process below it that exists or was reaped by it:
/// its own user and system time, its reaped children's, and each live child's (all of theirs
/// too). For a database server, whose backends are the postmaster's children.
pub fn tree_cpu_secs(pid: u32) -> Option<f64> {
    let own = ticks(pid, true)?;
    let mut total = own;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s));
            if parent == Some(pid) {
                total += ticks(child, true).unwrap_or(0);
            }
        }
    }
    Some(total as f64 / 100.0)
}

/// User plus system clock ticks of `pid`, with its reaped children's when `children`.
fn ticks(pid: u32, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let own = field(11)? + field(12)?;
    Some(if children {
        own + field(13)? + field(14)?
    } else {
        own
    })
}

/// Raises this process's open-file limit to `want` (or the hard limit, if lower); returns the
/// soft limit now in force. Children inherit it.
pub fn raise_nofile(want: u64) -> u64 {
    rlimit::increase_nofile_limit(want).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_secs(me).unwrap() >= 0.0);
        assert!(raise_nofile(256) >= 256);
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        assert_eq!(parse_ppid(&stat), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn parses_status_and_stat_lines() {
        let status = "Name:\tbank-server\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vmrss(status), Some(12_345));
        assert_eq!(parse_vmrss("Name:\tx\n"), None);
        assert_eq!(parse_ppid("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }
}
