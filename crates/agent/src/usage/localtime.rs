//! Local wall-clock time to UTC, for the times sudo writes in its log (`%h %e %H:%M:%S`, local
//! time, no zone, usually no year).
//!
//! The zone comes from ROOT/etc/localtime, a TZif file (RFC 8536), read here with no
//! dependencies: the transition times and their UTC offsets (the 64-bit block of version 2+
//! files, else the 32-bit one). Past the last transition the last offset holds (Debian ships
//! "fat" files with transitions to 2037). No file, or one that does not parse, means UTC.

use std::path::Path;

/// UTC offsets in force from each transition on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    /// `(transition time, offset in seconds)`, sorted by time.
    transitions: Vec<(i64, i64)>,
    /// The offset before the first transition (or always, with none).
    initial: i64,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::default()
    }

    /// Reads a TZif file (usually a symlink into the zoneinfo tree; the target must be a
    /// regular file of at most 1 MiB, so a planted FIFO cannot hang the agent); UTC when it is
    /// absent, unreadable or does not parse.
    pub fn load(path: &Path) -> Zone {
        use crate::linux::sysfile::{self, Links};
        sysfile::read(path, 1 << 20, Links::Follow)
            .ok()
            .flatten()
            .and_then(|b| Zone::parse(&b))
            .unwrap_or_default()
    }

    pub fn parse(b: &[u8]) -> Option<Zone> {
        let (v1_len, version) = block(b, 4)?;
        if version >= b'2' {
            let v2 = b.get(v1_len..).filter(|rest| block(rest, 8).is_some());
            if let Some(z) = v2.and_then(|rest| Zone::from_block(rest, 8)) {
                return Some(z);
            }
        }
        Zone::from_block(b, 4)
    }

    /// Builds the zone from the data block of the header at the start of `b`.
    fn from_block(b: &[u8], width: usize) -> Option<Zone> {
        let counts = header(b)?;
        let [_isut, _isstd, _leap, timecnt, typecnt, _chars] = counts;
        let times = b.get(44..44 + timecnt * width)?;
        let idx = b.get(44 + timecnt * width..44 + timecnt * (width + 1))?;
        let types_at = 44 + timecnt * (width + 1);
        let types = b.get(types_at..types_at + typecnt * 6)?;
        let offset_of = |i: usize| -> Option<i64> {
            let t = types.get(i * 6..i * 6 + 4)?;
            Some(i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]])))
        };
        let initial = if typecnt == 0 { 0 } else { offset_of(0)? };
        let mut transitions = Vec::with_capacity(timecnt);
        for i in 0..timecnt {
            let raw = times.get(i * width..(i + 1) * width)?;
            let at = if width == 8 {
                i64::from_be_bytes(raw.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(raw.try_into().ok()?))
            };
            transitions.push((at, offset_of(usize::from(*idx.get(i)?))?));
        }
        Some(Zone {
            transitions,
            initial,
        })
    }

    /// The UTC offset in force at `utc`.
    pub fn offset_at(&self, utc: i64) -> i64 {
        match self.transitions.partition_point(|(at, _)| *at <= utc) {
            0 => self.initial,
            n => self.transitions[n - 1].1,
        }
    }

    /// Unix time of a local wall-clock time given as seconds since the epoch read as if it were
    /// UTC. In a gap or an overlap (daylight saving changes) one of the candidates is taken.
    pub fn to_utc(&self, local_as_utc: i64) -> i64 {
        let first = local_as_utc - self.offset_at(local_as_utc);
        local_as_utc - self.offset_at(first)
    }
}

/// The six counts of a TZif header at the start of `b`.
fn header(b: &[u8]) -> Option<[usize; 6]> {
    if b.get(..4)? != b"TZif" {
        return None;
    }
    let mut counts = [0usize; 6];
    for (i, c) in counts.iter_mut().enumerate() {
        let at = 20 + i * 4;
        let raw: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        *c = usize::try_from(u32::from_be_bytes(raw)).ok()?;
        if *c > 1_000_000 {
            return None;
        }
    }
    Some(counts)
}

/// The length of the header and data block at the start of `b` with times `width` bytes wide,
/// and the version byte.
fn block(b: &[u8], width: usize) -> Option<(usize, u8)> {
    let [isut, isstd, leap, timecnt, typecnt, chars] = header(b)?;
    let version = *b.get(4)?;
    let len = 44 + timecnt * (width + 1) + typecnt * 6 + chars + leap * (width + 4) + isstd + isut;
    (b.len() >= len).then_some((len, version))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of unix time `t` (UTC).
pub fn year_of(t: i64) -> i64 {
    // Civil from days (inverse of `days_from_civil`), year only.
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version 2 TZif file with the given transitions, type 0 first.
    pub(crate) fn tzif(types: &[i32], transitions: &[(i64, u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for width in [4usize, 8] {
            out.extend_from_slice(b"TZif2");
            out.extend_from_slice(&[0; 15]);
            let n = if width == 4 { 0 } else { transitions.len() };
            for c in [0, 0, 0, n, types.len(), 4] {
                out.extend_from_slice(&(c as u32).to_be_bytes());
            }
            for (at, _) in &transitions[..n] {
                out.extend_from_slice(&at.to_be_bytes());
            }
            for (_, t) in &transitions[..n] {
                out.push(*t);
            }
            for off in types {
                out.extend_from_slice(&off.to_be_bytes());
                out.extend_from_slice(&[u8::from(*off != types[0]), 0]);
            }
            out.extend_from_slice(b"XYZ\0");
        }
        out.extend_from_slice(b"\nCET-1CEST,M3.5.0,M10.5.0/3\n");
        out
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2026, 11, 28) * 86_400 + 36_000,
            1_795_860_000
        );
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for t in [0, 1_795_860_000, 951_782_400, 4_102_444_799, 4_102_444_800] {
            let y = year_of(t);
            assert!(days_from_civil(y, 1, 1) * 86_400 <= t, "{t}");
            assert!(days_from_civil(y + 1, 1, 1) * 86_400 > t, "{t}");
        }
    }

    #[test]
    fn offsets_follow_the_transitions() {
        // Berlin-like: +1 h, +2 h from 2026-03-29T01:00Z, +1 h from 2026-10-25T01:00Z.
        let spring = days_from_civil(2026, 3, 29) * 86_400 + 3600;
        let autumn = days_from_civil(2026, 10, 25) * 86_400 + 3600;
        let z = Zone::parse(&tzif(&[3600, 7200], &[(spring, 1), (autumn, 0)])).unwrap();
        assert_eq!(z.offset_at(spring - 1), 3600);
        assert_eq!(z.offset_at(spring), 7200);
        assert_eq!(z.offset_at(autumn), 3600);
        // 2026-07-01 12:00 local (summer) is 10:00 UTC; 2026-11-28 11:00 local is 10:00 UTC.
        let july = days_from_civil(2026, 7, 1) * 86_400;
        assert_eq!(z.to_utc(july + 12 * 3600), july + 10 * 3600);
        assert_eq!(z.to_utc(1_795_860_000 + 3600), 1_795_860_000);
        assert_eq!(Zone::utc().to_utc(42), 42);
    }

    #[test]
    fn damaged_or_missing_files_mean_utc() {
        assert_eq!(Zone::parse(b"nope"), None);
        let good = tzif(&[3600], &[(0, 0)]);
        for cut in [0, 10, 44, 60, good.len() / 2] {
            // Never a panic; a cut v2 block falls back to the v1 block or to nothing.
            let _ = Zone::parse(&good[..cut]);
        }
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Zone::load(&tmp.path().join("localtime")), Zone::utc());
        // The real zone of this machine parses, if it has one.
        if let Ok(b) = std::fs::read("/etc/localtime") {
            assert!(Zone::parse(&b).is_some());
        }
    }
}
