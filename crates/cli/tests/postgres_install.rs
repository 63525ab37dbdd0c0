//! A PostgreSQL installation from the README alone, black-box with the release-shaped binaries:
//! `brevetd init --db postgres://…` creates the schema and the administrator there, `serve`
//! finds the URL in `brevet.toml`, and two replicas started from the same data directory and
//! database serve one fleet (a real `brevet-agent` enrolled through one, grants approved and
//! revoked through the other).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use brevet_testkit::Postgres;
use common::{Person, Server};
use serde_json::Value;

fn cluster(test: &str) -> Option<Postgres> {
    match Postgres::start() {
        Ok(Some(pg)) => Some(pg),
        Ok(None) => {
            brevet_testkit::skip(
                test,
                "no PostgreSQL server binaries (initdb, pg_ctl) on this machine",
            );
            None
        }
        Err(e) => panic!("PostgreSQL failed to start: {e}"),
    }
}

/// `brevetd init` that must fail; returns its one-line message.
fn init_fails(data: &Path, extra: &[&str]) -> String {
    let out = Command::new(brevet_testkit::workspace_bin("brevetd"))
        .args(["init", "--json", "--listen", "127.0.0.1:8443"])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(!out.status.success(), "init succeeded with {extra:?}");
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[test]
fn init_writes_the_installation_into_postgres() {
    let Some(pg) = cluster("init_writes_the_installation_into_postgres") else {
        return;
    };
    let url = pg.fresh_database("fresh_install").unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // The same JSON as an installation on the embedded default.
    let lite = common::init(&tmp.path().join("lite"), 8443, &[]);
    let data = tmp.path().join("data");
    let init = common::init(&data, 8443, &["--db", &url]);
    let names = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(names(&init), names(&lite));

    let toml = std::fs::read_to_string(data.join("brevet.toml")).unwrap();
    assert!(toml.contains(&format!("db = \"{url}\"")), "{toml}");
    assert!(!data.join("brevet.db").exists(), "no SQLite file beside it");

    // A second installation into the same database is refused, and leaves nothing behind.
    let again = tmp.path().join("again");
    let err = init_fails(&again, &["--db", &url]);
    assert!(err.contains("already holds a Brevet installation"), "{err}");
    assert!(!again.exists(), "the refused init left {}", again.display());

    // An unreachable database, or an engine Brevet does not run on: a clear error, nothing made.
    let port = brevet_testkit::free_port();
    let nowhere = format!("postgres://brevet:hunter2@127.0.0.1:{port}/brevet");
    let err = init_fails(&again, &["--db", &nowhere]);
    assert!(err.contains("cannot use the database"), "{err}");
    assert!(!err.contains("hunter2"), "the password is not shown: {err}");
    assert!(!again.exists());
    let err = init_fails(&again, &["--db", "mysql://root:hunter2@db/brevet"]);
    assert!(
        err.contains("invalid database URL") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!again.exists());
    // A data directory made beforehand (as the README's `install -d` does) is kept, empty.
    std::fs::create_dir(&again).unwrap();
    let err = init_fails(&again, &["--db", &url]);
    assert!(err.contains("already holds a Brevet installation"), "{err}");
    assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
}

#[test]
fn two_replicas_from_one_fresh_install_serve_one_fleet() {
    let Some(pg) = cluster("two_replicas_from_one_fresh_install_serve_one_fleet") else {
        return;
    };
    let url = pg.fresh_database("replicas").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port_a = brevet_testkit::free_port();
    let port_b = brevet_testkit::free_port();
    // The URL comes from the environment here, as a unit file would give it.
    let init = common::init_with_env(&data, port_a, &[], &[("BREVET_DB", &url)]);
    let a = Server {
        child: common::serve(&data, &[]),
        dir,
        init,
    };
    let _b = Replica(common::serve(
        &data,
        &["--listen", &format!("127.0.0.1:{port_b}")],
    ));
    let url_b = format!("https://localhost:{port_b}");

    let admin = Person::new(&a, "brevet-admin");
    admin.login(
        "brevet-admin",
        a.init["admin_password"].as_str().unwrap(),
        a.init["totp_uri"].as_str().unwrap(),
    );
    // One session, valid on both: the sessions are in the shared database.
    let admin_b = admin.at(&url_b);
    wait_until("replica B answers", || {
        admin_b.run(&["whoami", "--json"], None).status.success()
    });
    let alice_u = admin.json(&["user", "add", "alice", "--group", "operators"]);
    let bob_u = admin_b.json(&["user", "add", "bob", "--group", "approvers"]);
    admin.json(&["device", "add", "web-01"]);
    let token = admin_b.json(&["device", "enroll-token", "web-01"])["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let agent = Agent::enroll(&a.init, &url_b, &token);

    let alice = Person::on(&a, "alice", &url_b);
    alice.login(
        "alice",
        alice_u["password"].as_str().unwrap(),
        alice_u["totp_uri"].as_str().unwrap(),
    );
    let req = alice.json(&[
        "request",
        "--device",
        "web-01",
        "--role",
        "pkg-update",
        "--duration",
        "30m",
        "--reason",
        "patch openssl",
    ]);
    let bob = Person::new(&a, "bob");
    bob.login(
        "bob",
        bob_u["password"].as_str().unwrap(),
        bob_u["totp_uri"].as_str().unwrap(),
    );
    // Approved on A; the agent long-polls B.
    let approved = bob.json(&["approve", req["id"].as_str().unwrap()]);
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let drop_in = agent.drop_in(&grant);
    wait_until("the grant is in force on the device", || drop_in.exists());
    let grants = alice.json(&["grants", "--active"]);
    assert_eq!(grants[0]["id"], grant.as_str(), "{grants}");

    // Revoked on B; gone from the device.
    admin_b.json(&["revoke", &grant, "--reason", "done early"]);
    wait_until("the revoked grant leaves the device", || !drop_in.exists());
    assert_eq!(alice.json(&["grants", "--active"]), serde_json::json!([]));
}

struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real `brevet-agent` enforcing in a sandbox root.
struct Agent {
    child: Child,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self._dir.path().join("agent.log"));
            eprintln!("--- agent log ---\n{}", log.unwrap_or_default());
        }
    }
}

impl Agent {
    fn enroll(init: &Value, server: &str, token: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let etc = root.join("etc");
        std::fs::create_dir_all(etc.join("sudoers.d")).unwrap();
        std::fs::create_dir_all(root.join("run/sudo/ts")).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\nsudo:x:27:\nalice:x:1000:\n").unwrap();
        std::fs::write(etc.join("login.defs"), "UID_MIN 1000\nUID_MAX 60000\n").unwrap();
        std::fs::write(
            etc.join("sudoers"),
            "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        )
        .unwrap();
        let state = dir.path().join("state");
        let bin = brevet_testkit::workspace_bin("brevet-agent");
        let out = Command::new(&bin)
            .args(["enroll", "--server", server, "--ca"])
            .arg(init["ca_file"].as_str().unwrap())
            .args(["--token", token, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let child = Command::new(&bin)
            .args(["run", "--reconcile-interval", "1", "--state-dir"])
            .arg(&state)
            .arg("--root")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent {
            child,
            root,
            _dir: dir,
        }
    }

    fn drop_in(&self, grant: &str) -> PathBuf {
        self.root
            .join("etc/sudoers.d")
            .join(format!("brevet_{}", grant.replace('-', "")))
    }
}

/// Waits for `done`, with a generous 30 s fail-safe.
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    brevet_testkit::wait_for(what, Duration::from_secs(30), done);
}
