//! Argument parsing, local validation and connection resolution, all without a network.

use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;
use crate::Env;
use crate::cli::{AuditFormat, Cli, Command, GrantCommand};
use crate::session::Session;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("brevet").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn env(dir: &Path) -> Env {
    Env {
        config_dir: Some(dir.to_owned()),
        now: 1_795_860_000, // 2026-11-28T10:00:00Z
        stdin_is_terminal: false,
    }
}

/// Runs a command line with an empty config directory and no server; returns output and result.
fn run_local(args: &[&str], stdin: &str) -> (Result<(), Error>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let mut input = stdin.as_bytes();
    let r = crate::run(parse(args), &env(tmp.path()), &mut input, &mut out);
    (r, String::from_utf8(out).unwrap())
}

fn err(args: &[&str]) -> String {
    match run_local(args, "") {
        (Err(e), _) => e.to_string(),
        (Ok(()), out) => panic!("{args:?} succeeded: {out}"),
    }
}

const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

fn request(device: &str, duration: &str, reason: &str) -> Vec<String> {
    [
        "request",
        "--device",
        device,
        "--role",
        "pkg-update",
        "--duration",
        duration,
        "--ticket",
        "CHG-1234",
        "--reason",
        reason,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn parses_the_design_contract() {
    let cli = parse(&strs(&request("web-01", "30m", "patch openssl")));
    let Command::Request(r) = cli.command else {
        panic!("not a request")
    };
    assert_eq!(
        (r.device.as_str(), r.role.as_str(), r.duration.as_str()),
        ("web-01", "pkg-update", "30m")
    );
    assert_eq!(r.ticket.as_deref(), Some("CHG-1234"));

    let cli = parse(&["grants", "--active", "--device", "web-01", "--json"]);
    assert!(cli.global.json);
    assert!(matches!(
        cli.command,
        Command::Grants { active: true, device: Some(ref d), show: None } if d == "web-01"
    ));
    let id = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
    let cli = parse(&["grants", "show", id]);
    assert!(matches!(
        cli.command,
        Command::Grants { show: Some(crate::cli::GrantCommand::Show { ref id }), .. } if id == "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d"
    ));

    // Global options go before or after the subcommand.
    let cli = parse(&[
        "--server",
        "https://b:1",
        "requests",
        "--pending",
        "--ca",
        "ca.pem",
    ]);
    assert_eq!(cli.global.server.as_deref(), Some("https://b:1"));
    assert_eq!(cli.global.ca, Some(PathBuf::from("ca.pem")));
    assert!(matches!(cli.command, Command::Requests { pending: true }));

    let cli = parse(&["grant", "show", ID]);
    assert!(matches!(cli.command, Command::Grant(GrantCommand::Show { ref id }) if id == ID));
    let cli = parse(&["audit", "export"]);
    assert!(matches!(
        cli.command,
        Command::Audit(crate::cli::AuditCommand::Export {
            format: AuditFormat::Jsonl,
            since: None,
        })
    ));
    for args in [
        &[
            "login",
            "--user",
            "alice",
            "--password-stdin",
            "--totp",
            "123456",
        ][..],
        &["logout"],
        &["whoami"],
        &[
            "user",
            "add",
            "carol",
            "--group",
            "operators",
            "--group",
            "approvers",
        ],
        &["user", "list"],
        &["user", "disable", "carol"],
        &["user", "enable", "carol"],
        &["group", "add", "carol", "operators"],
        &["group", "remove", "carol", "operators"],
        &[
            "device", "add", "web-01", "--tag", "env=prod", "--group", "web", "--os", "linux",
        ],
        &["device", "list"],
        &["device", "enroll-token", "web-01"],
        &["device", "disable", "web-01"],
        &["device", "enable", "web-01"],
        &["findings"],
        &["findings", "--device", "web-01", "--json"],
        &["approve", ID, "--totp", "123456"],
        &["deny", ID, "--reason", "not during the freeze"],
        &["cancel", ID],
        &["revoke", ID, "--reason", "task finished"],
        &["done", ID],
        &["audit", "export", "--format", "ocsf"],
        &["audit", "export", "--since", "2026-11-28T10:00:00Z"],
        &[
            "audit",
            "checkpoint",
            "--out",
            "cp.json",
            "--extends",
            "old.json",
        ],
        &["audit", "checkpoint", "--key", "audit.pub"],
        &[
            "audit",
            "verify",
            "x.jsonl",
            "--key",
            "audit.pub",
            "--checkpoint",
            "cp.json",
        ],
        &[
            "audit", "search", "--user", "alice", "--device", "web-01", "--ticket", "CHG-1",
        ],
        &[
            "audit",
            "search",
            "--grant",
            ID,
            "--kind",
            "grant.used",
            "--since",
            "2026-11-28T10:00:00Z",
        ],
        &["policy", "check", "policy.cedar"],
    ] {
        parse(args);
    }
}

#[test]
fn required_arguments_are_required() {
    for args in [
        &[
            "request",
            "--device",
            "web-01",
            "--role",
            "admin",
            "--duration",
            "30m",
        ][..],
        &["deny", ID],
        &["revoke", ID],
        &["login"],
        &["audit", "export", "--format", "csv"],
        &["audit", "verify", "x.jsonl"],
    ] {
        let all = std::iter::once(&"brevet").chain(args);
        assert!(Cli::try_parse_from(all).is_err(), "{args:?}");
    }
}

#[test]
fn bad_request_input_is_refused_before_any_connection() {
    // No server is configured: reaching the network would fail with "no server given".
    for (device, duration, reason, named) in [
        ("web-01", "0m", "patch openssl", "invalid duration `0m`"),
        ("web-01", "-5m", "patch openssl", "invalid duration `-5m`"),
        (
            "web-01",
            "99999999h",
            "patch openssl",
            "invalid duration `99999999h`",
        ),
        ("web-01", "30", "patch openssl", "invalid duration `30`"),
        ("web-01", "30m", ".", "invalid reason `.`"),
        (
            "web;rm",
            "30m",
            "patch openssl",
            "invalid device name `web;rm`",
        ),
    ] {
        let e = err(&strs(&request(device, duration, reason)));
        assert!(e.starts_with(named), "{device} {duration} {reason}: {e}");
    }
    let mut args = request("web-01", "30m", "patch openssl");
    args.extend(["--start".to_owned(), "tomorrow".to_owned()]);
    assert!(err(&strs(&args)).starts_with("invalid start `tomorrow`"));
    let mut args = request("web-01", "30m", "patch openssl");
    args[4] = "Admin;".into();
    assert!(err(&strs(&args)).starts_with("invalid role `Admin;`"));
    let mut args = request("web-01", "30m", "patch openssl");
    args[8] = "CHG 1".into();
    assert!(err(&strs(&args)).starts_with("invalid ticket `CHG 1`"));
}

#[test]
fn a_valid_request_is_normalized() {
    let cli = parse(&strs(&request("WEB-01", "1h30m", "  patch openssl  ")));
    let Command::Request(mut args) = cli.command else {
        panic!("not a request")
    };
    args.start = Some("2026-11-28T11:00:00+01:00".into());
    let body = requests::build(&args).unwrap();
    assert_eq!(body.device, "web-01");
    assert_eq!(body.reason, "patch openssl");
    assert_eq!(body.start.as_deref(), Some("2026-11-28T10:00:00Z"));
    // With a valid request and no server, the error is about the missing server.
    assert!(err(&strs(&request("web-01", "30m", "patch openssl"))).starts_with("no server given"));
}

#[test]
fn other_bad_inputs_are_refused_locally() {
    for (args, named) in [
        (&["approve", "123"][..], "invalid request id `123`"),
        (
            &["approve", ID, "--totp", "12ab56"],
            "invalid TOTP code `12ab56`",
        ),
        (&["deny", ID, "--reason", "."], "invalid reason `.`"),
        (&["cancel", "../x"], "invalid request id `../x`"),
        (&["grant", "show", "x"], "invalid grant id `x`"),
        (&["revoke", ID, "--reason", "-"], "invalid reason `-`"),
        (&["done", "nope"], "invalid grant id `nope`"),
        (&["grants", "--device", "a b"], "invalid device name `a b`"),
        (&["user", "add", "Root"], "invalid user name `Root`"),
        (
            &["user", "add", "carol", "--group", "a;b"],
            "invalid group name `a;b`",
        ),
        (&["user", "disable", "x y"], "invalid user name `x y`"),
        (
            &["group", "add", "carol", "../admins"],
            "invalid group name `../admins`",
        ),
        (&["device", "add", "web;rm"], "invalid device name `web;rm`"),
        (
            &["device", "enroll-token", "web;rm"],
            "invalid device name `web;rm`",
        ),
        (&["device", "disable", "a b"], "invalid device name `a b`"),
        (&["device", "enable", "../x"], "invalid device name `../x`"),
        (
            &["findings", "--device", "a/b"],
            "invalid device name `a/b`",
        ),
        (
            &["device", "add", "web-01", "--tag", "env"],
            "invalid tag `env`",
        ),
        (
            &["device", "add", "web-01", "--tag", "a=1", "--tag", "a=2"],
            "invalid tag `a=2`",
        ),
        (&["login", "--user", "alice"], "`--totp` is required"),
        (
            &["login", "--user", "alice", "--totp", "1"],
            "invalid TOTP code `1`",
        ),
        (
            &["login", "--user", "Alice!", "--totp", "123456"],
            "invalid user name `Alice!`",
        ),
        (
            &["audit", "export", "--since", "yesterday"],
            "invalid since `yesterday`",
        ),
        (
            &["audit", "search", "--user", "Alice!"],
            "invalid user name `Alice!`",
        ),
        (
            &["audit", "search", "--grant", "g1"],
            "invalid grant id `g1`",
        ),
        (
            &["audit", "verify", "x.jsonl", "--key", "nope"],
            "invalid audit public key `nope`",
        ),
    ] {
        let e = err(args);
        assert!(e.starts_with(named), "{args:?}: {e}");
    }
}

#[test]
fn commands_without_a_server_say_how_to_get_one() {
    let e = err(&["requests"]);
    assert!(e.contains("--server") && e.contains("BREVET_SERVER"), "{e}");
    let e = err(&["requests", "--server", "https://b:1"]);
    assert!(
        e.starts_with("no CA certificate given for `https://b:1`"),
        "{e}"
    );
    let e = err(&["requests", "--server", "http://b:1"]);
    assert!(e.starts_with("invalid server URL `http://b:1`"), "{e}");
    let e = err(&[
        "requests",
        "--server",
        "https://b:1",
        "--ca",
        "/nonexistent/ca.pem",
    ]);
    assert!(e.starts_with("not logged in to `https://b:1`"), "{e}");
    let e = err(&[
        "requests",
        "--server",
        "https://b:1",
        "--ca",
        "/nonexistent/ca.pem",
        "--token",
        "t",
    ]);
    assert!(
        e.starts_with("cannot read the CA file `/nonexistent/ca.pem`"),
        "{e}"
    );
}

#[test]
fn policy_check_runs_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.cedar");
    std::fs::write(&file, brevet_policy::DEFAULT_POLICY).unwrap();
    let path = file.to_str().unwrap();
    let n = brevet_policy::check(brevet_policy::DEFAULT_POLICY).unwrap();
    let (r, out) = run_local(&["policy", "check", path], "");
    r.unwrap();
    assert_eq!(out, format!("ok: {n} policies\n"));
    let (r, out) = run_local(&["policy", "check", path, "--json"], "");
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"ok": true, "policies": n}));
}

#[test]
fn logout_without_a_session_is_harmless() {
    let (r, out) = run_local(&["logout"], "");
    r.unwrap();
    assert_eq!(out, "not logged in\n");
}

fn session(server: &str, expires_at: &str) -> Session {
    Session {
        server: server.into(),
        ca: "/etc/brevet/ca.pem".into(),
        token: "brv_session".into(),
        user: "alice".into(),
        expires_at: expires_at.into(),
    }
}

#[test]
fn connection_comes_from_flags_then_the_session() {
    let now = 1_795_860_000;
    let s = session("https://b:1", "2026-11-28T18:00:00Z");
    let none = Global::default();
    let c = resolve(&none, Some(&s), now, true).unwrap();
    assert_eq!(c.server, "https://b:1");
    assert_eq!(c.ca, PathBuf::from("/etc/brevet/ca.pem"));
    assert_eq!(c.token.as_deref(), Some("brv_session"));

    // The same server, spelled with a trailing slash, still uses the session.
    let g = Global {
        server: Some("https://b:1/".into()),
        token: Some("brv_flag".into()),
        ..Global::default()
    };
    let c = resolve(&g, Some(&s), now, true).unwrap();
    assert_eq!(
        (c.ca.to_str(), c.token.as_deref()),
        (Some("/etc/brevet/ca.pem"), Some("brv_flag"))
    );

    // Another server never gets the session's token or CA.
    let g = Global {
        server: Some("https://other:1".into()),
        ca: Some("/tmp/other.pem".into()),
        ..Global::default()
    };
    let e = resolve(&g, Some(&s), now, true).unwrap_err().to_string();
    assert!(e.starts_with("not logged in to `https://other:1`"), "{e}");
    assert_eq!(resolve(&g, Some(&s), now, false).unwrap().token, None);
    let g = Global {
        server: Some("https://other:1".into()),
        ..Global::default()
    };
    assert!(matches!(
        resolve(&g, Some(&s), now, false),
        Err(Error::NoCa { .. })
    ));

    // An expired session says so, and is not used.
    let old = session("https://b:1", "2026-11-28T09:00:00Z");
    let e = resolve(&none, Some(&old), now, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the session for `https://b:1` expired at 2026-11-28T09:00:00Z"),
        "{e}"
    );
    assert_eq!(resolve(&none, Some(&old), now, false).unwrap().token, None);

    assert!(matches!(
        resolve(&none, None, now, true),
        Err(Error::NoServer)
    ));
}

#[test]
fn a_saved_session_is_found_through_the_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    crate::session::save(
        tmp.path(),
        &session("https://127.0.0.1:9", "2026-11-28T18:00:00Z"),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut input: &[u8] = b"";
    let e = crate::run(parse(&["whoami"]), &env(tmp.path()), &mut input, &mut out)
        .unwrap_err()
        .to_string();
    // The session was used: the CA path it names is what fails.
    assert!(
        e.starts_with("cannot read the CA file `/etc/brevet/ca.pem`"),
        "{e}"
    );
}

#[test]
fn empty_settings_count_as_unset() {
    let e = err(&["requests", "--server", "", "--ca", "", "--token", ""]);
    assert!(e.starts_with("no server given"), "{e}");
}
