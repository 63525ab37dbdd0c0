//! The README's first command, black-box: `brevetd quickstart` serves a demo with people, a
//! device and a sandboxed agent; the printed credentials drive the whole cycle through `brevet`,
//! and the grant appears as a drop-in in the sandbox and goes away with `done`.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn brevet(
    dir: &Path,
    who: &str,
    demo: &Value,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let home = dir.join(format!("home-{who}"));
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_brevet"))
        .args(args)
        .env(
            "BREVET_SERVER",
            demo["init"]["server_url"].as_str().unwrap(),
        )
        .env("BREVET_CA", demo["init"]["ca_file"].as_str().unwrap())
        .env("BREVET_CONFIG_DIR", &home)
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
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "brevet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn login(dir: &Path, demo: &Value, who: &str) {
    let user = demo["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == who)
        .unwrap();
    let code = brevet(
        dir,
        who,
        demo,
        &["totp", "--uri", user["totp_uri"].as_str().unwrap()],
        None,
    );
    let code = String::from_utf8(code.stdout).unwrap();
    let pw = format!("{}\n", user["password"].as_str().unwrap());
    brevet(
        dir,
        who,
        demo,
        &[
            "login",
            "--user",
            who,
            "--password-stdin",
            "--totp",
            code.trim(),
        ],
        Some(&pw),
    );
}

fn json(out: std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn quickstart_runs_the_whole_cycle() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let port = brevet_testkit::free_port();
    let mut child = Command::new(brevet_testkit::workspace_bin("brevetd"))
        .args([
            "quickstart",
            "--json",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("BREVET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Kill(child);
    let demo: Value = serde_json::Deserializer::from_reader(stdout)
        .into_iter::<Value>()
        .next()
        .expect("quickstart prints the demo as JSON")
        .unwrap();
    assert_eq!(demo["users"].as_array().unwrap().len(), 3);

    login(tmp.path(), &demo, "alice");
    let req = json(brevet(
        tmp.path(),
        "alice",
        &demo,
        &[
            "request",
            "--json",
            "--device",
            "demo-01",
            "--role",
            "pkg-update",
            "--duration",
            "30m",
            "--ticket",
            "CHG-1",
            "--reason",
            "patch openssl",
        ],
        None,
    ));
    login(tmp.path(), &demo, "bob");
    let approved = json(brevet(
        tmp.path(),
        "bob",
        &demo,
        &["approve", "--json", req["id"].as_str().unwrap()],
        None,
    ));
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let drop_in = data
        .join("sandbox/etc/sudoers.d")
        .join(format!("brevet_{}", grant.replace('-', "")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !drop_in.exists() {
        assert!(
            Instant::now() < deadline,
            "the sandboxed agent did not apply the grant"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::read_to_string(&drop_in)
            .unwrap()
            .contains("alice ALL=(root)")
    );
    brevet(tmp.path(), "alice", &demo, &["done", &grant], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while drop_in.exists() {
        assert!(
            Instant::now() < deadline,
            "the sandboxed agent did not remove the grant"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
