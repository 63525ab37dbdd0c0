//! Syslog forwarding to a real TLS receiver in the test: every audit event arrives in order and
//! exactly once by sequence number — across a server restart, a stretch with the forwarder off,
//! and a collector outage — and OCSF bodies parse, on SQLite and PostgreSQL.
//!
//! The receiver speaks RFC 5425 (TLS, octet-counted frames) with a certificate from its own CA,
//! which the server trusts through `[syslog] ca_file`. Messages repeated on the wire (allowed
//! after a restart or a broken connection) must be byte-identical to the first copy.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brevet_cli::client::Client;
use brevet_identity::ca::Ca;
use common::*;

/// One message as received.
#[derive(Clone)]
struct Msg {
    seq: u64,
    kind: String,
    body: String,
    raw: String,
}

/// A syslog-over-TLS collector on a fixed port that can be stopped and started again.
struct Receiver {
    port: u16,
    ca_pem: String,
    tls: Arc<rustls::ServerConfig>,
    got: Arc<Mutex<Vec<Msg>>>,
    connections: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let ca = Ca::generate("syslog test CA").expect("ca");
        let cert = ca
            .issue_server(&["localhost".into()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1)
            .expect("cert");
        let tls =
            brevet_identity::tls::server_config(&cert.cert_pem, &cert.key_pem, None).expect("tls");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut r = Receiver {
            port: listener.local_addr().unwrap().port(),
            ca_pem: ca.cert_pem().to_owned(),
            tls,
            got: Arc::default(),
            connections: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let (tls, got, connections) =
            (self.tls.clone(), self.got.clone(), self.connections.clone());
        self.thread = Some(std::thread::spawn(move || {
            let mut threads = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        *connections.lock().unwrap() += 1;
                        let (tls, got, stop) = (tls.clone(), got.clone(), stop.clone());
                        threads.push(std::thread::spawn(move || read_frames(tcp, tls, got, stop)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            for t in threads {
                t.join().unwrap();
            }
        }));
    }

    /// Closes the listener and every connection, as a crashed collector would.
    fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind");
        self.serve(listener);
    }

    fn messages(&self) -> Vec<Msg> {
        self.got.lock().unwrap().clone()
    }

    fn config(&self, h: &Harness, format: &str) -> String {
        // Relative to the data dir, as an operator would write it.
        let data = h.config_path().parent().unwrap().to_owned();
        std::fs::write(data.join("collector-ca.pem"), &self.ca_pem).unwrap();
        format!(
            "[syslog]\naddress = \"localhost:{}\"\nca_file = \"collector-ca.pem\"\n\
             app_name = \"brevet-test\"\nformat = \"{format}\"\n",
            self.port
        )
    }

    /// Waits until every sequence number up to `head` has arrived, then checks the stream:
    /// first copies in order without gaps, repeats identical to them, and (unless allowed) no
    /// repeats at all. Returns the first copies.
    fn check(&self, head: u64, repeats_allowed: bool) -> Vec<Msg> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen: HashSet<u64> = self.messages().iter().map(|m| m.seq).collect();
            if (1..=head).all(|s| seen.contains(&s)) {
                break;
            }
            let missing: Vec<u64> = (1..=head).filter(|s| !seen.contains(s)).collect();
            assert!(Instant::now() < deadline, "never arrived: {missing:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut first: BTreeMap<u64, Msg> = BTreeMap::new();
        let mut order = Vec::new();
        let mut repeats = 0;
        for m in self.messages() {
            match first.get(&m.seq) {
                Some(f) => {
                    assert_eq!(f.raw, m.raw, "seq {} repeated with other content", m.seq);
                    repeats += 1;
                }
                None => {
                    order.push(m.seq);
                    first.insert(m.seq, m);
                }
            }
        }
        eprintln!(
            "{} events up to seq {head}, {repeats} repeated on the wire",
            order.len()
        );
        let expected: Vec<u64> = (1..=order.len() as u64).collect();
        assert_eq!(order, expected, "first copies out of order or with gaps");
        if !repeats_allowed {
            assert_eq!(repeats, 0, "messages repeated without a restart or outage");
        }
        first.into_values().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// Reads RFC 5425 frames (`LEN SP MSG`) until the peer goes or the receiver stops. A frame cut
/// off by the connection's end is dropped, as a collector would.
fn read_frames(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    got: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
) {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let conn = rustls::ServerConnection::new(tls).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        while let Some((msg, used)) = frame(&buf) {
            got.lock().unwrap().push(parse(&msg));
            buf.drain(..used);
        }
    }
}

fn frame(buf: &[u8]) -> Option<(String, usize)> {
    let space = buf.iter().position(|b| *b == b' ')?;
    let len: usize = std::str::from_utf8(&buf[..space])
        .ok()?
        .parse()
        .expect("octet count");
    let end = space + 1 + len;
    (buf.len() >= end).then(|| {
        (
            String::from_utf8(buf[space + 1..end].to_vec()).unwrap(),
            end,
        )
    })
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [brevet@32473 seq="N" chain="…"] BODY`
fn parse(raw: &str) -> Msg {
    let fields: Vec<&str> = raw.splitn(7, ' ').collect();
    assert!(raw.starts_with('<') && fields[0].ends_with(">1"), "{raw}");
    assert_eq!((fields[3], fields[4]), ("brevet-test", "-"), "{raw}");
    let sd = fields[6];
    assert!(sd.starts_with("[brevet@32473 seq=\""), "{raw}");
    let seq = sd["[brevet@32473 seq=\"".len()..]
        .split('"')
        .next()
        .unwrap();
    let body = &sd[sd.find("\"] ").expect("end of structured data") + 3..];
    Msg {
        seq: seq.parse().expect("seq"),
        kind: fields[5].to_owned(),
        body: body.to_owned(),
        raw: raw.to_owned(),
    }
}

/// Requests, approvals, a denial and a failed login: about ten audit events per round.
fn activity(h: &mut Harness, c: &Cast, rounds: usize) {
    for _ in 0..rounds {
        let r = pending(&c.alice, "short");
        c.bob.approve(&r.id, None).expect("approve");
        let r = pending(&c.alice, "pkg-update");
        c.carol
            .deny(&r.id, "not during the freeze", None)
            .expect("deny");
        let _ = h.anonymous().login("alice", "wrong password", "000000");
    }
    h.login("carol");
}

/// The audit trail as the API serves it: seq → kind.
fn trail(admin: &Client) -> BTreeMap<u64, String> {
    admin
        .audit(0, 10_000)
        .expect("audit")
        .into_iter()
        .map(|e| (e.seq, e.kind))
        .collect()
}

fn same_kinds(got: &[Msg], trail: &BTreeMap<u64, String>) {
    for m in got {
        if let Some(kind) = trail.get(&m.seq) {
            assert_eq!(&m.kind, kind, "seq {}", m.seq);
        }
    }
}

both_engines!(
    every_event_exactly_once_across_restarts_and_outages,
    |mut h: Harness| {
        let mut r = Receiver::start();
        // Events written before forwarding was configured are sent too.
        h.stop();
        h.append_config(&r.config(&h, "json"));
        h.restart_after_stop();
        let c = h.cast();
        activity(&mut h, &c, 3);
        let head = *trail(&c.admin).keys().last().unwrap();
        let got = r.check(head, false);
        same_kinds(&got, &trail(&c.admin));
        let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["seq"], 1);
        assert_eq!(body["kind"], got[0].kind);

        // A burst, then the server stops at once, mid-forwarding: the rest follows the restart.
        activity(&mut h, &c, 3);
        h.restart();
        activity(&mut h, &c, 1);
        let head = *trail(&c.admin).keys().last().unwrap();
        same_kinds(&r.check(head, true), &trail(&c.admin));

        // With forwarding off, events pile up; turned on again, they are all delivered.
        let with_syslog = std::fs::read_to_string(h.config_path()).unwrap();
        let without = &with_syslog[..with_syslog.rfind("\n[syslog]").unwrap()];
        std::fs::write(h.config_path(), without).unwrap();
        h.restart();
        activity(&mut h, &c, 2);
        std::fs::write(h.config_path(), &with_syslog).unwrap();
        h.restart();
        let head = *trail(&c.admin).keys().last().unwrap();
        r.check(head, true);

        // The collector goes down for a while; the forwarder catches up when it is back.
        let connections = *r.connections.lock().unwrap();
        r.down();
        activity(&mut h, &c, 2);
        std::thread::sleep(Duration::from_millis(1500));
        r.up();
        let trail = trail(&c.admin);
        let head = *trail.keys().last().unwrap();
        let got = r.check(head, true);
        same_kinds(&got, &trail);
        assert!(*r.connections.lock().unwrap() > connections, "no reconnect");

        let kinds: HashSet<&str> = got.iter().map(|m| m.kind.as_str()).collect();
        for kind in [
            "user.created",
            "request.created",
            "request.approved",
            "grant.issued",
            "request.denied",
            "login.failed",
            "login.succeeded",
        ] {
            assert!(kinds.contains(kind), "no {kind} forwarded");
        }
        wait_until("the lag gauge falls to 0", || {
            let metrics = c.admin.get_text("/metrics").unwrap();
            metrics.contains("brevet_syslog_lag_events 0\n")
                && metrics.contains("brevet_syslog_forwarded_total ")
        });
    }
);

both_engines!(ocsf_bodies, |mut h: Harness| {
    let r = Receiver::start();
    h.stop();
    h.append_config(&r.config(&h, "ocsf"));
    h.restart_after_stop();
    let c = h.cast();
    activity(&mut h, &c, 1);
    let trail = trail(&c.admin);
    let got = r.check(*trail.keys().last().unwrap(), false);
    same_kinds(&got, &trail);
    let mut classes = BTreeMap::new();
    for m in &got {
        let o: serde_json::Value = serde_json::from_str(&m.body)
            .unwrap_or_else(|e| panic!("seq {}: {e}: {}", m.seq, m.body));
        let class = o["class_uid"]
            .as_u64()
            .unwrap_or_else(|| panic!("no class_uid: {o}"));
        let activity = o["activity_id"].as_u64().unwrap();
        assert_eq!(o["type_uid"].as_u64(), Some(class * 100 + activity));
        assert_eq!(o["metadata"]["uid"], m.seq.to_string());
        assert_eq!(o["unmapped"]["brevet"]["kind"], m.kind.as_str());
        assert!(o["time"].as_i64().unwrap() > 1_600_000_000_000);
        classes.insert(m.kind.clone(), class);
    }
    // Every kind this flow produces has a real OCSF class, not the generic one.
    for (kind, class) in &classes {
        assert_ne!(*class, 0, "{kind} maps to the generic class");
    }
    assert_eq!(classes["request.created"], 3005);
    assert_eq!(classes["grant.issued"], 3005);
    assert_eq!(classes["login.failed"], 3002);
    assert_eq!(classes["user.created"], 3001);
    assert_eq!(classes["device.added"], 3004);
});

/// The lease that lets one replica forward: taken, renewed, refused to others, lost on expiry.
#[test]
fn one_replica_forwards_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = brevet_store::Store::open(&url).await.unwrap();
        assert_eq!(
            store.syslog_claim("a", 1_000, 16_000).await.unwrap(),
            Some(0)
        );
        assert_eq!(store.syslog_claim("b", 2_000, 17_000).await.unwrap(), None);
        assert!(store.syslog_advance("a", 5, 20_000).await.unwrap());
        assert!(!store.syslog_advance("b", 9, 20_000).await.unwrap());
        // The holder renews at will; the cursor never moves back.
        assert_eq!(
            store.syslog_claim("a", 3_000, 18_000).await.unwrap(),
            Some(5)
        );
        assert!(!store.syslog_advance("a", 4, 20_000).await.unwrap());
        // Expired: another replica takes over where the cursor stands, and the first one's
        // advance is refused.
        assert_eq!(
            store.syslog_claim("b", 20_001, 35_000).await.unwrap(),
            Some(5)
        );
        assert!(!store.syslog_advance("a", 7, 40_000).await.unwrap());
        assert!(store.syslog_advance("b", 7, 40_000).await.unwrap());
        assert_eq!(store.syslog_lag(7).await.unwrap(), 0);
        store.close().await;
    });
}
