//! The connection pool: every open client connection holds a [`Slot`], and the pool decides at
//! accept and after the handshake whether it may stay, and which connection makes room.
//!
//! Guarantees: the connections counted never exceed [`Budget::total`] (so file descriptors are
//! bounded); devices and handshakes never compete with established anonymous connections for
//! room; a connection with a request in flight is never closed to make room for an anonymous
//! one. Age is the accept order; the oldest is closed first.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::conn::ConnState;
use super::{Closed, EdgeMetrics};

/// How many connections of each kind may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub total: usize,
    /// Kept for devices.
    pub device: usize,
    /// Connections still in the TLS handshake: an eighth of the total.
    pub handshake: usize,
    /// The rest.
    pub anonymous: usize,
    pub per_address: usize,
    pub per_device: usize,
}

impl Budget {
    pub fn new(
        total: u32,
        device: u32,
        per_address: u32,
        per_device: u32,
    ) -> Result<Budget, String> {
        let (total, device) = (total as usize, device as usize);
        if !(64..=1_000_000).contains(&total) {
            return Err("server.max_connections: use 64 to 1000000".into());
        }
        if per_address == 0 {
            return Err("server.max_connections_per_address: at least 1".into());
        }
        if per_device == 0 {
            return Err("server.max_connections_per_device: at least 1".into());
        }
        let handshake = total / 8;
        if device + handshake + 16 > total {
            return Err(format!(
                "server.device_connections `{device}`: leave at least {} of max_connections \
                 `{total}` to handshakes and anonymous clients",
                handshake + 16
            ));
        }
        Ok(Budget {
            total,
            device,
            handshake,
            anonymous: total - device - handshake,
            per_address: per_address as usize,
            per_device: per_device as usize,
        })
    }

    /// The same shares scaled down to `total` connections (when the open-file limit is lower
    /// than the configured total).
    pub fn scaled_to(&self, total: usize) -> Budget {
        if total >= self.total {
            return *self;
        }
        let total = total.max(24);
        let handshake = (total / 8).max(4);
        let device = (self.device * total / self.total).min(total - handshake - 16);
        Budget {
            total,
            device,
            handshake,
            anonymous: total - device - handshake,
            per_address: self.per_address,
            per_device: self.per_device,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Handshake = 0,
    Anonymous = 1,
    Device = 2,
}

struct Entry {
    kind: Kind,
    source: IpAddr,
    device: Option<String>,
    conn: Arc<ConnState>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By accept order: the first is the oldest.
    conns: BTreeMap<u64, Entry>,
    /// Handshake and anonymous connections per source.
    by_source: HashMap<IpAddr, usize>,
    by_device: HashMap<String, usize>,
    counts: [usize; 3],
}

pub(crate) struct Pool {
    budget: Budget,
    inner: Mutex<Inner>,
    /// Signalled whenever a connection leaves the pool.
    pub(crate) freed: Notify,
    metrics: Arc<EdgeMetrics>,
}

/// One connection's place in the pool; dropping it gives the place back.
pub(crate) struct Slot {
    pool: Arc<Pool>,
    id: u64,
    pub(crate) conn: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.pool.lock();
        if let Some(e) = inner.conns.remove(&self.id) {
            Pool::forget(&mut inner, &e);
        }
        self.pool.publish(&inner);
        drop(inner);
        self.pool.freed.notify_waiters();
    }
}

impl Pool {
    pub(crate) fn new(budget: Budget, metrics: Arc<EdgeMetrics>) -> Arc<Pool> {
        Arc::new(Pool {
            budget,
            inner: Mutex::new(Inner::default()),
            freed: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection just accepted from `source` (a [`super::source_key`]), in the
    /// handshake budget; when that is full, the oldest handshake is closed for it. Refused when
    /// the source already has its fill.
    pub(crate) fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Slot, Closed> {
        let mut inner = self.lock();
        if inner.by_source.get(&source).copied().unwrap_or(0) >= self.budget.per_address {
            return Err(Closed::PerAddress);
        }
        if inner.counts[Kind::Handshake as usize] >= self.budget.handshake {
            self.evict_oldest(&mut inner, |e| e.kind == Kind::Handshake);
        }
        let id = inner.next;
        inner.next += 1;
        let conn = Arc::new(ConnState::new());
        inner.conns.insert(
            id,
            Entry {
                kind: Kind::Handshake,
                source,
                device: None,
                conn: conn.clone(),
            },
        );
        *inner.by_source.entry(source).or_insert(0) += 1;
        inner.counts[Kind::Handshake as usize] += 1;
        self.publish(&inner);
        Ok(Slot {
            pool: self.clone(),
            id,
            conn,
        })
    }

    /// Moves a connection whose handshake is done into the device budget (`device` names the
    /// certificate's device) or the anonymous one, making room by closing the oldest idle
    /// connection of that kind (for a device: first its own oldest beyond the per-device cap).
    pub(crate) fn classify(&self, slot: &Slot, device: Option<&str>) -> Result<(), Closed> {
        let mut inner = self.lock();
        let Some(entry) = inner.conns.get(&slot.id) else {
            return Err(Closed::Evicted);
        };
        let source = entry.source;
        let result = match device {
            Some(name) => {
                while inner.by_device.get(name).copied().unwrap_or(0) >= self.budget.per_device {
                    // The device's newest connection wins, busy or not: only the holder of its
                    // key can open one.
                    if !self.evict_oldest(&mut inner, |e| e.device.as_deref() == Some(name)) {
                        break;
                    }
                }
                if inner.counts[Kind::Device as usize] >= self.budget.device
                    && !self
                        .evict_oldest(&mut inner, |e| e.kind == Kind::Device && e.conn.is_idle())
                {
                    Err(Closed::DevicesFull)
                } else {
                    Ok(Kind::Device)
                }
            }
            None => {
                if inner.counts[Kind::Anonymous as usize] >= self.budget.anonymous
                    && !self.evict_oldest(&mut inner, |e| {
                        e.kind == Kind::Anonymous && e.conn.is_idle()
                    })
                {
                    Err(Closed::AnonymousFull)
                } else {
                    Ok(Kind::Anonymous)
                }
            }
        };
        let kind = result?;
        if let Some(e) = inner.conns.get_mut(&slot.id) {
            e.kind = kind;
            e.device = device.map(str::to_owned);
        }
        inner.counts[Kind::Handshake as usize] -= 1;
        inner.counts[kind as usize] += 1;
        if kind == Kind::Device {
            Self::source_done(&mut inner, source);
            *inner
                .by_device
                .entry(device.unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
        self.publish(&inner);
        Ok(())
    }

    /// Closes the oldest handshake, else the oldest idle anonymous connection, to free a file
    /// descriptor after `accept` ran out of them. False when there is none.
    pub(crate) fn evict_for_fd(&self) -> bool {
        let mut inner = self.lock();
        let done = self.evict_oldest(&mut inner, |e| e.kind == Kind::Handshake)
            || self.evict_oldest(&mut inner, |e| {
                e.kind == Kind::Anonymous && e.conn.is_idle()
            });
        self.publish(&inner);
        done
    }

    /// Open connections: handshake, anonymous, device.
    pub(crate) fn counts(&self) -> [usize; 3] {
        self.lock().counts
    }

    /// Closes the oldest connection that `pick` accepts; false when none does.
    fn evict_oldest(&self, inner: &mut Inner, pick: impl Fn(&Entry) -> bool) -> bool {
        let Some(id) = inner.conns.iter().find(|(_, e)| pick(e)).map(|(id, _)| *id) else {
            return false;
        };
        let Some(e) = inner.conns.remove(&id) else {
            return false;
        };
        Self::forget(inner, &e);
        e.conn.evict();
        self.metrics.closed(Closed::Evicted);
        true
    }

    fn forget(inner: &mut Inner, e: &Entry) {
        inner.counts[e.kind as usize] -= 1;
        match e.kind {
            Kind::Device => {
                let name = e.device.clone().unwrap_or_default();
                if let Some(n) = inner.by_device.get_mut(&name) {
                    *n -= 1;
                    if *n == 0 {
                        inner.by_device.remove(&name);
                    }
                }
            }
            Kind::Handshake | Kind::Anonymous => Self::source_done(inner, e.source),
        }
    }

    fn source_done(inner: &mut Inner, source: IpAddr) {
        if let Some(n) = inner.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                inner.by_source.remove(&source);
            }
        }
    }

    fn publish(&self, inner: &Inner) {
        for (gauge, n) in self.metrics.open.iter().zip(inner.counts) {
            gauge.store(n as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(total: u32, device: u32, per_address: u32) -> Arc<Pool> {
        let b = Budget::new(total, device, per_address, 2).unwrap();
        Pool::new(b, Arc::default())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn budget_shares() {
        let b = Budget::new(16384, 8192, 128, 4).unwrap();
        assert_eq!((b.handshake, b.anonymous, b.device), (2048, 6144, 8192));
        let s = b.scaled_to(768);
        assert_eq!(s.handshake + s.anonymous + s.device, 768);
        assert_eq!((s.handshake, s.device), (96, 384));
        assert_eq!(b.scaled_to(100_000), b);
        assert!(Budget::new(10, 0, 1, 1).is_err());
        assert!(Budget::new(1000, 900, 1, 1).is_err());
    }

    #[test]
    fn per_address_cap_counts_until_a_device_certificate() {
        let p = pool(64, 16, 3);
        let a = ip("192.0.2.1");
        let s: Vec<Slot> = (0..3).map(|_| p.admit(a).unwrap()).collect();
        assert_eq!(p.admit(a).err(), Some(Closed::PerAddress));
        assert!(p.admit(ip("192.0.2.2")).is_ok());
        // A device connection no longer counts against its address.
        p.classify(&s[0], Some("web-01")).unwrap();
        let again = p.admit(a).unwrap();
        drop(s);
        drop(again);
        assert_eq!(p.counts(), [0, 0, 0]);
    }

    #[test]
    fn handshakes_make_room_oldest_first() {
        let p = pool(64, 16, 1000);
        let first = p.admit(ip("192.0.2.1")).unwrap();
        let rest: Vec<Slot> = (0..7).map(|_| p.admit(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(p.counts()[0], 8);
        let newest = p.admit(ip("198.51.100.1")).unwrap();
        assert!(first.conn.is_evicted());
        assert!(!rest[0].conn.is_evicted() && !newest.conn.is_evicted());
        assert_eq!(p.counts()[0], 8);
    }

    #[test]
    fn anonymous_full_closes_the_oldest_idle_never_a_busy_one() {
        let p = pool(64, 16, 1000);
        // 64 - 16 - 8 = 40 anonymous places.
        let mut held = Vec::new();
        for _ in 0..40 {
            let s = p.admit(ip("192.0.2.1")).unwrap();
            p.classify(&s, None).unwrap();
            held.push(s);
        }
        held[0].conn.request_started();
        let s = p.admit(ip("192.0.2.9")).unwrap();
        p.classify(&s, None).unwrap();
        assert!(!held[0].conn.is_evicted(), "busy: kept");
        assert!(held[1].conn.is_evicted(), "oldest idle: closed");
        // All busy: the newcomer is refused instead.
        for h in &held[2..] {
            h.conn.request_started();
        }
        s.conn.request_started();
        let t = p.admit(ip("192.0.2.9")).unwrap();
        assert_eq!(p.classify(&t, None), Err(Closed::AnonymousFull));
        // Devices still get in: their budget is their own.
        let d = p.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(p.classify(&d, Some("web-01")), Ok(()));
        assert_eq!(p.counts(), [1, 40, 1]);
    }

    #[test]
    fn a_device_keeps_its_newest_connections() {
        let p = pool(64, 16, 1000);
        let a = p.admit(ip("192.0.2.1")).unwrap();
        p.classify(&a, Some("web-01")).unwrap();
        a.conn.request_started();
        let b = p.admit(ip("192.0.2.1")).unwrap();
        p.classify(&b, Some("web-01")).unwrap();
        let c = p.admit(ip("192.0.2.1")).unwrap();
        p.classify(&c, Some("web-01")).unwrap();
        assert!(a.conn.is_evicted(), "oldest of the device, even busy");
        assert!(!b.conn.is_evicted() && !c.conn.is_evicted());
        let other = p.admit(ip("192.0.2.1")).unwrap();
        p.classify(&other, Some("db-01")).unwrap();
        assert_eq!(p.counts()[2], 3);
    }

    #[test]
    fn evict_for_fd_prefers_handshakes_then_idle_anonymous() {
        let p = pool(64, 16, 1000);
        let anon = p.admit(ip("192.0.2.1")).unwrap();
        p.classify(&anon, None).unwrap();
        let hs = p.admit(ip("192.0.2.1")).unwrap();
        assert!(p.evict_for_fd());
        assert!(hs.conn.is_evicted() && !anon.conn.is_evicted());
        assert!(p.evict_for_fd());
        assert!(anon.conn.is_evicted());
        assert!(!p.evict_for_fd());
    }
}
