//! Webhook URLs (`brevet notify add --webhook URL`): where `brevetd` POSTs the events people must
//! act on. The URL is hostile input and becomes a connection target, a `Host` header and a log
//! line, so it is parsed by an allow-list, not by a general URL parser: `https://` only (plain
//! `http://` only to `127.0.0.1`, `[::1]` or `localhost`, for tests and development), no user
//! name or password, a host name or IP literal, an optional port, and a path and query of
//! printable ASCII without spaces or a fragment.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::Error;

/// The longest webhook URL accepted, in bytes.
pub const MAX_WEBHOOK_URL: usize = 2048;

const FIELD: &str = "webhook url";

/// A webhook URL, checked and taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `https` (true) or loopback `http` (false).
    pub tls: bool,
    /// The host as written, lower case; IPv6 literals without brackets.
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl WebhookUrl {
    /// The `Host` header value: the host, with brackets for IPv6, and the port unless default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Checks a webhook URL (see the module comment).
pub fn webhook_url(s: &str) -> Result<WebhookUrl, Error> {
    // Whatever stands before an `@` may be a password: no message repeats it.
    let shown = redacted(s);
    let bad = |reason: &str| Error::invalid(FIELD, &shown, reason);
    if s.len() > MAX_WEBHOOK_URL {
        return Err(bad(&format!(
            "must be at most {MAX_WEBHOOK_URL} characters"
        )));
    }
    if !s.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            "may contain only printable ASCII without spaces (percent-encode the rest)",
        ));
    }
    let (tls, rest) = if let Some(rest) = strip_prefix_ci(s, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ci(s, "http://") {
        (false, rest)
    } else {
        return Err(bad("must start with https://"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad(
            "must not carry a user name or password; use --secret to sign deliveries",
        ));
    }
    if path.contains('#') {
        return Err(bad("must not have a #fragment"));
    }
    let (host, port) = host_port(authority).map_err(bad)?;
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    if !tls && !loopback(&host) {
        return Err(bad(
            "must use https:// (plain http:// is allowed only to 127.0.0.1, [::1] or localhost)",
        ));
    }
    let path = match path.strip_prefix('?') {
        Some(q) => format!("/?{q}"),
        None if path.is_empty() => "/".to_owned(),
        None => path.to_owned(),
    };
    Ok(WebhookUrl {
        tls,
        host,
        port,
        path,
    })
}

/// `s` with everything after a leading `https://` or `http://` (or from the start) up to its
/// last `@` replaced by `***`: the user name and password, wherever a malformed URL puts them.
fn redacted(s: &str) -> String {
    let Some(at) = s.rfind('@') else {
        return s.to_owned();
    };
    let start = ["https://", "http://"]
        .iter()
        .find_map(|p| strip_prefix_ci(s, p).map(|_| p.len()))
        .unwrap_or(0);
    format!("{}***{}", &s[..start], &s[at..])
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The host (lower case, IPv6 without brackets) and the port, if given.
fn host_port(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or("has an unclosed `[`")?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| "has an invalid IPv6 address")?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("has text after the IPv6 address")?,
            ),
        };
        (inside.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        (host.to_ascii_lowercase(), port)
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if !host.contains(':') && host.parse::<Ipv4Addr>().is_err() && !dns_name(&host) {
        return Err("has an invalid host name");
    }
    let port = match port {
        None => None,
        Some(p) => {
            let n: u16 = p
                .parse()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|c| c.is_ascii_digit()))
                .ok_or("has an invalid port (1-65535)")?;
            Some(n)
        }
    };
    Ok((host, port))
}

/// An RFC 1123 host name (lower case already).
fn dns_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "::1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good() {
        let u = webhook_url("https://hooks.example.com/services/T0/B1?x=1").unwrap();
        assert_eq!(
            u,
            WebhookUrl {
                tls: true,
                host: "hooks.example.com".into(),
                port: 443,
                path: "/services/T0/B1?x=1".into(),
            }
        );
        assert_eq!(u.authority(), "hooks.example.com");
        let u = webhook_url("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        assert_eq!(u.authority(), "127.0.0.1:8080");
        let u = webhook_url("HTTPS://[2001:db8::1]:8443?q").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::1", 8443));
        assert_eq!(u.path, "/?q");
        assert_eq!(u.authority(), "[2001:db8::1]:8443");
        assert!(webhook_url("http://localhost/hook").is_ok());
        assert!(webhook_url("http://[::1]:9/").is_ok());
    }

    #[test]
    fn refused_urls_never_echo_a_password() {
        // Found by fuzzing (validate): a URL with credentials refused by an earlier check
        // (a non-printable byte, its length, a `/` in the password) was echoed whole.
        let long = format!(
            "https://user:hunter22secret@example.com/{}",
            "a".repeat(3000)
        );
        for bad in [
            "https://user:hunter22secret@example.com\u{7f}/",
            "https://user:hunter22secret@example.com/ x",
            "https://user:hunter22/secret@example.com/",
            "https://user:hunter22secret@exa_mple.com/",
            "ftp://user:hunter22secret@example.com/",
            "user:hunter22secret@example.com",
            "https::hunter22secret@example://x@y/",
            long.as_str(),
        ] {
            let e = webhook_url(bad).expect_err(bad).to_string();
            assert!(!e.contains("hunter22"), "{e}");
            assert!(e.contains("***@"), "{e}");
        }
    }

    #[test]
    fn bad() {
        let long = format!("https://example.com/{}", "a".repeat(5000));
        for bad in [
            "",
            "javascript:alert(1)",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://@example.com/",
            "http://example.com/",
            "http://10.0.0.1/",
            "http://127.0.0.1.evil.com/",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com/a b",
            "https://example.com/\n",
            "https://ex_ample.com/",
            "https://-x.com/",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://example.com:+80/",
            "https://example.com:/",
            "https://[::1/",
            "https://[zz::1]/",
            "https://[::1]x/",
            "https://example.com/#frag",
            "https://exämple.com/",
            long.as_str(),
        ] {
            let e = webhook_url(bad).expect_err(bad);
            assert!(!e.to_string().contains("pw"), "{e}");
            assert!(e.to_string().starts_with("invalid webhook url `"), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
