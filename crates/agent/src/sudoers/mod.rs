//! Sudoers drop-ins: one file per grant, `/etc/sudoers.d/brevet_<grant id without dashes>`.
//!
//! [`render`] turns a grant into the drop-in text after validating every field again (sudoers
//! injection is the worst bug this product could have); [`check`] is a strict parser of exactly
//! that subset, used where `visudo` is absent; [`install`] writes a drop-in crash-safely and only
//! after the checker accepted it.

pub mod check;
pub mod install;
mod render;

pub use render::render;

#[cfg(test)]
pub(crate) use render::tests::doc as render_tests_doc;

use brevet_proto::validate;

use crate::Result;

/// Every drop-in the agent writes starts with this; nothing else in sudoers.d may.
pub const PREFIX: &str = "brevet_";

/// The drop-in name of a grant: `brevet_` and the grant id's 32 hex digits. No `.` and no `~`,
/// which would make sudo skip the file.
pub fn file_name(grant_id: &str) -> Result<String> {
    validate::id("grant id", grant_id)?;
    Ok(format!("{PREFIX}{}", grant_id.replace('-', "")))
}

fn is_id_hex(hex: &str) -> bool {
    hex.len() == 32
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Whether `name` has exactly the shape of a drop-in the agent writes: `brevet_` and 32
/// lower-case hex digits. Any other name starting with `brevet_` is not the agent's.
pub fn is_drop_in_name(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(is_id_hex)
}

/// Whether `name` has exactly the shape of the agent's temp file: `.brevet_<32 hex>.tmp`.
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(is_drop_in_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_read_by_sudo() {
        let n = file_name("0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d").unwrap();
        assert_eq!(n, "brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d");
        assert!(!n.contains('.') && !n.ends_with('~'));
        assert!(is_drop_in_name(&n));
        assert!(!is_drop_in_name("brevet_x"));
        assert!(!is_drop_in_name("brevet_0B7F5B1E8A4E4C419D1E2F7C8A9B0C1D"));
        assert!(!is_drop_in_name("brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d0"));
        assert!(is_temp_name(".brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d.tmp"));
        assert!(!is_temp_name(".brevet_x.tmp"));
        assert!(!is_drop_in_name(
            ".brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d.tmp"
        ));
        assert!(file_name("../../etc/passwd").is_err());
        assert!(file_name("0B7F5B1E-8A4E-4C41-9D1E-2F7C8A9B0C1D").is_err());
    }
}
