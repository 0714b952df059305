//! A bank node's name: who appended an audit chain and serves a live session, when several
//! nodes share one database (`--node-name`).

use core::fmt;

/// Longest node name, in bytes.
pub const MAX_LEN: usize = 64;

/// A node's name: 1 to [`MAX_LEN`] ASCII letters, digits, `.`, `_` or `-`. Each node on one
/// database needs its own (its audit chain is kept under it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

/// Why a node name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadNodeName;

impl fmt::Display for BadNodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a node name is 1 to {MAX_LEN} ASCII letters, digits, '.', '_' or '-'"
        )
    }
}

impl std::error::Error for BadNodeName {}

impl NodeName {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, BadNodeName> {
        let fits = (1..=MAX_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if fits {
            Ok(Self(name.to_owned()))
        } else {
            Err(BadNodeName)
        }
    }

    /// The default: the data directory's own name (`node1` for `--data-dir /srv/node1`), its
    /// other characters replaced by `_`, cut to [`MAX_LEN`]; `bank` when it has none.
    pub fn from_data_dir(dir: &std::path::Path) -> Self {
        let name: String = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_LEN)
            .collect();
        Self::new(&name).unwrap_or_else(|_| Self("bank".to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for NodeName {
    type Err = BadNodeName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(NodeName::new("node-1.eu_west").is_ok());
        assert_eq!(NodeName::new(""), Err(BadNodeName));
        assert_eq!(NodeName::new("a b"), Err(BadNodeName));
        assert_eq!(NodeName::new("ä"), Err(BadNodeName));
        assert!(NodeName::new(&"n".repeat(MAX_LEN)).is_ok());
        assert_eq!(NodeName::new(&"n".repeat(MAX_LEN + 1)), Err(BadNodeName));
    }

    #[test]
    fn the_default_is_the_data_directory_s_name() {
        use std::path::Path;
        assert_eq!(
            NodeName::from_data_dir(Path::new("/srv/node1")).as_str(),
            "node1"
        );
        assert_eq!(
            NodeName::from_data_dir(Path::new("./bank data")).as_str(),
            "bank_data"
        );
        assert_eq!(NodeName::from_data_dir(Path::new("/")).as_str(), "bank");
        let long = "x".repeat(100);
        assert_eq!(
            NodeName::from_data_dir(Path::new(&long)).as_str().len(),
            MAX_LEN
        );
    }
}
