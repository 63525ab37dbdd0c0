//! One connection's watch: what it has done lately, and when it must be closed.
//!
//! [`Watched`] wraps the decrypted stream and notes every byte read or written; the service
//! wrapper in `serve` marks each request in flight ([`ConnState::request_started`] and the
//! [`InFlight`] guard). From that, [`ConnState::deadline`] says when the connection is closed:
//!
//! - never while a request is in flight (a device's long-poll waits up to a minute);
//! - the first request head must be complete within `header_read_timeout` of the handshake;
//! - a later one within `header_read_timeout` of its first byte (a client trickling half a
//!   header gains nothing by it);
//! - with nothing in flight and nothing arriving, after `idle_timeout` since the last activity.
//!
//! HTTP/1 and HTTP/2 are watched the same way, below hyper, so the rules hold for both.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Closed, Limits};

const NONE: u64 = u64::MAX;

/// What the edge knows of one connection.
pub(crate) struct ConnState {
    base: Instant,
    /// Milliseconds since `base`.
    last_activity: AtomicU64,
    /// When the first byte of a request head not yet complete arrived, or [`NONE`].
    head_started: AtomicU64,
    /// When the handshake finished ([`NONE`] before).
    ready_at: AtomicU64,
    in_flight: AtomicUsize,
    served: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

impl ConnState {
    pub(crate) fn new() -> ConnState {
        ConnState {
            base: Instant::now(),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            ready_at: AtomicU64::new(NONE),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + std::time::Duration::from_millis(ms)
    }

    /// The handshake is done: the header clock starts.
    pub(crate) fn ready(&self) {
        let now = self.now_ms();
        self.ready_at.store(now, Ordering::Relaxed);
        self.last_activity.store(now, Ordering::Relaxed);
    }

    /// No request in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// A complete request head arrived and is being served.
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
    }

    fn request_ended(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn read(&self) {
        let now = self.now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.is_idle() && self.served.load(Ordering::Relaxed) {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
    }

    /// When the connection is to be closed if nothing changes, and why; `None` while a request
    /// is in flight (or before the handshake, which has its own timeout).
    pub(crate) fn deadline(&self, limits: &Limits) -> Option<(Instant, Closed)> {
        if !self.is_idle() {
            return None;
        }
        let ready = self.ready_at.load(Ordering::Relaxed);
        if ready == NONE {
            return None;
        }
        if !self.served.load(Ordering::Relaxed) {
            return Some((
                self.at(ready) + limits.header_timeout,
                Closed::HeaderTimeout,
            ));
        }
        let started = self.head_started.load(Ordering::Relaxed);
        if started != NONE {
            return Some((
                self.at(started) + limits.header_timeout,
                Closed::HeaderTimeout,
            ));
        }
        let last = self.last_activity.load(Ordering::Relaxed);
        Some((self.at(last) + limits.idle_timeout, Closed::Idle))
    }

    /// Asks the connection's task to close it (to make room).
    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.evict.notify_one();
    }

    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Completes when the connection has been evicted.
    pub(crate) async fn evicted(&self) {
        if self.is_evicted() {
            return;
        }
        self.evict.notified().await;
    }
}

/// Marks one request in flight until dropped (when its response is ready).
pub(crate) struct InFlight(Arc<ConnState>);

impl InFlight {
    pub(crate) fn start(conn: &Arc<ConnState>) -> InFlight {
        conn.request_started();
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A stream whose reads and writes are noted on its [`ConnState`].
pub(crate) struct Watched<S> {
    inner: S,
    conn: Arc<ConnState>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, conn: Arc<ConnState>) -> Watched<S> {
        Watched { inner, conn }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ServerSettings;

    fn limits() -> Limits {
        Limits::from_settings(&ServerSettings::default()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn header_then_idle_deadlines() {
        let l = limits();
        let c = Arc::new(ConnState::new());
        assert_eq!(c.deadline(&l), None, "handshake has its own timeout");
        c.ready();
        let t0 = Instant::now();
        let (at, why) = c.deadline(&l).unwrap();
        assert_eq!((at - t0, why), (l.header_timeout, Closed::HeaderTimeout));
        // Bytes of a first request do not move the header deadline.
        tokio::time::advance(Duration::from_secs(5)).await;
        c.read();
        assert_eq!(c.deadline(&l).unwrap().0, at);
        // In flight: no deadline, however long (a long-poll).
        let g = InFlight::start(&c);
        assert_eq!(c.deadline(&l), None);
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(c.deadline(&l), None);
        drop(g);
        let t1 = Instant::now();
        assert_eq!(c.deadline(&l), Some((t1 + l.idle_timeout, Closed::Idle)));
        // The first byte of the next head starts the header clock; more bytes do not extend it.
        tokio::time::advance(Duration::from_secs(3)).await;
        c.read();
        let t2 = Instant::now();
        tokio::time::advance(Duration::from_secs(4)).await;
        c.read();
        assert_eq!(
            c.deadline(&l),
            Some((t2 + l.header_timeout, Closed::HeaderTimeout))
        );
        let g = InFlight::start(&c);
        drop(g);
        assert_eq!(c.deadline(&l).unwrap().1, Closed::Idle);
    }

    #[tokio::test]
    async fn eviction_wakes_the_task() {
        let c = Arc::new(ConnState::new());
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.evicted().await })
        };
        c.evict();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(c.is_evicted());
        c.evicted().await;
    }
}
