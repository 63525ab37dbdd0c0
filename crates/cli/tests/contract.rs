//! The command-line contract of DESIGN §9, black-box: the real `brevetd` and `brevet` binaries,
//! real HTTPS, the JSON keys scripts rely on, and one-line errors with a non-zero exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    init: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = brevet_testkit::free_port();
    let brevetd = brevet_testkit::workspace_bin("brevetd");
    let out = Command::new(&brevetd)
        .args([
            "init",
            "--json",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
    for key in ["admin_password", "totp_uri", "ca_file", "server_url"] {
        assert!(init[key].is_string(), "init --json lacks `{key}`: {init}");
    }
    let child = Command::new(&brevetd)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .env("BREVET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, dir, init }
}

/// `brevet` as one person: each has their own config dir (saved session).
struct Person<'a> {
    server: &'a Server,
    home: PathBuf,
}

impl<'a> Person<'a> {
    fn new(server: &'a Server, name: &str) -> Person<'a> {
        let home = server.dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        Person { server, home }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_brevet"))
            .args(args)
            .env(
                "BREVET_SERVER",
                self.server.init["server_url"].as_str().unwrap(),
            )
            .env("BREVET_CA", self.server.init["ca_file"].as_str().unwrap())
            .env("BREVET_CONFIG_DIR", &self.home)
            .env_remove("BREVET_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed and print JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all, None);
        assert!(
            out.status.success(),
            "brevet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "brevet {args:?} --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs a command that must fail with a one-line message containing `needle`.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.run(args, None);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "brevet {args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        assert!(
            err.contains(needle),
            "brevet {args:?}: `{err}` lacks `{needle}`"
        );
        err
    }

    fn login(&self, user: &str, password: &str, totp_uri: &str) {
        let code = self.json(&["totp", "--uri", totp_uri])["code"]
            .as_str()
            .unwrap()
            .to_owned();
        // The server may still be starting.
        for attempt in 0.. {
            let out = self.run(
                &["login", "--user", user, "--password-stdin", "--totp", &code],
                Some(&format!("{password}\n")),
            );
            if out.status.success() {
                return;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                attempt < 50 && err.contains("cannot talk"),
                "login {user}: {err}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

fn keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing `{k}` in {v}");
    }
}

#[test]
fn the_whole_cycle_through_the_binaries() {
    let server = start();
    let init = server.init.clone();
    let admin = Person::new(&server, "admin");
    admin.login(
        "admin",
        init["admin_password"].as_str().unwrap(),
        init["totp_uri"].as_str().unwrap(),
    );
    assert_eq!(admin.json(&["whoami"])["user"], "admin");

    let alice_u = admin.json(&["user", "add", "alice", "--group", "operators"]);
    keys(&alice_u, &["name", "password", "totp_uri"]);
    let bob_u = admin.json(&["user", "add", "bob", "--group", "approvers"]);
    let eve_u = admin.json(&["user", "add", "eve"]);
    admin.fails(&["user", "add", "bob ALL=(ALL) NOPASSWD: ALL"], "user name");
    let dev = admin.json(&["device", "add", "web-01", "--tag", "env=prod"]);
    assert_eq!(dev["tags"]["env"], "prod");
    admin.fails(&["device", "add", "web;01"], "device name");
    let token = admin.json(&["device", "enroll-token", "web-01"]);
    keys(&token, &["device", "token", "expires_at"]);
    assert!(token["token"].as_str().unwrap().starts_with("bve_"));
    let plain = admin.run(&["device", "enroll-token", "web-01"], None);
    assert!(plain.status.success());
    let line = String::from_utf8(plain.stdout).unwrap();
    assert!(
        line.starts_with("bve_") && line.lines().count() == 1,
        "the token alone on stdout: {line:?}"
    );
    assert_eq!(
        admin.json(&["device", "disable", "web-01"])["enabled"],
        false
    );
    admin.fails(&["device", "enroll-token", "web-01"], "disabled");
    assert_eq!(admin.json(&["device", "enable", "web-01"])["enabled"], true);
    admin.fails(&["device", "disable", "db-99"], "no device `db-99`");

    let alice = Person::new(&server, "alice");
    alice.login(
        "alice",
        alice_u["password"].as_str().unwrap(),
        alice_u["totp_uri"].as_str().unwrap(),
    );
    let ask = |duration: &str, reason: &str| {
        vec![
            "request",
            "--device",
            "web-01",
            "--role",
            "pkg-update",
            "--duration",
            duration,
            "--ticket",
            "CHG-1",
            "--reason",
            reason,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let a = ask("30m", "patch openssl");
    let req = alice.json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    keys(&req, &["id", "state", "user", "device", "role", "grant_id"]);
    assert_eq!(req["state"], "pending");
    for (duration, reason, needle) in [
        ("0m", "patch openssl", "duration"),
        ("-5m", "patch openssl", "duration"),
        ("99999999h", "patch openssl", "duration"),
        ("30m", ".", "reason"),
    ] {
        let a = ask(duration, reason);
        alice.fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), needle);
    }

    let bob = Person::new(&server, "bob");
    bob.login(
        "bob",
        bob_u["password"].as_str().unwrap(),
        bob_u["totp_uri"].as_str().unwrap(),
    );
    let id = req["id"].as_str().unwrap();
    let pending = bob.json(&["requests", "--pending"]);
    assert!(pending.as_array().unwrap().iter().any(|r| r["id"] == id));
    alice.fails(&["approve", id], "own request");
    let approved = bob.json(&["approve", id]);
    assert_eq!(approved["state"], "approved");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let grants = alice.json(&["grants", "--active"]);
    let g = &grants.as_array().unwrap()[0];
    keys(
        g,
        &[
            "id",
            "request_id",
            "state",
            "user",
            "device",
            "role",
            "not_before",
            "not_after",
        ],
    );
    assert_eq!(g["id"], grant_id.as_str());
    assert_eq!(g["request_id"], id);

    // Eve is in no group: the policy denies her, and the CLI says so and exits non-zero.
    let eve = Person::new(&server, "eve");
    eve.login(
        "eve",
        eve_u["password"].as_str().unwrap(),
        eve_u["totp_uri"].as_str().unwrap(),
    );
    let a = ask("30m", "just looking around");
    eve.fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "denied");

    assert_eq!(alice.json(&["done", &grant_id])["state"], "completed");
    let story = admin.json(&["grants", "show", &grant_id]);
    let kinds: Vec<&str> = story["story"]
        .as_array()
        .expect("a story")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in [
        "request.created",
        "request.approval",
        "grant.issued",
        "grant.completed",
    ] {
        assert!(kinds.contains(&k), "`grants show` lacks {k}: {kinds:?}");
    }
    assert!(
        alice
            .json(&["grants", "--active"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    let export = admin.run(&["audit", "export"], None);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
    }
    assert!(lines.iter().any(|e| e["kind"] == "grant.completed"));

    let policy = Path::new(init["ca_file"].as_str().unwrap()).with_file_name("policy.cedar");
    assert_eq!(alice.json(&["findings"]), serde_json::json!([]));
    let none = alice.run(&["findings", "--device", "web-01"], None);
    assert_eq!(String::from_utf8(none.stdout).unwrap(), "no findings\n");

    let checked = admin.json(&["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(checked["ok"], true);

    // Break-glass: refused by policy for alice, granted at once to a member of `breakglass`.
    alice.fails(
        &["breakglass", "--device", "web-01", "--reason", "prod down"],
        "break-glass on `web-01` refused",
    );
    let erin_u = admin.json(&["user", "add", "erin", "--group", "breakglass"]);
    let erin = Person::new(&server, "erin");
    erin.login(
        "erin",
        erin_u["password"].as_str().unwrap(),
        erin_u["totp_uri"].as_str().unwrap(),
    );
    let bg = erin.json(&["breakglass", "--device", "web-01", "--reason", "prod down"]);
    keys(&bg, &["id", "state", "user", "device", "role", "grant_id"]);
    assert_eq!(
        (bg["state"].as_str(), bg["role"].as_str()),
        (Some("approved"), Some("admin"))
    );
    let g = erin.json(&["grants", "--active"]);
    assert_eq!(g[0]["id"], bg["grant_id"]);

    // Webhooks: admin only, hostile URLs refused in one line.
    admin.fails(
        &["notify", "add", "--webhook", "javascript:alert(1)"],
        "webhook",
    );
    alice.fails(
        &["notify", "add", "--webhook", "https://hooks.example.com/x"],
        "admins",
    );
    let hook = admin.json(&[
        "notify",
        "add",
        "--webhook",
        "https://hooks.example.com/brevet",
    ]);
    keys(&hook, &["id", "url", "has_secret"]);

    // The report counts what happened.
    let report = admin.json(&["report"]);
    assert!(
        report["grants"]["by_kind"]["breakglass"].as_u64() >= Some(1),
        "{report}"
    );
}
