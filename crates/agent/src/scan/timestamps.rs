//! `sudo_timestamp`: cached sudo credentials that let a user run sudo again without a password.
//!
//! sudo keeps one file per user in `/run/sudo/ts/<user>`: a sequence of native-endian records
//! whose header is `version, size, type, flags` (four `u16`). A record counts as live when it is a
//! global, tty or ppid record (types 1–3) that is not disabled (`sudo -k` sets `TS_DISABLED`) and
//! has a non-zero time stamp. Whether it has also run out needs the kernel's monotonic clock,
//! which a `--root` scan cannot read, so every such record is reported. sudo-rs keeps
//! `/var/run/sudo-rs/ts/<uid>` in its own format: any non-empty file is reported.

use brevet_proto::agent::{Finding, Severity};

use super::accounts::Accounts;
use super::{files, finding, scan_error};
use crate::root::Root;

const TS_DISABLED: u16 = 0x01;
const MAX_TS_BYTES: u64 = 1 << 20;

pub(crate) fn findings(root: &Root, acc: &Accounts, out: &mut Vec<Finding>) {
    for (dir, sudo_rs) in [("/run/sudo/ts", false), ("/var/run/sudo-rs/ts", true)] {
        let names = match files::list_dir(root, &root.path(dir)) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                out.push(scan_error(dir, &e));
                continue;
            }
        };
        for os_name in names {
            let name = os_name.to_string_lossy().into_owned();
            let sys = format!("{dir}/{name}");
            let bytes = match files::read_bytes(root, &root.path(dir).join(&os_name), MAX_TS_BYTES)
            {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    out.push(scan_error(&sys, &e));
                    continue;
                }
            };
            let (live, how) = if sudo_rs {
                (!bytes.is_empty(), "sudo-rs record file".to_string())
            } else {
                match sudo_live_records(&bytes) {
                    Some(n) => (n > 0, format!("{n} live record(s)")),
                    None => (true, "format not recognised, treated as live".to_string()),
                }
            };
            if !live {
                continue;
            }
            let user = if sudo_rs {
                name.parse::<u32>()
                    .ok()
                    .and_then(|uid| acc.user_by_uid(uid))
                    .map_or(name.clone(), |u| u.name.clone())
            } else {
                name.clone()
            };
            out.push(finding(
                format!("sudo-timestamp:{sys}"),
                super::KIND_SUDO_TIMESTAMP,
                Severity::Medium,
                &user,
                format!(
                    "`{sys}` ({how}): `{user}` may run sudo again without a password until it \
                     times out"
                ),
                format!(
                    "delete `{sys}` (or have `{user}` run `sudo -K`) so the next sudo asks for a \
                     password; Brevet's drop-ins set `timestamp_timeout=0` so granted sessions \
                     leave none"
                ),
            ));
        }
    }
}

/// The number of live records in a sudo timestamp file, or `None` if it is not in a format
/// this reader knows (then the caller treats it as live: fail closed).
pub(crate) fn sudo_live_records(b: &[u8]) -> Option<usize> {
    let u16_at = |i: usize| -> Option<u16> {
        let s = b.get(i..i.checked_add(2)?)?;
        Some(u16::from_ne_bytes([s[0], s[1]]))
    };
    let mut live = 0;
    let mut off = 0usize;
    while off < b.len() {
        let version = u16_at(off)?;
        let size = usize::from(u16_at(off + 2)?);
        let kind = u16_at(off + 4)?;
        let flags = u16_at(off + 6)?;
        if size < 8 {
            return None;
        }
        let rec = b.get(off..off.checked_add(size)?)?;
        // `ts` follows auth_uid and sid (v1), plus start_time (v2); timespec is 16 bytes on
        // the 64-bit targets the agent supports.
        let ts_at = match version {
            1 => 16,
            2 => 32,
            _ => return None,
        };
        let stamped = rec
            .get(ts_at..ts_at + 16)
            .is_none_or(|ts| ts.iter().any(|&x| x != 0));
        if (1..=3).contains(&kind) && flags & TS_DISABLED == 0 && stamped {
            live += 1;
        }
        off += size;
    }
    Some(live)
}

#[cfg(test)]
pub(crate) fn sudo_record(kind: u16, flags: u16, ts_secs: u64) -> Vec<u8> {
    let mut r = Vec::new();
    for v in [2u16, 56, kind, flags] {
        r.extend_from_slice(&v.to_ne_bytes());
    }
    r.extend_from_slice(&1000u32.to_ne_bytes()); // auth_uid
    r.extend_from_slice(&42u32.to_ne_bytes()); // sid
    r.extend_from_slice(&[0; 16]); // start_time
    r.extend_from_slice(&ts_secs.to_ne_bytes());
    r.extend_from_slice(&[0; 8]); // tv_nsec
    r.extend_from_slice(&[0; 8]); // tty device
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_live_records() {
        let lock = sudo_record(4, 0, 0);
        let tty = sudo_record(2, 0, 1234);
        let disabled = sudo_record(2, TS_DISABLED, 1234);
        let zero = sudo_record(3, 0, 0);
        let cat = |parts: &[&Vec<u8>]| parts.iter().flat_map(|p| p.iter().copied()).collect();
        let cases: Vec<(Vec<u8>, Option<usize>)> = vec![
            (Vec::new(), Some(0)),
            (cat(&[&lock]), Some(0)),
            (cat(&[&lock, &tty]), Some(1)),
            (cat(&[&lock, &disabled, &zero]), Some(0)),
            (cat(&[&tty, &tty]), Some(2)),
            (tty[..20].to_vec(), None),
            (vec![9, 0, 56, 0, 1, 0, 0, 0], None),
            (vec![0xff; 3], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(sudo_live_records(&bytes), want, "{bytes:?}");
        }
    }
}
