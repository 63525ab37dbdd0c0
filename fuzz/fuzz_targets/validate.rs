//! Every validator of `brevet_proto::validate` (DESIGN §10), chosen by the first byte.
//!
//! What a validator accepts must have the documented shape, checked here by a second, plain
//! implementation; names, ids and tickets hold no sudoers metacharacter, control character or
//! non-ASCII; a command is safe in a sudoers `Cmnd` list and the agent's own checker accepts it
//! in a drop-in; durations round-trip through `format_duration`; a webhook URL rebuilt from its
//! parts parses to the same parts; and an error message is one line that echoes at most a
//! bounded, control-free piece of the input (it is hostile and may reach a log).
#![no_main]

use brevet_fuzz::*;
use brevet_proto::validate;
use libfuzzer_sys::fuzz_target;

fn assert_error_is_safe(e: &brevet_proto::Error) {
    let m = e.to_string();
    assert!(
        !m.chars().any(char::is_control),
        "error with a control character: {m:?}"
    );
    assert!(m.chars().count() < 400, "error message too long: {m:?}");
}

/// One drop-in with `cmd` as its only command, as the renderer would write it.
fn drop_in(cmd: &str) -> String {
    format!(
        "# Brevet grant x\nDefaults:alice timestamp_timeout=0\nalice ALL=(root) NOPASSWD: {cmd}\n"
    )
}

fn run(selector: u8, s: &str) {
    match selector % 14 {
        0 | 1 => {
            let r = if selector.is_multiple_of(14) {
                validate::user_name(s)
            } else {
                validate::group_name(s)
            };
            match r {
                Ok(v) => {
                    assert_eq!(v, s);
                    assert!(is_unix_name(s), "accepted name {s:?}");
                    assert_sudoers_word_except("name", s, &['-', '_']);
                }
                Err(e) => {
                    assert!(!is_unix_name(s), "refused name {s:?}");
                    assert_error_is_safe(&e);
                }
            }
        }
        2 => match validate::device_name(s) {
            Ok(v) => {
                assert_eq!(v, s.to_ascii_lowercase());
                assert!(is_lower_hostname(&v), "accepted device {s:?}");
                assert_sudoers_word_except("device", &v, &['-', '.']);
                assert_eq!(validate::device_name(&v).unwrap(), v, "not idempotent");
            }
            Err(e) => {
                assert!(
                    !is_lower_hostname(&s.to_ascii_lowercase()),
                    "refused device {s:?}"
                );
                assert_error_is_safe(&e);
            }
        },
        3 => match validate::role_name(s) {
            Ok(v) => {
                assert_eq!(v, s);
                assert!(is_role(s), "accepted role {s:?}");
            }
            Err(e) => {
                assert!(!is_role(s), "refused role {s:?}");
                assert_error_is_safe(&e);
            }
        },
        4 | 5 => {
            let allow_all = selector % 14 == 5;
            match validate::command(s, allow_all) {
                Ok(v) => {
                    assert_eq!(v, s);
                    assert!(is_safe_command(s, allow_all), "accepted command {s:?}");
                    assert!(s.len() <= 1024);
                    let base = s.split(' ').next().and_then(|p| p.rsplit('/').next());
                    if base != Some("sudoedit")
                        && let Err(r) = brevet_agent::sudoers::check::check(&drop_in(s))
                    {
                        panic!("validator accepts {s:?}, the agent's checker refuses it: {r}");
                    }
                }
                Err(e) => assert_error_is_safe(&e),
            }
        }
        6 => match validate::duration(s) {
            Ok(n) => {
                assert!(
                    (1..=validate::MAX_DURATION_SECS).contains(&n),
                    "{s:?} -> {n}"
                );
                assert!(
                    s.bytes()
                        .all(|c| c.is_ascii_digit() || b"smhd".contains(&c))
                );
                let f = validate::format_duration(n);
                assert_eq!(validate::duration(&f).unwrap(), n, "{s:?} -> {n} -> {f:?}");
            }
            Err(e) => assert_error_is_safe(&e),
        },
        7 => match validate::ticket(s) {
            Ok(v) => {
                assert_eq!(v, s);
                assert!(is_ticket(s), "accepted ticket {s:?}");
            }
            Err(e) => {
                assert!(!is_ticket(s), "refused ticket {s:?}");
                assert_error_is_safe(&e);
            }
        },
        8 => match validate::reason(s) {
            Ok(v) => {
                assert_eq!(v, s.trim());
                let n = v.chars().count();
                assert!((3..=500).contains(&n), "{n} characters");
                assert!(v.chars().filter(|c| c.is_alphanumeric()).count() >= 3);
                // One line, as shown to approvers and written to logs: no control character,
                // no Unicode line or paragraph separator, no bidirectional override.
                for c in v.chars() {
                    assert!(
                        !c.is_control() && !LINE_OR_BIDI.contains(&c),
                        "accepted reason {v:?} holding {c:?}"
                    );
                }
            }
            Err(e) => assert_error_is_safe(&e),
        },
        9 => match validate::tag(s) {
            Ok((k, v)) => {
                assert_eq!(format!("{k}={v}"), s);
                assert!(is_tag_key(&k), "key {k:?}");
                assert!(!v.is_empty() && v.len() <= 128);
                assert!(
                    v.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"_.:/-".contains(&c))
                );
            }
            Err(e) => assert_error_is_safe(&e),
        },
        10 => match validate::totp_code(s) {
            Ok(v) => assert!(v.len() == 6 && v.bytes().all(|c| c.is_ascii_digit())),
            Err(e) => {
                assert!(!(s.len() == 6 && s.bytes().all(|c| c.is_ascii_digit())));
                assert_error_is_safe(&e);
            }
        },
        11 => match validate::id("id", s) {
            Ok(v) => {
                assert_eq!(v, s);
                assert!(is_uuid(s), "accepted id {s:?}");
            }
            Err(e) => {
                assert!(!is_uuid(s), "refused id {s:?}");
                assert_error_is_safe(&e);
            }
        },
        12 => match validate::webhook_url(s) {
            Ok(u) => {
                assert!(s.len() <= validate::MAX_WEBHOOK_URL);
                assert!(s.bytes().all(|c| c.is_ascii_graphic()), "{s:?}");
                let after_scheme = s.split_once("://").map_or("", |(_, r)| r);
                let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
                assert!(!authority.contains('@'), "credentials accepted in {s:?}");
                assert!(!u.host.is_empty() && u.port != 0);
                assert!(u.path.starts_with('/') && !u.path.contains('#'), "{u:?}");
                // Where a server may POST (the development setting off): https only, and an IP
                // literal only when it is a public address.
                if validate::webhook_target(&u, false).is_ok() {
                    assert!(u.tls, "plain http allowed to {:?}", u.host);
                    if let Ok(ip) = u.host.parse::<std::net::IpAddr>() {
                        assert!(validate::public_ip(ip), "non-public target {ip} allowed");
                    }
                }
                if u.host.contains(':') {
                    assert!(u.host.parse::<std::net::Ipv6Addr>().is_ok(), "{u:?}");
                } else {
                    assert!(
                        u.host.parse::<std::net::Ipv4Addr>().is_ok() || is_lower_hostname(&u.host),
                        "host {:?}",
                        u.host
                    );
                }
                // The parts written back out read as the same parts.
                let scheme = if u.tls { "https" } else { "http" };
                let again = format!("{scheme}://{}{}", u.authority(), u.path);
                assert_eq!(validate::webhook_url(&again).as_ref(), Ok(&u), "{again}");
            }
            Err(e) => {
                assert_error_is_safe(&e);
                // A refused URL with credentials is never echoed with them.
                // (Unless the same text also stands after the last `@`, which may be shown.)
                if let Some((userinfo, _)) = s.split_once('@')
                    && let Some((_, pw)) = userinfo.rsplit_once(':')
                    && pw.len() >= 8
                    && !pw.contains(['/', '?', '#'])
                    && !s
                        .rsplit_once('@')
                        .is_some_and(|(_, shown)| shown.contains(pw))
                    && let brevet_proto::Error::Invalid { value, .. } = &e
                {
                    assert!(!value.contains(pw), "password echoed: {e}");
                }
            }
        },
        _ => {
            // New people and devices: what passes is a valid name that is not reserved, and a
            // reserved name never passes whatever its case.
            match validate::new_person_name(s) {
                Ok(v) => {
                    assert!(validate::user_name(v).is_ok() && validate::reserved(v).is_none());
                }
                Err(e) => assert_error_is_safe(&e),
            }
            if let Ok(d) = validate::new_device_name(s) {
                assert!(validate::reserved(&d).is_none(), "{d:?}");
            }
            if validate::reserved(s).is_some() {
                assert!(validate::new_person_name(s).is_err(), "{s:?}");
            }
            // A byte outside the allow-lists never passes a name, id, role or ticket validator.
            let outside = |allowed: &[char]| {
                s.chars().any(|c| {
                    !c.is_ascii()
                        || c.is_ascii_control()
                        || (SUDOERS_META.contains(&c) && !allowed.contains(&c))
                })
            };
            if outside(&['-', '_']) {
                assert!(validate::user_name(s).is_err(), "{s:?}");
                assert!(validate::group_name(s).is_err(), "{s:?}");
            }
            if outside(&['-']) {
                assert!(validate::role_name(s).is_err(), "{s:?}");
                assert!(validate::id("id", s).is_err(), "{s:?}");
            }
            if outside(&['-', '.']) {
                assert!(validate::device_name(s).is_err(), "{s:?}");
            }
            if outside(&['-', '_', '.', '#']) {
                assert!(validate::ticket(s).is_err(), "{s:?}");
            }
        }
    }
}

/// Line and paragraph separators and the bidirectional formatting characters.
const LINE_OR_BIDI: &[char] = &[
    '\u{2028}', '\u{2029}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{202a}', '\u{202b}', '\u{202c}',
    '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

fn is_tag_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(c))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if let Ok(s) = std::str::from_utf8(rest) {
        run(selector, s);
    }
});
