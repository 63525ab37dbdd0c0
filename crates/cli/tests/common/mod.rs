//! The black-box harness of the CLI tests: the real `brevetd` (`init`, then `serve` on a free
//! port) and the real `brevet`, one config dir per person.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub init: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `brevetd init` then `brevetd serve` on a free port, in a temporary directory.
pub fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init(&data, brevet_testkit::free_port(), &[]);
    let child = serve(&data, &[]);
    Server { child, dir, init }
}

/// `brevetd init --json` into `data` for a server on 127.0.0.1:`port`, with `extra` arguments;
/// checks the JSON keys every installation prints.
pub fn init(data: &Path, port: u16, extra: &[&str]) -> Value {
    init_with_env(data, port, extra, &[])
}

/// [`init`] with environment variables set for `brevetd`.
pub fn init_with_env(data: &Path, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(brevet_testkit::workspace_bin("brevetd"))
        .args(["init", "--json", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data)
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
    init
}

/// `brevetd serve --data-dir data` with `extra` arguments, quiet.
pub fn serve(data: &Path, extra: &[&str]) -> Child {
    Command::new(brevet_testkit::workspace_bin("brevetd"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("BREVET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `brevet` as one person: each has their own config dir (saved session).
pub struct Person<'a> {
    server: &'a Server,
    home: PathBuf,
    url: String,
    /// Send the token saved in `home` (from a login at another replica) explicitly.
    borrowed_session: bool,
}

impl<'a> Person<'a> {
    pub fn new(server: &'a Server, name: &str) -> Person<'a> {
        let home = server.dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let url = server.init["server_url"].as_str().unwrap().to_owned();
        Person::on(server, name, &url)
    }

    /// A person talking to the server at `url` (another replica of `server`).
    pub fn on(server: &'a Server, name: &str, url: &str) -> Person<'a> {
        let home = server.dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        Person {
            server,
            home,
            url: url.to_owned(),
            borrowed_session: false,
        }
    }

    /// The same person, with the session they logged in to, talking to another replica at
    /// `url`. The CLI sends a saved token only to the server that issued it, so the token is
    /// passed explicitly (`BREVET_TOKEN`), as a script would.
    pub fn at(&self, url: &str) -> Person<'a> {
        Person {
            server: self.server,
            home: self.home.clone(),
            url: url.to_owned(),
            borrowed_session: true,
        }
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_brevet"))
            .args(args)
            .env("BREVET_SERVER", &self.url)
            .env("BREVET_CA", self.server.init["ca_file"].as_str().unwrap())
            .env("BREVET_CONFIG_DIR", &self.home)
            .env("BREVET_TOKEN", self.saved_token())
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

    /// The token of the saved session, when this person borrows it; else empty (none).
    fn saved_token(&self) -> String {
        if !self.borrowed_session {
            return String::new();
        }
        let text = std::fs::read_to_string(self.home.join("session.json")).unwrap();
        let session: Value = serde_json::from_str(&text).unwrap();
        session["token"].as_str().unwrap().to_owned()
    }

    /// Runs a command that must succeed; returns what it printed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "brevet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must succeed and print JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("brevet {args:?} --json: {e}: {text}"))
    }

    /// Runs a command that must fail with a one-line message containing `needle`.
    pub fn fails(&self, args: &[&str], needle: &str) -> String {
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

    pub fn login(&self, user: &str, password: &str, totp_uri: &str) {
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

/// Asserts that `v` has each of `keys`.
pub fn keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing `{k}` in {v}");
    }
}
