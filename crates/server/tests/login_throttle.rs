//! Login throttling beyond one account (`throttle.rs`), bounded password hashing, and the
//! offline recovery commands, over real HTTPS from several loopback source addresses.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;
#[path = "support/raw_tls.rs"]
mod raw_tls;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;

use brevet_identity::totp;
use common::*;

/// Raw HTTPS logins from one loopback address.
struct Source {
    ip: IpAddr,
    server: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Source {
    fn new(h: &Harness, ip: &str) -> Source {
        Source {
            ip: ip.parse().unwrap(),
            server: h.server.as_ref().unwrap().addr,
            config: raw_tls::client_config(&h.ca_pem),
        }
    }

    fn login(&self, h: &Harness, user: &str, password: &str, code: &str) -> u16 {
        let body = serde_json::json!({ "user": user, "password": password, "totp": code });
        let (status, _) =
            h.rt.block_on(raw_tls::request_from(
                &self.config,
                self.ip,
                self.server,
                "POST",
                "/v1/login",
                &body.to_string(),
            ))
            .expect("login request");
        status
    }
}

/// A number from `/metrics` (0 when absent).
fn metric(admin: &brevet_cli::client::Client, name: &str) -> i64 {
    let text = admin.get_text("/metrics").expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Moves the clock to one second into the next 5-minute window, so a test's burst stays in one.
fn next_window(h: &Harness) {
    let now = h.now();
    h.advance(300 - now.rem_euclid(300) + 1);
}

both_engines!(a_source_spraying_names_is_slowed_alone, |mut h: Harness| {
    let c = h.cast();
    // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
    h.clock.freeze();
    let sprayer = Source::new(&h, "127.0.0.5");
    for i in 0..31 {
        assert_eq!(
            sprayer.login(&h, &format!("guess{i}"), "x", "000000"),
            401,
            "{i}"
        );
    }
    // Thirty free failures per source; after the thirty-first every name waits, even new ones.
    assert_eq!(sprayer.login(&h, "guess99", "x", "000000"), 429);
    assert_eq!(
        sprayer.login(&h, "alice", &h.password("alice"), "000000"),
        429
    );
    // Another source is not slowed.
    let other = Source::new(&h, "127.0.0.6");
    assert_eq!(other.login(&h, "guess99", "x", "000000"), 401);
    assert!(metric(&c.admin, "brevet_logins_throttled_total") >= 2);
});

both_engines!(
    throttling_many_accounts_raises_one_storm_alert_per_window,
    |mut h: Harness| {
        let c = h.cast();
        // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
        h.clock.freeze();
        // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
        h.clock.freeze();
        h.add_user(&c.admin, "dave", &["operators"]);
        let accounts = ["brevet-admin", "alice", "bob", "carol", "dave"];
        // One attacker address per account.
        let attackers: Vec<Source> = (40..45)
            .map(|i| Source::new(&h, &format!("127.0.0.{i}")))
            .collect();
        next_window(&h);
        for (name, attacker) in accounts.iter().zip(&attackers) {
            for _ in 0..6 {
                assert_eq!(attacker.login(&h, name, "wrong", "000000"), 401);
            }
            if *name != "dave" {
                assert!(events(&c.admin, "alert.login_storm").is_empty());
            }
        }
        let storms = events(&c.admin, "alert.login_storm");
        assert_eq!(storms.len(), 1, "{storms:?}");
        assert_eq!(storms[0].data["accounts"], 5);
        assert_eq!(storms[0].data["sources"], 5);
        assert_eq!(storms[0].actor, "brevetd");
        // More throttling in the same window raises nothing new.
        h.advance(2);
        assert_eq!(attackers[1].login(&h, "alice", "wrong", "000000"), 401);
        assert_eq!(events(&c.admin, "alert.login_storm").len(), 1);
        // The next window with throttling again gets its own alert.
        next_window(&h);
        for (name, attacker) in accounts.iter().zip(&attackers) {
            assert_eq!(attacker.login(&h, name, "wrong", "000000"), 401);
        }
        assert_eq!(events(&c.admin, "alert.login_storm").len(), 2);
    }
);

both_engines!(
    unknown_names_are_summarised_not_audited_one_by_one,
    |mut h: Harness| {
        let c = h.cast();
        // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
        h.clock.freeze();
        // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
        h.clock.freeze();
        let ghost = Source::new(&h, "127.0.0.8");
        next_window(&h);
        let before = c.admin.audit(0, 100_000).unwrap().len();
        for i in 0..25 {
            assert_eq!(ghost.login(&h, &format!("ghost{i}"), "x", "000000"), 401);
        }
        let after = c.admin.audit(0, 100_000).unwrap().len();
        assert_eq!(
            after, before,
            "failed logins for unknown names wrote audit events"
        );
        // When the window is over, one summary with the counts per source.
        h.advance(300);
        assert_eq!(
            Source::new(&h, "127.0.0.9").login(&h, "ghost-next", "x", "000000"),
            401
        );
        let summaries = events(&c.admin, "login.failed_unknown");
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        let d = &summaries[0].data;
        assert_eq!(d["failures"], 25);
        assert_eq!(d["sources"][0]["source"], "127.0.0.8");
        assert_eq!(d["sources"][0]["failures"], 25);
        assert_eq!(c.admin.audit(0, 100_000).unwrap().len(), before + 1);
        assert!(
            events(&c.admin, "login.failed")
                .iter()
                .all(|e| !e.subject.starts_with("ghost"))
        );
    }
);

#[test]
fn password_hashing_is_bounded() {
    let Some(mut h) = Harness::start(Db::Sqlite, "password_hashing_is_bounded") else {
        return;
    };
    let c = h.cast();
    // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
    h.clock.freeze();
    let sources: Vec<Source> = (10..26)
        .map(|i| Source::new(&h, &format!("127.0.0.{i}")))
        .collect();
    // 32 logins at once, from 16 addresses (each within its free failures), each hashing.
    let statuses = h.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for s in &sources {
            for _ in 0..2 {
                let (config, ip, server) = (s.config.clone(), s.ip, s.server);
                let body =
                    serde_json::json!({ "user": "alice", "password": "wrong", "totp": "000000" });
                set.spawn(async move {
                    raw_tls::request_from(
                        &config,
                        ip,
                        server,
                        "POST",
                        "/v1/login",
                        &body.to_string(),
                    )
                    .await
                    .map(|r| r.0)
                });
            }
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap().expect("login"));
        }
        out
    });
    assert_eq!(statuses.len(), 32);
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let threads = metric(&c.admin, "brevet_password_hash_threads");
    let peak = metric(&c.admin, "brevet_password_hashes_peak");
    let cores = std::thread::available_parallelism().unwrap().get() as i64;
    println!("password hashing: peak {peak} at once, {threads} threads, {cores} cores");
    assert_eq!(threads, cores);
    assert!(peak >= 1 && peak <= threads, "peak {peak} > {threads}");
    // The pool is one per process: under `cargo test` other tests in this binary hash at the
    // same time, so the gauge is waited on (it must come back to 0: no check leaks a slot).
    wait_for("no password check running", 30, || {
        metric(&c.admin, "brevet_password_hashes_running") == 0
    });
    drop(h.login("alice"));
}

/// Runs `brevetd ARGS` on the harness's data dir (and PostgreSQL database).
fn brevetd(h: &Harness, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(brevet_testkit::workspace_bin("brevetd"));
    cmd.args(args).arg("--data-dir").arg(&h.data().root);
    if let Some(db) = h.db_url() {
        cmd.arg("--db").arg(db);
    }
    cmd.env_remove("BREVET_DB").output().expect("brevetd")
}

both_engines!(offline_unlock_and_reset, |mut h: Harness| {
    let c = h.cast();
    // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
    h.clock.freeze();
    // An attacker keeps failing until alice's key at its address waits 512 s.
    let attacker = Source::new(&h, "127.0.0.2");
    for _ in 0..6 {
        assert_eq!(attacker.login(&h, "alice", "wrong", "000000"), 401);
    }
    for wait in [1, 2, 4, 8, 16, 32, 64, 128, 256] {
        h.advance(wait);
        assert_eq!(attacker.login(&h, "alice", "wrong", "000000"), 401);
    }
    let code = h.fresh_code("alice");
    assert_eq!(
        attacker.login(&h, "alice", &h.password("alice"), &code),
        429
    );

    // Unlock, with the server running: the next attempt goes through at once.
    let out = brevetd(&h, &["user", "unlock", "alice", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unlocked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unlocked["name"], "alice");
    assert!(unlocked["cleared"].as_u64().unwrap() >= 1);
    let code = h.fresh_code("alice");
    assert_eq!(
        attacker.login(&h, "alice", &h.password("alice"), &code),
        200
    );
    let ev = events(&c.admin, "user.unlocked");
    assert_eq!((ev.len(), ev[0].actor.as_str()), (1, "brevetd"));

    // Reset: new password and TOTP, old sessions ended, old password refused.
    let out = brevetd(&h, &["user", "reset", "bob", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reset: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(reset["sessions_revoked"].as_u64().unwrap() >= 1);
    assert_eq!(api_code(c.bob.whoami()), "unauthenticated");
    let old = h.password("bob");
    let code = h.fresh_code("bob");
    assert_eq!(
        api_code(h.anonymous().login("bob", &old, &code)),
        "unauthenticated"
    );
    let uri = reset["totp_uri"].as_str().unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let secret = totp::secret_from_base32(secret).unwrap();
    h.advance(30);
    let code = totp::code_at(&secret, h.now() as u64);
    let pw = reset["password"].as_str().unwrap();
    let bob = h
        .anonymous()
        .login("bob", pw, &code)
        .expect("new credentials work");
    assert_eq!(bob.user, "bob");
    let ev = events(&c.admin, "user.reset");
    assert_eq!(ev.len(), 1);
    assert!(
        !ev[0].data.to_string().contains(pw),
        "the password is audited"
    );

    // A name that is not an account: one clear line, non-zero exit, nothing written.
    let out = brevetd(&h, &["user", "unlock", "nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no user `nobody`") && err.lines().count() == 1,
        "{err}"
    );
    let out = brevetd(&h, &["user", "reset", "Bad Name"]);
    assert!(!out.status.success());
    assert_eq!(events(&c.admin, "user.reset").len(), 1);
});
