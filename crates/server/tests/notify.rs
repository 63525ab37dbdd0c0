//! Webhooks (`brevet notify`), on SQLite and PostgreSQL: a local HTTP receiver gets the events
//! people must act on, signed with the webhook's secret; while it is down (and across a server
//! restart) nothing is lost, and what arrives comes in `seq` order. Only admins manage webhooks,
//! and hostile URLs are refused before anything is stored.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brevet_proto::api::AddWebhook;
use common::*;
use ring::hmac;
use serde_json::Value;

const SECRET: &str = "test-webhook-secret-0123456789";

/// One POST as received.
#[derive(Clone, Debug)]
struct Hook {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
    fn seq(&self) -> u64 {
        self.json()["seq"].as_u64().expect("seq")
    }
}

/// A plain HTTP/1.1 receiver on 127.0.0.1 that answers 200 to every request, and can be stopped
/// and started again on the same port.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Hook>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, got: Arc<Mutex<Vec<Hook>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, sink) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        if let Some(hook) = serve_one(tcp) {
                            sink.lock().unwrap().push(hook);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Receiver {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops listening: connections are refused until a new receiver binds the port.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request (headers, then `Content-Length` bytes) and answers 200.
fn serve_one(tcp: TcpStream) -> Option<Hook> {
    tcp.set_nonblocking(false).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(tcp.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("POST"), "{line}");
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut tcp = tcp;
    tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    Some(Hook {
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn signature(body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = hmac::sign(&key, body.as_bytes());
    format!("sha256={}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// Polls `cond` every 50 ms for up to `secs` seconds.
fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has(rx: &Receiver, kind: &str, subject: &str) -> bool {
    rx.hooks()
        .iter()
        .any(|h| h.json()["kind"] == kind && h.json()["subject"] == subject)
}

/// The receiver is on 127.0.0.1: allowed only by the development setting.
const DEV_TARGETS: &str = "[notify]\nallow_private_targets = true";

both_engines!(delivers_signed_in_order_without_loss, |mut h: Harness| {
    h.append_config(DEV_TARGETS);
    h.restart();
    let c = h.cast();
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut rx = Receiver::start(0, got.clone());
    let port = rx.port;
    let w = c
        .admin
        .add_webhook(&AddWebhook {
            url: format!("http://127.0.0.1:{port}/hook?team=ops"),
            secret: Some(SECRET.into()),
        })
        .expect("add webhook");
    assert!(w.has_secret);
    let listed = c.admin.webhooks().unwrap();
    assert_eq!(listed, std::slice::from_ref(&w));
    let listed_json = serde_json::to_string(&listed).unwrap();
    assert!(!listed_json.contains(SECRET), "{listed_json}");
    let added = events(&c.admin, "notify.added");
    assert_eq!(added.len(), 1);
    assert!(!added[0].data.to_string().contains(SECRET));
    let start = added[0].seq;

    // A pending request: approvers must act.
    let r = pending(&c.alice, "short");
    wait_for("request.created delivered", 10, || {
        has(&rx, "request.created", &r.id)
    });
    let hook = rx.hooks().into_iter().next().unwrap();
    assert_eq!(hook.path, "/hook?team=ops");
    assert_eq!(hook.headers["x-brevet-event"], "request.created");
    assert_eq!(hook.headers["x-brevet-seq"], hook.seq().to_string());
    assert_eq!(hook.headers["x-brevet-signature"], signature(&hook.body));
    assert_eq!(hook.headers["content-type"], "application/json");
    let body = hook.json();
    for key in ["seq", "kind", "at", "actor", "subject", "data", "text"] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("alice") && text.contains("approvers must act"),
        "{text}"
    );

    c.bob.approve(&r.id, None).expect("approve");
    wait_for("request.approved delivered", 10, || {
        has(&rx, "request.approved", &r.id)
    });

    // The receiver goes away; events happen meanwhile, and the server restarts.
    rx.stop();
    let r2 = pending(&c.alice, "short");
    c.bob
        .deny(&r2.id, "not during the freeze", None)
        .expect("deny");
    let r3 = pending(&c.alice, "short");
    std::thread::sleep(Duration::from_millis(800));
    h.restart();
    let r4 = pending(&c.alice, "short");
    std::thread::sleep(Duration::from_millis(500));
    let rx = Receiver::start(port, got.clone());
    wait_for("missed events delivered", 60, || {
        has(&rx, "request.created", &r4.id)
    });
    assert!(has(&rx, "request.created", &r2.id));
    assert!(has(&rx, "request.denied", &r2.id));
    assert!(has(&rx, "request.created", &r3.id));

    // Nothing lost: every notable event since the webhook was added arrived, in order.
    let expected: Vec<u64> = c
        .admin
        .audit(start, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| match e.kind.as_str() {
            "request.created" => e.data["decision"]["outcome"] == "pending",
            "request.approved" | "request.denied" => true,
            _ => false,
        })
        .map(|e| e.seq)
        .collect();
    let hooks = rx.hooks();
    for hook in &hooks {
        assert_eq!(hook.headers["x-brevet-signature"], signature(&hook.body));
    }
    let arrived: Vec<u64> = hooks.iter().map(Hook::seq).collect();
    let mut firsts: Vec<u64> = Vec::new();
    for s in &arrived {
        if !firsts.contains(s) {
            firsts.push(*s);
        }
    }
    assert_eq!(firsts, expected, "arrivals: {arrived:?}");
    for pair in arrived.windows(2) {
        // A repeat (at-least-once) may only resend the latest events, never go back further.
        assert!(
            pair[1] >= pair[0] || firsts.iter().rev().take(8).any(|s| *s == pair[1]),
            "out of order: {arrived:?}"
        );
    }

    // Counted on /metrics (the server restarted during the outage, so this run's count).
    let metrics = c.admin.get_text("/metrics").unwrap();
    let delivered: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("brevet_webhook_deliveries_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("brevet_webhook_deliveries_total");
    assert!(delivered >= 1, "{metrics}");

    // Removed: audited, and nothing more is delivered.
    let removed = c.admin.remove_webhook(&w.id).expect("remove");
    assert_eq!(removed.id, w.id);
    assert!(c.admin.webhooks().unwrap().is_empty());
    assert_eq!(events(&c.admin, "notify.removed").len(), 1);
    assert_eq!(api_code(c.admin.remove_webhook(&w.id)), "not_found");
    std::thread::sleep(Duration::from_millis(1500));
    let before = rx.hooks().len();
    let r5 = pending(&c.alice, "short");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.hooks().len(), before, "delivered after removal");
    assert!(!has(&rx, "request.created", &r5.id));
});

both_engines!(only_admins_and_only_safe_urls, |mut h: Harness| {
    let c = h.cast();
    let ok = AddWebhook {
        url: "https://hooks.example.com/brevet".into(),
        secret: None,
    };
    assert_eq!(api_code(c.alice.add_webhook(&ok)), "forbidden");
    assert_eq!(api_code(c.bob.add_webhook(&ok)), "forbidden");
    assert_eq!(api_code(c.bob.webhooks()), "forbidden");

    let long = format!("https://example.com/{}", "a".repeat(5000));
    for url in [
        "javascript:alert(document.cookie)",
        "https://user:pw@x.example.com/",
        "http://example.com/hook",
        "http://127.0.0.1:8500/v1/agent/self",
        "https://127.0.0.1:8500/v1/agent/self",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://10.0.0.1/",
        "https://192.168.0.10/",
        "https://100.64.0.1/",
        "https://[fd12:3456::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://0.0.0.0/",
        "https://2130706433/",
        "https://example.com/\r\nX-Injected: 1",
        "file:///etc/passwd",
        long.as_str(),
    ] {
        let bad = AddWebhook {
            url: url.into(),
            secret: None,
        };
        let err = c.admin.add_webhook(&bad).expect_err(url);
        assert_eq!(err.api_code(), Some("invalid_input"), "{url}: {err}");
        let msg = err.to_string();
        assert!(!msg.contains('\n') && msg.len() < 400, "{msg}");
        assert!(!msg.contains("pw@"), "the password is repeated: {msg}");
    }
    let short_secret = AddWebhook {
        url: "https://hooks.example.com/brevet".into(),
        secret: Some("short".into()),
    };
    let err = c
        .admin
        .add_webhook(&short_secret)
        .expect_err("short secret");
    assert_eq!(err.api_code(), Some("invalid_input"));
    assert!(!err.to_string().contains("`short`"), "{err}");
    assert!(c.admin.webhooks().unwrap().is_empty(), "nothing stored");
    assert!(events(&c.admin, "notify.added").is_empty());

    let w = c.admin.add_webhook(&ok).expect("https webhook");
    assert!(!w.has_secret);
    assert_eq!(api_code(c.alice.remove_webhook(&w.id)), "forbidden");
    assert_eq!(c.admin.webhooks().unwrap().len(), 1);
});

both_engines!(
    names_are_checked_on_their_addresses_at_delivery,
    |mut h: Harness| {
        // `localhost` passes the check at add time (it is a name) and resolves to 127.0.0.1 at
        // delivery: nothing may reach the listener, and the delivery counts as blocked.
        let c = h.cast();
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let w = c
            .admin
            .add_webhook(&AddWebhook {
                url: format!("https://localhost:{port}/hook"),
                secret: None,
            })
            .expect("a host name is accepted when added");
        pending(&c.alice, "short");
        let mut connected = None;
        wait_for("a delivery attempt", 30, || {
            match listener.accept() {
                Ok((_, from)) => connected = Some(from),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            connected.is_some() || metric(&c.admin, "brevet_webhook_blocked_total") >= 1
        });
        assert_eq!(connected, None, "the webhook connected to 127.0.0.1");
        assert_eq!(metric(&c.admin, "brevet_webhook_deliveries_total"), 0);
        c.admin.remove_webhook(&w.id).expect("remove");
    }
);

both_engines!(
    development_setting_allows_local_targets,
    |mut h: Harness| {
        h.append_config(DEV_TARGETS);
        h.restart();
        let c = h.cast();
        for url in [
            "http://127.0.0.1:9/hook",
            "https://[::1]:9/",
            "http://localhost:9/",
        ] {
            let w = c
                .admin
                .add_webhook(&AddWebhook {
                    url: url.into(),
                    secret: None,
                })
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            // Removed at once: nothing is ever sent to a private address from a test.
            c.admin.remove_webhook(&w.id).expect("remove");
        }
    }
);

/// A counter from `/metrics` (0 when absent).
fn metric(admin: &brevet_cli::client::Client, name: &str) -> u64 {
    let text = admin.get_text("/metrics").expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
