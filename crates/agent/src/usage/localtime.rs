//! Local wall-clock time to UTC, for the times sudo writes in its log (`%h %e %H:%M:%S`, local
//! time, no zone, usually no year).
//!
//! The zone comes from ROOT/etc/localtime, a TZif file (RFC 8536), read by `jiff`: the
//! transitions and, past the last one, the POSIX TZ rule of the file's footer, so daylight
//! saving is right in "slim" zone files (only the footer rule, as zic writes by default) as
//! well as in "fat" ones. No file, or one that does not parse, means UTC.

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The device's time zone.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone { tz: TimeZone::UTC }
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

    /// The zone of TZif data, or `None` when it does not parse.
    pub fn parse(b: &[u8]) -> Option<Zone> {
        TimeZone::tzif("localtime", b).ok().map(|tz| Zone { tz })
    }

    /// Whether this is UTC (no file, or the file says so).
    pub fn is_utc(&self) -> bool {
        self.tz.to_fixed_offset().is_ok_and(|o| o.seconds() == 0)
    }

    /// The UTC offset in seconds in force at unix time `utc` (0 outside jiff's range of years
    /// -9999 to 9999).
    pub fn offset_at(&self, utc: i64) -> i64 {
        Timestamp::from_second(utc).map_or(0, |t| i64::from(self.tz.to_offset(t).seconds()))
    }

    /// The unix time of the local wall-clock time `year-month-day hour:minute:second`; `None`
    /// when there is no such date (e.g. 30 February). In a gap or an overlap (daylight saving
    /// changes) the offset before the change is taken.
    pub fn to_utc(
        &self,
        year: i64,
        month: u32,
        day: u32,
        (hour, minute, second): (u32, u32, u32),
    ) -> Option<i64> {
        let small = |v: u32| i8::try_from(v).ok();
        let dt = DateTime::new(
            i16::try_from(year).ok()?,
            small(month)?,
            small(day)?,
            small(hour)?,
            small(minute)?,
            small(second)?,
            0,
        )
        .ok()?;
        let at = self.tz.to_ambiguous_timestamp(dt).compatible().ok()?;
        Some(at.as_second())
    }

    /// The local year at unix time `utc` (1970 outside jiff's range).
    pub fn year_at(&self, utc: i64) -> i64 {
        Timestamp::from_second(utc).map_or(1970, |t| i64::from(self.tz.to_datetime(t).year()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version 2 TZif file with the given local time types (UTC offset, abbreviation; type
    /// 0 first), transitions `(unix time, type index)` and `footer` as its POSIX TZ rule.
    pub(crate) fn tzif_with(
        types: &[(i32, &str)],
        transitions: &[(i64, u8)],
        footer: &str,
    ) -> Vec<u8> {
        let mut chars = Vec::new();
        let mut abbr_at = Vec::new();
        for (_, abbr) in types {
            abbr_at.push(chars.len() as u8);
            chars.extend_from_slice(abbr.as_bytes());
            chars.push(0);
        }
        let mut out = Vec::new();
        for width in [4usize, 8] {
            out.extend_from_slice(b"TZif2");
            out.extend_from_slice(&[0; 15]);
            // The version 1 block is left empty, as zic's slim output does.
            let n = if width == 4 { 0 } else { transitions.len() };
            let types_here = if width == 4 { &types[..1] } else { types };
            let chars_here = if width == 4 {
                &chars[..usize::from(abbr_at.get(1).copied().unwrap_or(chars.len() as u8))]
            } else {
                &chars[..]
            };
            // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
            for c in [0, 0, 0, n, types_here.len(), chars_here.len()] {
                out.extend_from_slice(&(c as u32).to_be_bytes());
            }
            for (at, _) in &transitions[..n] {
                out.extend_from_slice(&at.to_be_bytes());
            }
            for (_, t) in &transitions[..n] {
                out.push(*t);
            }
            for (i, (off, _)) in types_here.iter().enumerate() {
                out.extend_from_slice(&off.to_be_bytes());
                out.extend_from_slice(&[u8::from(*off != types[0].0), abbr_at[i]]);
            }
            out.extend_from_slice(chars_here);
        }
        out.extend_from_slice(format!("\n{footer}\n").as_bytes());
        out
    }

    /// A fixed zone of `offset` seconds (its footer says the same).
    pub(crate) fn tzif(offset: i32) -> Vec<u8> {
        let hours = -offset / 3600;
        tzif_with(&[(offset, "XYZ")], &[], &format!("XYZ{hours}"))
    }

    /// `year`-`month`-`day` `hour`:00 UTC as unix time.
    fn utc(year: i16, month: i8, day: i8, hour: i8) -> i64 {
        let dt = jiff::civil::date(year, month, day).at(hour, 0, 0, 0);
        TimeZone::UTC
            .to_ambiguous_timestamp(dt)
            .unambiguous()
            .unwrap()
            .as_second()
    }

    #[test]
    fn offsets_follow_the_transitions() {
        // Berlin-like, "fat": +1 h, +2 h from 2026-03-29T01:00Z, +1 h from 2026-10-25T01:00Z.
        let spring = utc(2026, 3, 29, 1);
        let autumn = utc(2026, 10, 25, 1);
        let z = Zone::parse(&tzif_with(
            &[(3600, "CET"), (7200, "CEST")],
            &[(spring, 1), (autumn, 0)],
            "CET-1CEST,M3.5.0,M10.5.0/3",
        ))
        .unwrap();
        assert_eq!(z.offset_at(spring - 1), 3600);
        assert_eq!(z.offset_at(spring), 7200);
        assert_eq!(z.offset_at(autumn), 3600);
        // 2026-07-01 12:00 local (summer) is 10:00 UTC; 2026-11-28 11:00 local is 10:00 UTC.
        assert_eq!(z.to_utc(2026, 7, 1, (12, 0, 0)), Some(utc(2026, 7, 1, 10)));
        assert_eq!(
            z.to_utc(2026, 11, 28, (11, 0, 0)),
            Some(utc(2026, 11, 28, 10))
        );
        assert_eq!(Zone::utc().to_utc(1970, 1, 1, (0, 0, 42)), Some(42));
        assert_eq!(z.to_utc(2026, 2, 30, (12, 0, 0)), None);
        assert_eq!(z.year_at(utc(2026, 12, 31, 23)), 2027);
    }

    /// A "slim" file: no transitions at all, only the footer rule. Summer is read from the
    /// rule, years past any transition a "fat" file would list included. The reader this
    /// replaced ignored the footer and took such a file for UTC+1 all year.
    #[test]
    fn slim_files_follow_the_footer_rule() {
        let z = Zone::parse(&tzif_with(
            &[(3600, "CET")],
            &[],
            "CET-1CEST,M3.5.0,M10.5.0/3",
        ))
        .unwrap();
        for year in [2026, 2040, 2100] {
            assert_eq!(z.offset_at(utc(year, 1, 15, 12)), 3600, "{year} winter");
            assert_eq!(z.offset_at(utc(year, 7, 15, 12)), 7200, "{year} summer");
            assert_eq!(
                z.to_utc(i64::from(year), 7, 15, (14, 0, 0)),
                Some(utc(year, 7, 15, 12)),
                "{year}"
            );
        }
        // 2026-03-29: 02:00 local jumps to 03:00 (the switch is at 01:00 UTC).
        let switch = utc(2026, 3, 29, 1);
        assert_eq!(z.offset_at(switch - 1), 3600);
        assert_eq!(z.offset_at(switch), 7200);
    }

    /// The zone files of this machine, fat or slim, agree with the POSIX rule in summer.
    #[test]
    fn installed_zone_files_have_daylight_saving() {
        let Ok(b) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") else {
            return println!("SKIP installed_zone_files_have_daylight_saving: no tzdata");
        };
        let z = Zone::parse(&b).expect("Europe/Berlin parses");
        assert_eq!(z.offset_at(utc(2060, 7, 1, 12)), 7200);
        assert_eq!(z.offset_at(utc(2060, 12, 1, 12)), 3600);
    }

    #[test]
    fn damaged_or_missing_files_mean_utc() {
        assert!(Zone::parse(b"nope").is_none());
        let good = tzif(3600);
        for cut in [0, 10, 44, 60, good.len() / 2] {
            // Never a panic.
            let _ = Zone::parse(&good[..cut]);
        }
        let tmp = tempfile::tempdir().unwrap();
        assert!(Zone::load(&tmp.path().join("localtime")).is_utc());
        assert!(!Zone::parse(&good).unwrap().is_utc());
        // The real zone of this machine parses, if it has one.
        if let Ok(b) = std::fs::read("/etc/localtime") {
            assert!(Zone::parse(&b).is_some());
        }
    }
}
