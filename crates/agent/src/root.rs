//! The filesystem root the agent acts on: `/` on a real endpoint, a directory tree with
//! `--root DIR` (tests and the quickstart sandbox). Every path the agent touches goes through
//! [`Root::path`], so a sandboxed agent cannot write outside its tree.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    /// The real root, `/`.
    pub fn real() -> Root {
        Root {
            base: PathBuf::from("/"),
        }
    }

    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
    }

    pub fn is_real(&self) -> bool {
        self.base == Path::new("/")
    }

    /// Maps an absolute system path (`/etc/sudoers.d`) into this root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.base.join(absolute.trim_start_matches('/'))
    }

    pub fn sudoers_d(&self) -> PathBuf {
        self.path("/etc/sudoers.d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_under_the_base() {
        assert_eq!(
            Root::real().path("/etc/sudoers.d"),
            PathBuf::from("/etc/sudoers.d")
        );
        let r = Root::new("/tmp/sb");
        assert_eq!(r.path("/etc/group"), PathBuf::from("/tmp/sb/etc/group"));
        assert!(!r.is_real());
    }
}
