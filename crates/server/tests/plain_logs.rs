//! Logs written to a file or a pipe carry no ANSI colour codes: each binary runs with its
//! standard error piped (as under systemd, in CI or with `2> file`) and its output must hold no
//! ESC byte. Colour is for a terminal only.
//!
//! Needs `cargo build --workspace --bins` first (`brevet` and `brevet-agent` are other crates'
//! binaries).

use std::process::{Command, Output, Stdio};

const ESC: u8 = 0x1b;

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the binary")
}

fn assert_plain(what: &str, out: &Output) {
    for (stream, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        assert!(
            !bytes.contains(&ESC),
            "{what}: {stream} carries an ESC byte:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn brevetd_logs_to_a_pipe_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_brevetd"))
        .args(["init", "--json", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        // Debug logs every SQL statement: plenty of lines that would be coloured.
        .env("BREVET_LOG", "debug")
        .env_remove("NO_COLOR"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines().filter(|l| l.contains("DEBUG")).count() > 5,
        "expected debug lines on stderr: {log}"
    );
    assert_plain("brevetd init", &out);
}

#[test]
fn agent_and_cli_errors_to_a_pipe_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let agent = brevet_testkit::workspace_bin("brevet-agent");
    let out = run(Command::new(&agent)
        .args(["run", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--root")
        .arg(dir.path())
        .env_remove("NO_COLOR"));
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
    assert_plain("brevet-agent run", &out);

    let cli = brevet_testkit::workspace_bin("brevet");
    for args in [&["requests", "--bogus-flag"][..], &["--help"][..]] {
        let out = run(Command::new(&cli)
            .args(args)
            .env("HOME", dir.path())
            .env_remove("NO_COLOR"));
        assert!(!out.stderr.is_empty() || !out.stdout.is_empty());
        assert_plain(&format!("brevet {}", args.join(" ")), &out);
    }
}
