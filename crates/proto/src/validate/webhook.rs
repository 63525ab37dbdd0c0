//! Webhook URLs (`brevet notify add --webhook URL`): where `brevetd` POSTs the events people must
//! act on. The URL is hostile input and becomes a connection target, a `Host` header and a log
//! line, so it is parsed by an allow-list, not by a general URL parser: `https://` or `http://`,
//! no user name or password, a host name or IP literal, an optional port, and a path and query of
//! printable ASCII without spaces or a fragment.
//!
//! Where the server may connect is a second check, [`webhook_target`]: by default only
//! `https://` to a host name or a public IP literal ([`public_ip`]), so an administrator's
//! webhook cannot reach the server's own ports, a cloud metadata service or the internal network
//! (SSRF). A host name is checked again on every address it resolves to, at each delivery
//! (`brevetd`'s `webhooks/post.rs`). Plain `http://` and private targets are for development
//! only (`[notify] allow_private_targets = true`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Error;

/// The longest webhook URL accepted, in bytes.
pub const MAX_WEBHOOK_URL: usize = 2048;

const FIELD: &str = "webhook url";

/// A webhook URL, checked and taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `https` (true) or `http` (false; only with private targets allowed).
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

/// An RFC 1123 host name (lower case already) whose last label is not all digits, so numeric
/// forms that resolvers read as IPv4 (`2130706433`, `127.1`) are not taken for names.
fn dns_name(h: &str) -> bool {
    let numeric_tld = h
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|c| c.is_ascii_digit()));
    h.len() <= 253
        && !numeric_tld
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

/// Checks that a server may POST to `url`: unless `allow_private` (development only), it must be
/// `https://`, and an IP literal must be a public address. Host names pass here and are checked
/// on their resolved addresses at each delivery.
pub fn webhook_target(url: &WebhookUrl, allow_private: bool) -> Result<(), Error> {
    if allow_private {
        return Ok(());
    }
    let shown = format!(
        "{}://{}",
        if url.tls { "https" } else { "http" },
        url.authority()
    );
    if !url.tls {
        return Err(Error::invalid(
            FIELD,
            &shown,
            "must use https:// (plain http:// needs `[notify] allow_private_targets = true`, \
             for development only)",
        ));
    }
    if let Ok(ip) = url.host.parse::<IpAddr>()
        && !public_ip(ip)
    {
        return Err(Error::invalid(
            FIELD,
            &shown,
            format!(
                "`{ip}` is a {} address; webhooks go to public addresses only",
                address_kind(ip)
            ),
        ));
    }
    Ok(())
}

/// Whether `ip` is a public unicast address: not loopback, link-local, private (RFC 1918, RFC
/// 4193 unique local, 100.64/10 shared), unspecified, multicast, broadcast, documentation,
/// benchmarking or reserved, and not one of those carried inside an IPv6 address
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4).
pub fn public_ip(ip: IpAddr) -> bool {
    address_kind(ip) == "public"
}

/// What kind of address `ip` is, in words for a message; `"public"` when none of the others.
pub fn address_kind(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> &'static str {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private (RFC 1918)",
        (100, 64..=127, _) => "shared (CGNAT, 100.64.0.0/10)",
        (127, ..) => "loopback",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved (IETF protocol assignments)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "reserved (6to4 relay)",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved or broadcast",
        _ => "public",
    }
}

fn v6_kind(ip: Ipv6Addr) -> &'static str {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return "unspecified";
    }
    if ip.is_loopback() {
        return "loopback";
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (the deprecated compatible form): judged by the
    // IPv4 address inside, as the connection would go there.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return match v4_kind(embedded(s[6], s[7])) {
            "public" if s[5] == 0 => "reserved (IPv4-compatible)",
            "public" => "public",
            _ => "IPv4-mapped non-public",
        };
    }
    match s[0] {
        // NAT64 well-known prefix: public only when the IPv4 address inside is.
        0x64 if s[1] == 0xff9b && s[2..6] == [0; 4] => {
            if v4_kind(embedded(s[6], s[7])) == "public" {
                "public"
            } else {
                "NAT64 of a non-public IPv4"
            }
        }
        0x64 if s[1] == 0xff9b && s[2] == 1 => "NAT64 local-use",
        0x100 if s[1..4] == [0; 3] => "discard-only",
        // 2001::/23: Teredo, benchmarking, ORCHID and other protocol assignments.
        0x2001 if s[1] < 0x200 => "reserved (IETF protocol assignments)",
        0x2001 if s[1] == 0xdb8 => "documentation",
        0x2002 => {
            if v4_kind(embedded(s[1], s[2])) == "public" {
                "public"
            } else {
                "6to4 of a non-public IPv4"
            }
        }
        0x3fff if s[1] < 0x1000 => "documentation",
        0x5f00 => "reserved (SRv6)",
        x if x & 0xfe00 == 0xfc00 => "unique local (RFC 4193)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        x if x & 0xe000 != 0x2000 => "reserved (outside 2000::/3)",
        _ => "public",
    }
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
        // Syntax allows plain http; where a server may connect is `webhook_target`'s call.
        assert!(webhook_url("http://example.com/").is_ok());
    }

    #[test]
    fn targets_are_public_https_unless_development() {
        let target = |s: &str, dev: bool| webhook_target(&webhook_url(s).unwrap(), dev);
        for ok in [
            "https://hooks.example.com/x",
            "https://localhost/x", // a name: checked on its addresses at delivery
            "https://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://[::ffff:93.184.216.34]/",
            "https://[64:ff9b::5db8:d822]/",
            "https://[2002:5db8:d822::1]/",
        ] {
            assert!(target(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "http://127.0.0.1:8500/v1/agent",
            "https://127.0.0.1:8500/",
            "https://127.8.9.10/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://100.127.255.254/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://192.0.2.1/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://198.18.0.1/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fd00::1]/",
            "https://[fc00::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[2001:db8::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::1]/",
            "https://[2001::1]/",
            "https://[100::1]/",
        ] {
            let e = target(bad, false).expect_err(bad).to_string();
            assert!(e.starts_with("invalid webhook url `"), "{e}");
            assert!(!e.contains('\n'), "{e}");
            assert!(target(bad, true).is_ok(), "{bad} (development)");
        }
        let e = target("https://169.254.169.254/", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("link-local"), "{e}");
        let e = target("http://hooks.example.com/", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_private_targets"), "{e}");
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
            "https://2130706433/",
            "https://127.1/",
            "https://0x7f.1/",
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
