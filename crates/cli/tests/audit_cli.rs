//! The audit commands black-box: the real `brevetd` and `brevet` binaries. A witness saves a
//! checkpoint, the log grows, an export verifies offline against the witness's checkpoint and
//! the data dir's `audit.pub`, and an edited export fails with exit 1 naming the event.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn brevet(home: &Path, init: &Value, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brevet"))
        .args(args)
        .env("BREVET_SERVER", init["server_url"].as_str().unwrap())
        .env("BREVET_CA", init["ca_file"].as_str().unwrap())
        .env("BREVET_CONFIG_DIR", home)
        .env_remove("BREVET_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Retries `f` for up to 10 s (the server may be starting, the checkpoint may be a tick away).
fn eventually(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_witness_checkpoint_and_an_offline_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let brevetd = brevet_testkit::workspace_bin("brevetd");
    let port = brevet_testkit::free_port();
    let out = Command::new(&brevetd)
        .args(["init", "--json", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = data.join("audit.pub");
    let public = std::fs::read_to_string(&key).unwrap();
    assert_eq!(init["audit_public_key"].as_str(), Some(public.trim()));
    let _server = Server(
        Command::new(&brevetd)
            .args(["serve", "--data-dir"])
            .arg(&data)
            .env("BREVET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let uri = init["totp_uri"].as_str().unwrap();
    let code: Value =
        serde_json::from_str(&ok(brevet(&home, &init, &["totp", "--uri", uri, "--json"]))).unwrap();
    let password = init["admin_password"].as_str().unwrap();
    eventually("login", || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_brevet"))
            .args(["login", "--user", "brevet-admin", "--password-stdin"])
            .args(["--totp", code["code"].as_str().unwrap()])
            .env("BREVET_SERVER", init["server_url"].as_str().unwrap())
            .env("BREVET_CA", init["ca_file"].as_str().unwrap())
            .env("BREVET_CONFIG_DIR", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        drop(stdin);
        child.wait().unwrap().success().then(String::new)
    });

    // The witness's copy.
    let cp = tmp.path().join("cp.json");
    let cp_arg = cp.to_str().unwrap();
    let saved = eventually("a checkpoint", || {
        let out = brevet(&home, &init, &["audit", "checkpoint", "--out", cp_arg]);
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    });
    assert!(saved.starts_with("checkpoint of "), "{saved}");
    let old: Value = serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();

    // The log grows; the export extends the witness's checkpoint.
    for name in ["alice", "bob", "carol"] {
        ok(brevet(&home, &init, &["user", "add", name, "--json"]));
    }
    let export = ok(brevet(&home, &init, &["audit", "export"]));
    let n = export.lines().count();
    assert!(n as u64 > old["size"].as_u64().unwrap());
    let file = tmp.path().join("export.jsonl");
    std::fs::write(&file, &export).unwrap();
    let verify = |file: &Path| {
        brevet(
            &home,
            &init,
            &[
                "audit",
                "verify",
                file.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--checkpoint",
                cp_arg,
            ],
        )
    };
    assert_eq!(
        ok(verify(&file)),
        format!(
            "ok: {n} events, chain verified, extends checkpoint of size {}\n",
            old["size"]
        )
    );

    // One edited event: exit 1, one line naming it.
    let edited = export.replacen("\"kind\":\"user.created\"", "\"kind\":\"user.deleted\"", 1);
    let first_user = export
        .lines()
        .find(|l| l.contains("\"kind\":\"user.created\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].clone())
        .unwrap();
    std::fs::write(&file, edited).unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("brevet: FAILED at seq {first_user}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    // OCSF: one object per line, with its class.
    let ocsf = ok(brevet(
        &home,
        &init,
        &["audit", "export", "--format", "ocsf"],
    ));
    assert_eq!(ocsf.lines().count(), n);
    for line in ocsf.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["class_uid"].is_u64(), "{v}");
    }
}
