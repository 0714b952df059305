//! Builds, prints and runs the child processes the xtask starts, non-interactively.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What a command printed, and whether it exited successfully.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Captured {
    /// It exited with status 0.
    pub(crate) ok: bool,
    /// Its stdout, then its stderr.
    pub(crate) text: String,
}

/// One command to run: a program, its arguments and the extra environment it gets.
///
/// Every child gets `CI=true`, no standard input, and a `PATH` with cargo's bin dir on it
/// (where `cargo install` puts the tools), so nothing ever waits for a keypress.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    /// What is shown to the user (`cargo` rather than the toolchain's full path).
    shown: String,
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
}

impl Cmd {
    pub(crate) fn new(program: impl Into<OsString>) -> Self {
        let program = program.into();
        Self {
            shown: program.to_string_lossy().into_owned(),
            program,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    /// `cargo`, as the same toolchain that runs this xtask (cargo sets `$CARGO` for us).
    pub(crate) fn cargo() -> Self {
        let mut cmd = Self::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.shown = "cargo".to_owned();
        cmd
    }

    /// `cargo +<toolchain>` through rustup's proxy (in cargo's bin dir, else on `PATH`): the
    /// `+toolchain` form is the proxy's, which the toolchain's own cargo in `$CARGO` lacks.
    pub(crate) fn cargo_on(toolchain: &str) -> Self {
        let proxy = cargo_bin_dir()
            .map(|dir| dir.join("cargo"))
            .filter(|path| path.is_file())
            .map_or_else(|| OsString::from("cargo"), PathBuf::into_os_string);
        let mut cmd = Self::new(proxy);
        cmd.shown = "cargo".to_owned();
        cmd.arg(format!("+{toolchain}"))
    }

    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    /// Puts `dir` first on the child's `PATH` (before cargo's bin dir and the inherited ones).
    pub(crate) fn path_first(self, dir: &std::path::Path) -> Self {
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(env::split_paths(search_path()));
        let path = env::join_paths(dirs).unwrap_or_else(|_| search_path().to_owned());
        self.env("PATH", path)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env("CI", "true")
            .env("PATH", search_path())
            .stdin(Stdio::null());
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command
    }

    /// Runs the command with its output shown; an error unless it exits with status 0.
    pub(crate) fn run(&self) -> Result<(), String> {
        println!("$ {self}");
        let status = self
            .command()
            .status()
            .map_err(|e| format!("could not start `{}`: {e}", self.shown))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{self}` failed ({status})"))
        }
    }

    /// Runs the command quietly and returns its stdout and stderr together,
    /// or `None` when it cannot be started or exits non-zero.
    pub(crate) fn output(&self) -> Option<String> {
        self.capture().filter(|c| c.ok).map(|c| c.text)
    }

    /// Runs the command quietly and returns what it printed (stdout, then stderr) and whether
    /// it succeeded, or `None` when it cannot be started.
    pub(crate) fn capture(&self) -> Option<Captured> {
        let out = self.command().output().ok()?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Some(Captured {
            ok: out.status.success(),
            text,
        })
    }

    /// Replaces this process with the command (so signals and the exit code are the command's).
    /// Only returns on failure.
    #[cfg(unix)]
    pub(crate) fn exec(&self) -> String {
        use std::os::unix::process::CommandExt;
        println!("$ {self}");
        let err = self.command().exec();
        format!("could not start `{}`: {err}", self.shown)
    }

    /// Runs the command to the end and exits with its status (no `exec` off unix).
    #[cfg(not(unix))]
    pub(crate) fn exec(&self) -> String {
        println!("$ {self}");
        match self.command().status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(err) => format!("could not start `{}`: {err}", self.shown),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.envs {
            write!(f, "{key}={} ", quote(value))?;
        }
        f.write_str(&self.shown)?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes a word for a POSIX shell when it needs it, so printed commands can be pasted.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Cargo's bin dir (`$CARGO_HOME/bin`, by default `~/.cargo/bin`), if it can be found.
pub(crate) fn cargo_bin_dir() -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("bin"))
}

/// `$PATH` with cargo's bin dir put first when it is missing, so freshly installed tools are found.
fn search_path() -> &'static OsStr {
    static PATH: OnceLock<OsString> = OnceLock::new();
    PATH.get_or_init(|| {
        let current = env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = env::split_paths(&current).collect();
        if let Some(bin) = cargo_bin_dir() {
            if !dirs.contains(&bin) {
                dirs.insert(0, bin);
            }
        }
        env::join_paths(dirs).unwrap_or(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_a_shell_would_split() {
        let cmd = Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "two words", "it's"]);
        assert_eq!(
            cmd.to_string(),
            r"DEBIAN_FRONTEND=noninteractive apt-get install -y 'two words' 'it'\''s'"
        );
    }

    #[test]
    fn cargo_is_shown_by_name() {
        let cmd = Cmd::cargo().args(["fmt", "--all", "--", "--check"]);
        assert_eq!(cmd.to_string(), "cargo fmt --all -- --check");
    }

    #[test]
    fn output_is_none_for_a_missing_program_or_a_failure() {
        assert_eq!(Cmd::new("xtask-no-such-program-here").output(), None);
        assert_eq!(Cmd::new("false").output(), None);
        assert_eq!(Cmd::new("echo").arg("hi").output().as_deref(), Some("hi\n"));
        let failed = Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!(
            failed.capture(),
            Some(Captured {
                ok: false,
                text: "out\nerr\n".into()
            })
        );
        assert_eq!(failed.output(), None);
    }
}
