//! The database URL of `[server] db` and `--db`: which engines are accepted, and how a URL is
//! shown in messages (never with its password).

/// The database a new installation uses when none is named: a file in the data directory.
pub const DEFAULT: &str = "sqlite://brevet.db";

/// Checks that `url` names an engine Brevet runs on (`sqlite://FILE`, `postgres://…` or
/// `postgresql://…`) and is one line of printable text. The error shows the URL redacted.
pub fn check(url: &str) -> Result<(), String> {
    if url.chars().any(char::is_control) {
        return Err(format!(
            "invalid database URL `{}`: it contains a control character",
            redact(url).escape_debug()
        ));
    }
    let known = ["sqlite://", "postgres://", "postgresql://"];
    match known.iter().find(|p| url.starts_with(**p)) {
        Some(p) if url.len() > p.len() => Ok(()),
        _ => Err(format!(
            "invalid database URL `{}`: use sqlite://FILE (relative to the data dir) or \
             postgres://USER@HOST[:PORT]/DATABASE",
            redact(url)
        )),
    }
}

/// `url` with any password replaced by `***`: the one in the user part
/// (`postgres://user:secret@host/db`) and a `password=` parameter.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

/// Whether `url` carries a password (and so whatever holds it is a secret).
pub fn has_password(url: &str) -> bool {
    redact(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_brevet_runs_on_are_accepted() {
        for ok in [
            "sqlite://brevet.db",
            "sqlite:///var/lib/brevet/brevet.db",
            "postgres://brevet@db/brevet",
            "postgresql://brevet:pw@db:5432/brevet?sslmode=require",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_urls_are_refused_without_their_password() {
        for (bad, shown) in [
            (
                "mysql://root:hunter2@db/brevet",
                "mysql://root:***@db/brevet",
            ),
            ("postgres://", "postgres://"),
            ("brevet.db", "brevet.db"),
            ("", ""),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(&format!("`{shown}`")), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = check("postgres://a:hunter2@db/b\ndb = \"x\"").unwrap_err();
        assert!(
            e.contains("control character") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn passwords_are_redacted_wherever_they_are() {
        assert_eq!(
            redact("postgres://brevet:s3cr@t@db:5432/brevet"),
            "postgres://brevet:***@db:5432/brevet"
        );
        assert_eq!(
            redact("postgres://db/brevet?user=brevet&Password=x&sslmode=require"),
            "postgres://db/brevet?user=brevet&Password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://brevet@db/b"), "postgres://brevet@db/b");
        assert!(has_password("postgres://u:p@h/d"));
        assert!(!has_password("sqlite://brevet.db"));
    }
}
