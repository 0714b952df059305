//! Reading `strace -c` summaries: how many calls of each syscall a traced process made.

use serde::{Deserialize, Serialize};

/// One row of an `strace -c` summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallCount {
    /// The syscall, e.g. `fdatasync`.
    pub name: String,
    /// How many times it was called.
    pub calls: u64,
    /// Seconds spent in it (as strace measures it, itself slowed by the tracing).
    pub seconds: f64,
}

/// The syscall rows of an `strace -c` summary (`% time  seconds  usecs/call  calls  [errors]
/// syscall`), without the header, the rules and the total.
pub fn parse_summary(text: &str) -> Vec<SyscallCount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !(5..=6).contains(&fields.len()) {
                return None;
            }
            let name = *fields.last()?;
            let is_name = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if name == "total" || !is_name {
                return None;
            }
            fields[0].parse::<f64>().ok()?;
            Some(SyscallCount {
                name: name.to_owned(),
                calls: fields[3].parse().ok()?,
                seconds: fields[1].parse().ok()?,
            })
        })
        .collect()
}

/// Calls of `name` in `counts` (0 when strace saw none: it leaves such rows out).
pub fn calls(counts: &[SyscallCount], name: &str) -> u64 {
    counts
        .iter()
        .filter(|c| c.name == name)
        .map(|c| c.calls)
        .sum()
}

/// `Ok` when `strace` runs here, else why not.
pub fn available(strace: &str) -> Result<(), String> {
    match std::process::Command::new(strace).arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{strace} -V` failed ({})", out.status)),
        Err(e) => Err(format!(
            "{strace} not found ({e}; `apt-get install -y strace` installs it)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rows_of_a_summary() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 97.51    1.234567        1433       862           fdatasync
  2.49    0.031500          36       862         3 sync_file_range
------ ----------- ----------- --------- --------- ----------------
100.00    1.266067         734      1724         3 total
";
        let rows = parse_summary(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            SyscallCount {
                name: "fdatasync".into(),
                calls: 862,
                seconds: 1.234567
            }
        );
        assert_eq!(calls(&rows, "sync_file_range"), 862);
        assert_eq!(calls(&rows, "fsync"), 0);
        assert!(parse_summary("strace: Process 12 attached\n").is_empty());
    }
}
