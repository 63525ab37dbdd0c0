//! The edge under abuse, against the real `brevetd` binary in its own process with a low
//! open-file limit (`ulimit -n 1024`, as a service without `LimitNOFILE` gets): 2,000 half-open
//! connections from 127.0.0.2 (half stuck in the TLS handshake, half with half an HTTP header)
//! must not keep an administrator's revoke or a device's long-poll from going through, and the
//! server must close every one of them within its timeouts. Before the edge was bounded, such a
//! flood made `accept` fail with `EMFILE` and the half-open connections were held forever.
//!
//! Needs `cargo build --workspace --bins` first (the test runs `target/debug/brevetd`).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;
#[path = "support/raw_tls.rs"]
mod raw_tls;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brevet_cli::client::Client;
use brevet_identity::totp;
use brevet_proto::api::AddDevice;
use common::device::TestDevice;
use common::{api_code, ask};
use tokio::io::AsyncWriteExt;

const FLOOD: usize = 2000;
/// The timeouts the test server runs with (the defaults are 10 s, 10 s and 60 s).
const HANDSHAKE_TIMEOUT: u64 = 3;
const HEADER_TIMEOUT: u64 = 3;
const IDLE_TIMEOUT: u64 = 5;
/// How long an operation may take before the test fails: generous, so a loaded machine does
/// not fail it; the figures printed are what to look at (the goal is under 1 s).
const SLOW: Duration = Duration::from_secs(10);

/// A `brevetd serve` child process on a fresh data directory.
struct Brevetd {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
    addr: SocketAddr,
    ca_pem: String,
    log: Arc<Mutex<Vec<String>>>,
    admin: (String, Vec<u8>),
}

impl Drop for Brevetd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Brevetd {
    /// Initialises a data dir, sets `server` keys (`key = value` lines replacing those `init`
    /// wrote), and serves it under `ulimit` (a shell `ulimit` argument such as `-n 1024`).
    fn start(settings: &[(&str, &str)], ulimit: &str) -> Brevetd {
        let bin = brevet_testkit::workspace_bin("brevetd");
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let out = Command::new(&bin)
            .args(["init", "--json", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .output()
            .expect("brevetd init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init json");
        let config_path = data.join("brevet.toml");
        let mut config = std::fs::read_to_string(&config_path).expect("config");
        for (key, value) in settings {
            let line = config
                .lines()
                .find(|l| l.starts_with(&format!("{key} =")))
                .unwrap_or_else(|| panic!("`{key}` not in brevet.toml"))
                .to_owned();
            config = config.replace(&line, &format!("{key} = {value}"));
        }
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
            .arg(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("BREVET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("brevetd serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("brevetd: serving ") {
                    let _ = tx.send(url.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("brevetd did not start: {:?}", log.lock().unwrap()));
        let port: u16 = url.rsplit(':').next().unwrap().parse().expect("port");
        let ca_pem = std::fs::read_to_string(data.join("ca.pem")).expect("ca");
        let uri = init["totp_uri"].as_str().expect("totp_uri");
        Brevetd {
            child,
            _dir: dir,
            url,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ca_pem,
            log,
            admin: (
                init["admin_password"].as_str().unwrap().to_owned(),
                secret_of(uri),
            ),
        }
    }

    /// A client on a connection of its own (a new connection pool).
    fn fresh(&self, token: &str) -> Client {
        Client::new(&self.url, &self.ca_pem, Some(token.to_owned())).expect("client")
    }

    fn login(&self, user: &str, password: &str, secret: &[u8]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let anon = Client::new(&self.url, &self.ca_pem, None).expect("client");
        anon.login(user, password, &totp::code_at(secret, now))
            .unwrap_or_else(|e| panic!("login {user}: {e}"))
            .token
    }

    fn metric(&self, admin: &str, name: &str) -> u64 {
        let text = self.fresh(admin).get_text("/metrics").expect("metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn secret_of(uri: &str) -> Vec<u8> {
    let b32 = uri
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret in uri");
    totp::secret_from_base32(b32).expect("base32")
}

/// What happened to one flood connection.
struct Held {
    /// When the server closed it (EOF or reset), if it did within the test's deadline.
    closed: Option<Instant>,
}

/// Opens `FLOOD` half-open connections from 127.0.0.2: even ones send the first bytes of a TLS
/// ClientHello and stop; odd ones complete the handshake and send half an HTTP header. Returns
/// once every connection is set up (or was refused), with the tasks that wait for the server to
/// close them.
fn flood(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    ca_pem: &str,
    deadline: Duration,
) -> Vec<tokio::task::JoinHandle<Held>> {
    let config = raw_tls::client_config(ca_pem);
    let source: IpAddr = "127.0.0.2".parse().unwrap();
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..FLOOD)
        .map(|i| {
            let (config, ready) = (config.clone(), ready.clone());
            rt.spawn(async move {
                let closed = if i % 2 == 0 {
                    half_tls(source, server, &ready, deadline).await
                } else {
                    half_header(&config, source, server, &ready, deadline).await
                };
                Held { closed }
            })
        })
        .collect();
    let took = brevet_testkit::wait_for("the flood set up", Duration::from_secs(120), || {
        ready.load(Ordering::SeqCst) >= FLOOD
    });
    println!("flood: {FLOOD} connections from {source} set up in {took:?}");
    tasks
}

/// TCP, then 11 bytes of a 512-byte ClientHello record.
async fn half_tls(
    source: IpAddr,
    server: SocketAddr,
    ready: &AtomicUsize,
    deadline: Duration,
) -> Option<Instant> {
    let mut tcp = match raw_tls::connect_from(source, server).await {
        Ok(t) => t,
        Err(_) => {
            ready.fetch_add(1, Ordering::SeqCst);
            return Some(Instant::now());
        }
    };
    let partial = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let _ = tcp.write_all(&partial).await;
    ready.fetch_add(1, Ordering::SeqCst);
    raw_tls::closed_by_peer(&mut tcp, deadline)
        .await
        .then(Instant::now)
}

/// TLS, then half a request head.
async fn half_header(
    config: &Arc<rustls::ClientConfig>,
    source: IpAddr,
    server: SocketAddr,
    ready: &AtomicUsize,
    deadline: Duration,
) -> Option<Instant> {
    let handshake = tokio::time::timeout(
        Duration::from_secs(10),
        raw_tls::tls_from(config, source, server),
    )
    .await;
    let mut tls = match handshake {
        Ok(Ok(t)) => t,
        // Refused at once (the address has its fill) or no handshake in time.
        Ok(Err(_)) => {
            ready.fetch_add(1, Ordering::SeqCst);
            return Some(Instant::now());
        }
        Err(_) => {
            ready.fetch_add(1, Ordering::SeqCst);
            return None;
        }
    };
    let _ = tls
        .write_all(b"GET /v1/info HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await;
    let _ = tls.flush().await;
    ready.fetch_add(1, Ordering::SeqCst);
    raw_tls::closed_by_peer(&mut tls, deadline)
        .await
        .then(Instant::now)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    let took = start.elapsed();
    println!("{what}: {took:?}");
    (v, took)
}

/// The scenario: set up people, a device and a grant; flood; revoke and deliver through it; see
/// every flood connection closed.
fn flood_scenario(extra: &[(&str, &str)]) {
    let mut settings = vec![
        ("tls_handshake_timeout", format!("\"{HANDSHAKE_TIMEOUT}s\"")),
        ("header_read_timeout", format!("\"{HEADER_TIMEOUT}s\"")),
        ("idle_timeout", format!("\"{IDLE_TIMEOUT}s\"")),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let srv = Brevetd::start(&settings, "-n 1024");
    let admin = srv.login("brevet-admin", &srv.admin.0.clone(), &srv.admin.1.clone());
    let admin_client = srv.fresh(&admin);
    let mut people = Vec::new();
    for (name, group) in [("alice", "operators"), ("bob", "approvers")] {
        let created = admin_client
            .add_user(name, &[group.to_owned()])
            .expect("add user");
        let token = srv.login(name, &created.password, &secret_of(&created.totp_uri));
        people.push(token);
    }
    let (alice, bob) = (people[0].clone(), people[1].clone());
    admin_client
        .add_device(&AddDevice {
            name: "web-01".into(),
            tags: Default::default(),
            groups: vec![],
            os: None,
        })
        .expect("device");
    let token = admin_client.enroll_token("web-01").expect("token");
    let mut device = TestDevice::new(&srv.url, &srv.ca_pem);
    device.enroll(&token.token).expect("enroll");
    let r = srv
        .fresh(&alice)
        .create_request(&ask("pkg-update", "30m"))
        .expect("request");
    let approved = srv.fresh(&bob).approve(&r.id, None).expect("approve");
    let grant = approved.grant_id.expect("grant");
    let first = device.poll(None, 0).expect("poll");
    assert!(first.grants.iter().any(|g| g.id == grant));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let close_deadline = Duration::from_secs(HEADER_TIMEOUT.max(HANDSHAKE_TIMEOUT) + 60);
    let tasks = flood(&rt, srv.addr, &srv.ca_pem, close_deadline);

    // While they are held: a device long-poll on a new connection, then an administrator's
    // revoke on another; the poll must wake with the revocation.
    let cursor = first.cursor.clone();
    let poller = device.with_cert(device.key.clone(), device.cert_pem.clone().unwrap());
    let poll = std::thread::spawn(move || {
        let start = Instant::now();
        let answer = poller.poll(Some(&cursor), 30);
        (answer, start.elapsed(), Instant::now())
    });
    let took = brevet_testkit::wait_for("the device's long-poll to get through", SLOW, || {
        srv.metric(&admin, "brevet_device_polls_waiting") >= 1
    });
    println!("device long-poll waiting after {took:?}");
    let (revoked, revoke_took) = timed("admin revoke (new connection)", || {
        srv.fresh(&admin)
            .revoke(&grant, "edge test: revoke under a flood")
    });
    let revoked_at = Instant::now();
    assert_eq!(revoked.expect("revoke").state.as_str(), "revoked");
    let (answer, _, answered_at) = poll.join().expect("poll thread");
    let answer = answer.expect("long-poll answer");
    assert!(
        !answer
            .grants
            .iter()
            .any(|g| g.id == grant && g.state.as_str() != "revoked"),
        "the device still holds the revoked grant: {:?}",
        answer
            .grants
            .iter()
            .map(|g| (&g.id, g.state))
            .collect::<Vec<_>>()
    );
    let delivered = answered_at.saturating_duration_since(revoked_at);
    println!("revocation delivered to the waiting device {delivered:?} after the revoke returned");
    let (fresh_poll, poll_took) = timed("device poll (new connection)", || {
        device
            .with_cert(device.key.clone(), device.cert_pem.clone().unwrap())
            .poll(None, 0)
    });
    fresh_poll.expect("fresh device poll");
    let measured = Instant::now();
    assert!(revoke_took < SLOW, "revoke took {revoke_took:?}");
    assert!(poll_took < SLOW, "device poll took {poll_took:?}");
    assert!(delivered < SLOW, "delivery took {delivered:?}");

    // Every flood connection is closed by the server within its timeouts.
    let results: Vec<Held> = rt.block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("flood task"));
        }
        out
    });
    let open = results.iter().filter(|h| h.closed.is_none()).count();
    let held_during = results
        .iter()
        .filter(|h| h.closed.is_some_and(|c| c > measured))
        .count();
    let last = results
        .iter()
        .filter_map(|h| h.closed)
        .max()
        .map(|c| c.saturating_duration_since(measured));
    println!(
        "flood: {held_during} connections still held when the measurements ended; the last \
         closed {last:?} after them; {open} never closed"
    );
    assert_eq!(
        open, 0,
        "{open} half-open connections were never closed by the server"
    );
    let fd_errors = srv.metric(&admin, "brevet_accept_fd_errors_total");
    assert_eq!(fd_errors, 0, "accept ran out of file descriptors");
    let metrics = srv.fresh(&admin).get_text("/metrics").unwrap();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("brevet_connections"))
    {
        println!("{line}");
    }
    // Nothing else broke: a person still logs in and is answered.
    assert_eq!(
        api_code(Client::new(&srv.url, &srv.ca_pem, None).unwrap().whoami()),
        "unauthenticated"
    );
}

/// The default per-address cap (128) holds the flood to a few connections; the rest are closed
/// at once.
#[test]
fn half_open_flood_from_one_address() {
    flood_scenario(&[]);
}

/// With no per-address cap to speak of, the handshake and anonymous budgets hold: the oldest
/// idle connections make room, and devices have their own share.
#[test]
fn half_open_flood_beyond_the_anonymous_budget() {
    flood_scenario(&[("max_connections_per_address", "100000")]);
}

/// brevetd raises its soft open-file limit to the hard limit at start.
#[test]
fn raises_its_open_file_limit() {
    let srv = Brevetd::start(&[], "-S -n 512");
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", srv.child.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    println!("{line}");
    assert_ne!(soft, "512", "the soft limit was not raised: {line}");
    assert!(
        soft == hard || soft == "1048576",
        "soft {soft} is not the hard limit {hard}"
    );
    assert!(
        srv.log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("cannot raise"))
    );
}
