//! The server's edge: what a connection may cost before it has proved anything.
//!
//! Every accepted connection takes a slot in a [`pool::Pool`] with three budgets, so idle or
//! half-open connections can never use up the process's file descriptors (found: ~1,000 idle TLS
//! connections made `accept` fail with `EMFILE` and shut everyone out):
//!
//! - **handshake**: connections still in the TLS handshake (`tls_handshake_timeout`); when full,
//!   the oldest is closed for the new one, so a flood of half-open handshakes cannot keep a
//!   device or an administrator from starting theirs;
//! - **devices**: connections that presented a device certificate chaining to the Brevet CA,
//!   decided after the handshake; a reserved share (`device_connections`) no anonymous client
//!   can use, at most `max_connections_per_device` per device (a new one ends its oldest);
//! - **anonymous**: everything else (people with bearer sessions included); when full, the
//!   oldest anonymous connection with no request in flight is closed first, else the new one.
//!
//! Before the handshake completes, at most `max_connections_per_address` connections come from
//! one source address (IPv6: one /64, see [`source_key`]). Each connection is watched
//! ([`conn`]): a request head must arrive within `header_read_timeout`, and a connection with
//! nothing in flight is closed after `idle_timeout`. The budgets are fitted under the
//! open-file limit, which `brevetd` raises to its hard limit at start ([`nofile`]).

pub(crate) mod conn;
pub(crate) mod nofile;
pub(crate) mod pool;

use std::fmt::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brevet_proto::validate;

use crate::config::ServerSettings;

/// The TCP peer of a request, set by `serve` from the socket (never from a header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The unit one client is counted in: an IPv4 address (also when written IPv4-mapped), or the
/// /64 prefix of an IPv6 address, since one host commonly holds a whole /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The edge settings of `[server]`, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub budget: pool::Budget,
}

/// File descriptors kept for everything but client connections (database, webhooks, syslog,
/// files, the listener).
pub(crate) const RESERVED_FDS: u64 = 256;

impl Limits {
    pub fn from_settings(s: &ServerSettings) -> Result<Limits, String> {
        let d = |field: &str, v: &str| {
            validate::duration(v)
                .map(Duration::from_secs)
                .map_err(|e| format!("server.{field}: {e}"))
        };
        let handshake_timeout = d("tls_handshake_timeout", &s.tls_handshake_timeout)?;
        let header_timeout = d("header_read_timeout", &s.header_read_timeout)?;
        let idle_timeout = d("idle_timeout", &s.idle_timeout)?;
        for (field, v) in [
            ("tls_handshake_timeout", handshake_timeout),
            ("header_read_timeout", header_timeout),
            ("idle_timeout", idle_timeout),
        ] {
            if v > Duration::from_secs(3600) {
                return Err(format!("server.{field}: at most 1h"));
            }
        }
        let budget = pool::Budget::new(
            s.max_connections,
            s.device_connections,
            s.max_connections_per_address,
            s.max_connections_per_device,
        )?;
        Ok(Limits {
            handshake_timeout,
            header_timeout,
            idle_timeout,
            budget,
        })
    }
}

/// Why a connection was refused or closed by the edge, counted on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Refused at accept: the source address has its fill of connections.
    PerAddress,
    /// Refused after the handshake: the anonymous budget is full of busy connections.
    AnonymousFull,
    /// Refused after the handshake: the device budget is full of busy connections.
    DevicesFull,
    /// Closed to make room (oldest first).
    Evicted,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// No complete request head in time.
    HeaderTimeout,
    /// Nothing in flight for `idle_timeout`.
    Idle,
}

const CLOSED: [(Closed, &str); 7] = [
    (Closed::PerAddress, "per_address"),
    (Closed::AnonymousFull, "anonymous_full"),
    (Closed::DevicesFull, "devices_full"),
    (Closed::Evicted, "evicted"),
    (Closed::HandshakeTimeout, "handshake_timeout"),
    (Closed::HeaderTimeout, "header_timeout"),
    (Closed::Idle, "idle"),
];

/// Edge counters for `/metrics`.
#[derive(Default)]
pub struct EdgeMetrics {
    closed: [AtomicU64; 7],
    /// `accept` failures for want of file descriptors (`EMFILE`, `ENFILE`).
    pub accept_fd_errors: AtomicU64,
    /// Open connections by kind, refreshed by the pool.
    pub(crate) open: [AtomicU64; 3],
}

impl EdgeMetrics {
    pub(crate) fn closed(&self, why: Closed) {
        if let Some(i) = CLOSED.iter().position(|(c, _)| *c == why) {
            self.closed[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP brevet_connections Open client connections by kind.\n# TYPE brevet_connections gauge\n",
        );
        for (kind, n) in ["handshake", "anonymous", "device"].iter().zip(&self.open) {
            let _ = writeln!(
                out,
                "brevet_connections{{kind=\"{kind}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP brevet_connections_closed_total Connections the edge refused or closed, by reason.\n# TYPE brevet_connections_closed_total counter\n",
        );
        for ((_, reason), n) in CLOSED.iter().zip(&self.closed) {
            let _ = writeln!(
                out,
                "brevet_connections_closed_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP brevet_accept_fd_errors_total accept() failures for want of file descriptors.\n# TYPE brevet_accept_fd_errors_total counter\nbrevet_accept_fd_errors_total {}",
            self.accept_fd_errors.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let k = |s: &str| source_key(s.parse().unwrap()).to_string();
        assert_eq!(k("203.0.113.7"), "203.0.113.7");
        assert_eq!(k("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2:ffff::1"), "2001:db8:1:2::");
    }

    #[test]
    fn settings() {
        let s = ServerSettings::default();
        let l = Limits::from_settings(&s).unwrap();
        assert_eq!(l.header_timeout, Duration::from_secs(10));
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert_eq!(l.budget.total, 16384);
        let bad = |f: &dyn Fn(&mut ServerSettings)| {
            let mut s = ServerSettings::default();
            f(&mut s);
            Limits::from_settings(&s).unwrap_err()
        };
        assert!(bad(&|s| s.idle_timeout = "0s".into()).contains("server.idle_timeout"));
        assert!(bad(&|s| s.header_read_timeout = "2h".into()).contains("at most 1h"));
        assert!(bad(&|s| s.device_connections = s.max_connections).contains("device_connections"));
        assert!(bad(&|s| s.max_connections_per_address = 0).contains("per_address"));
    }
}
