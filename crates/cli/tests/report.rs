//! `brevet report` black-box: the real `brevetd` and `brevet` binaries over real HTTPS. A request
//! is made and approved; the JSON report counts them, the text report prints, and `--html`
//! writes a page naming the grant.

use std::io::Write;
use std::path::PathBuf;
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
        .args(["init", "--json", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
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

/// `brevet` as one person, with their own config dir (saved session).
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

    /// Runs a command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "brevet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must succeed and print JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("brevet {args:?} --json: {e}: {text}"))
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

#[test]
fn a_report_counts_an_approved_request_and_writes_html() {
    let server = start();
    let init = server.init.clone();
    let admin = Person::new(&server, "admin");
    admin.login(
        "admin",
        init["admin_password"].as_str().unwrap(),
        init["totp_uri"].as_str().unwrap(),
    );
    let alice_u = admin.json(&["user", "add", "alice", "--group", "operators"]);
    let bob_u = admin.json(&["user", "add", "bob", "--group", "approvers"]);
    admin.json(&["device", "add", "web-01"]);

    let alice = Person::new(&server, "alice");
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
        "--ticket",
        "CHG-7",
        "--reason",
        "patch openssl",
    ]);
    let bob = Person::new(&server, "bob");
    bob.login(
        "bob",
        bob_u["password"].as_str().unwrap(),
        bob_u["totp_uri"].as_str().unwrap(),
    );
    let approved = bob.json(&["approve", req["id"].as_str().unwrap()]);
    assert_eq!(approved["state"], "approved");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let r = admin.json(&["report"]);
    assert_eq!(r["requests"]["total"], 1, "{r}");
    assert_eq!(r["requests"]["by_state"]["approved"], 1, "{r}");
    assert_eq!(r["requests"]["by_state"]["pending"], 0, "{r}");
    assert_eq!(r["requests"]["time_to_decision"]["decided"], 1, "{r}");
    assert!(r["requests"]["time_to_decision"]["median_seconds"].is_i64());
    assert_eq!(r["grants"]["total"], 1, "{r}");
    assert_eq!(r["grants"]["items"][0]["id"], grant_id.as_str(), "{r}");
    assert_eq!(r["grants"]["by_kind"]["normal"], 1, "{r}");
    assert_eq!(r["grants"]["by_kind"]["breakglass"], 0, "{r}");
    let live = r["grants"]["by_state"]["issued"].as_u64().unwrap()
        + r["grants"]["by_state"]["active"].as_u64().unwrap();
    assert_eq!(live, 1, "{r}");
    assert_eq!(r["top_users"][0]["name"], "alice", "{r}");
    assert_eq!(r["top_users"][0]["grants"], 1, "{r}");
    assert_eq!(r["top_devices"][0]["name"], "web-01", "{r}");
    assert_eq!(r["unconfirmed_removals"], serde_json::json!([]));
    assert_eq!(r["breakglass"], serde_json::json!([]));
    assert_eq!(r["findings"]["devices_reporting"], 0, "{r}");
    assert!(r["since"].is_string() && r["until"].is_string(), "{r}");

    // A grant still in force belongs to every period up to now.
    let later = admin.json(&["report", "--since", r["until"].as_str().unwrap()]);
    assert_eq!(later["grants"]["total"], 1, "{later}");

    let text = admin.ok(&["report"]);
    assert!(text.starts_with("compliance report "), "{text}");
    assert!(text.contains("requests: 1"), "{text}");

    let html = server.dir.path().join("report.html");
    let printed = admin.ok(&["report", "--html", html.to_str().unwrap()]);
    assert_eq!(printed.trim_end(), html.to_str().unwrap());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(&grant_id), "{page}");

    // A bad time is one line naming it, and nothing is written.
    let out = admin.run(&["report", "--since", "last week"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("since"), "{err}");
}
