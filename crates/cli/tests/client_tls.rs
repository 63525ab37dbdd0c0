//! `brevet_cli::client::Client` against a tiny canned HTTPS server on 127.0.0.1.
//!
//! Checks what a real `brevetd` cannot easily be made to do: the exact requests the client
//! sends (method, path, query, bearer token, JSON body), how error bodies, bodiless errors and
//! redirects are surfaced, and that only the given CA is trusted.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::mpsc;
use std::thread;

use brevet_cli::Error;
use brevet_cli::client::Client;
use brevet_identity::ca::Ca;
use rustls::{ServerConnection, StreamOwned};

/// What the server saw of one request.
#[derive(Debug)]
struct Seen {
    request_line: String,
    authorization: Option<String>,
    body: String,
}

/// Serves `responses` (status line suffix, body) to successive connections, one each.
/// Returns the server URL, the CA PEM and a receiver of what was requested.
fn serve(responses: Vec<(&'static str, String)>) -> (String, String, mpsc::Receiver<Seen>) {
    let ca = Ca::generate("brevet test ca").unwrap();
    let issued = ca
        .issue_server(&[], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1)
        .unwrap();
    let config =
        brevet_identity::tls::server_config(&issued.cert_pem, &issued.key_pem, None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (status, body) in responses {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let conn = ServerConnection::new(config.clone()).unwrap();
            let mut tls = BufReader::new(StreamOwned::new(conn, tcp));
            let Some(seen) = read_request(&mut tls) else {
                continue; // the client gave up during the handshake
            };
            let _ = tx.send(seen);
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 location: https://elsewhere.example/\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let stream = tls.get_mut();
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (url, ca.cert_pem().to_owned(), rx)
}

fn read_request(r: &mut impl BufRead) -> Option<Seen> {
    let mut request_line = String::new();
    r.read_line(&mut request_line).ok()?;
    let mut authorization = None;
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        request_line: request_line.trim_end().to_owned(),
        authorization,
        body: String::from_utf8(body).ok()?,
    })
}

const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

#[test]
fn sends_the_token_and_decodes_the_answer() {
    let whoami = r#"{"user":"alice","groups":["operators"],"session_expires_at":"2026-11-28T18:00:00Z","mfa_at":null}"#;
    let (url, ca, seen) = serve(vec![("200 OK", whoami.to_owned())]);
    let client = Client::new(&url, &ca, Some("brv_tok".into())).unwrap();
    let me = client.whoami().unwrap();
    assert_eq!(me.user, "alice");
    assert_eq!(me.groups, ["operators"]);
    let s = seen.recv().unwrap();
    assert_eq!(s.request_line, "GET /v1/whoami HTTP/1.1");
    assert_eq!(s.authorization.as_deref(), Some("Bearer brv_tok"));
}

#[test]
fn builds_queries_and_bodies() {
    let (url, ca, seen) =
        serve(vec![
        ("200 OK", "[]".to_owned()),
        ("200 OK", "[]".to_owned()),
        ("200 OK", "[]".to_owned()),
        ("200 OK", "[]".to_owned()),
        (
            "200 OK",
            r#"{"name":"carol","groups":[],"enabled":true,"created_at":"2026-11-28T10:00:00Z"}"#
                .to_owned(),
        ),
        ("401 Unauthorized", r#"{"code":"unauthenticated","message":"bad token"}"#.to_owned()),
    ]);
    let client = Client::new(&url, &ca, Some("t".into())).unwrap();
    assert!(client.requests(true).unwrap().is_empty());
    assert!(client.grants(true, Some("web-01")).unwrap().is_empty());
    assert!(client.grants(false, None).unwrap().is_empty());
    assert!(client.audit(7, 50).unwrap().is_empty());
    client.remove_user_group("carol", "operators").unwrap();
    let _ = client.deny(ID, "not now please", Some("123456"));
    let lines: Vec<Seen> = seen.iter().take(6).collect();
    assert_eq!(
        lines[0].request_line,
        "GET /v1/requests?state=pending HTTP/1.1"
    );
    assert_eq!(
        lines[1].request_line,
        "GET /v1/grants?active=true&device=web-01 HTTP/1.1"
    );
    assert_eq!(lines[2].request_line, "GET /v1/grants HTTP/1.1");
    assert_eq!(
        lines[3].request_line,
        "GET /v1/audit?after=7&limit=50 HTTP/1.1"
    );
    assert_eq!(
        lines[4].request_line,
        "DELETE /v1/users/carol/groups/operators HTTP/1.1"
    );
    assert_eq!(
        lines[5].request_line,
        format!("POST /v1/requests/{ID}/deny HTTP/1.1")
    );
    let body: serde_json::Value = serde_json::from_str(&lines[5].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"reason": "not now please", "totp": "123456"})
    );
}

#[test]
fn error_bodies_become_api_errors() {
    let (url, ca, _seen) = serve(vec![
        (
            "403 Forbidden",
            r#"{"code":"separation_of_duties","message":"you cannot approve your own request `x`"}"#
                .to_owned(),
        ),
        ("502 Bad Gateway", "<html>oops</html>".to_owned()),
        ("302 Found", String::new()),
    ]);
    let client = Client::new(&url, &ca, Some("t".into())).unwrap();
    let e = client.approve(ID, None).unwrap_err();
    assert_eq!(e.api_code(), Some("separation_of_duties"));
    assert_eq!(e.to_string(), "you cannot approve your own request `x`");
    assert!(matches!(e, Error::Api { status: 403, .. }));

    let e = client.cancel(ID).unwrap_err();
    assert!(matches!(e, Error::Api { status: 502, .. }), "{e:?}");
    assert!(e.to_string().contains("HTTP 502"), "{e}");

    // A redirect is not followed: the token stays with this server.
    let e = client.done(ID).unwrap_err();
    assert!(matches!(e, Error::Api { status: 302, .. }), "{e:?}");
}

#[test]
fn only_the_given_ca_is_trusted() {
    let (url, _ca, _seen) = serve(vec![("200 OK", "{}".to_owned())]);
    let other = Ca::generate("some other ca").unwrap();
    let client = Client::new(&url, other.cert_pem(), None).unwrap();
    let e = client.info().unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("`{url}`")), "{msg}");
    assert!(msg.contains("BREVET_CA"), "{msg}");
    assert!(msg.contains("certificate"), "{msg}");
    assert!(
        !msg.contains("BREVET_SERVER"),
        "TLS failure, not an address problem: {msg}"
    );
}

#[test]
fn an_unreachable_server_is_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ca = Ca::generate("brevet test ca").unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let e = Client::new(&url, ca.cert_pem(), None)
        .unwrap()
        .info()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot talk to `{url}`")),
        "{e}"
    );
}

#[test]
fn an_invalid_ca_pem_is_refused() {
    for pem in ["", "not a certificate"] {
        let e = Client::new("https://127.0.0.1:1", pem, None).unwrap_err();
        assert!(matches!(e, Error::CaPem(_)), "{e:?}");
    }
}

/// Runs `brevet ARGS` in-process with `dir` as the configuration directory.
fn brevet(dir: &std::path::Path, args: &[&str], stdin: &str) -> (Result<(), Error>, String) {
    use clap::Parser;
    let cli =
        brevet_cli::Cli::try_parse_from(std::iter::once("brevet").chain(args.iter().copied()))
            .unwrap();
    let env = brevet_cli::Env {
        config_dir: Some(dir.to_owned()),
        now: 1_795_860_000,
        stdin_is_terminal: false,
    };
    let mut out = Vec::new();
    let r = brevet_cli::run(cli, &env, &mut stdin.as_bytes(), &mut out);
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn login_saves_a_session_that_later_commands_use() {
    let login = r#"{"token":"brv_new","user":"alice","expires_at":"2026-11-28T18:00:00Z"}"#;
    let whoami = r#"{"user":"alice","groups":[],"session_expires_at":"2026-11-28T18:00:00Z","mfa_at":"2026-11-28T10:00:00Z"}"#;
    let (url, ca, seen) = serve(vec![
        ("200 OK", login.to_owned()),
        ("200 OK", whoami.to_owned()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let config = tmp.path().join("config");
    let args = [
        "login",
        "--user",
        "alice",
        "--password-stdin",
        "--totp",
        "123456",
        "--server",
        &url,
        "--ca",
        ca_path.to_str().unwrap(),
    ];
    let (r, out) = brevet(&config, &args, "pw with spaces\nsecond line\n");
    r.unwrap();
    assert_eq!(
        out,
        format!("logged in to {url} as alice until 2026-11-28T18:00:00Z\n")
    );
    let s = seen.recv().unwrap();
    assert_eq!(s.request_line, "POST /v1/login HTTP/1.1");
    assert_eq!(s.authorization, None);
    let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"user": "alice", "password": "pw with spaces", "totp": "123456"})
    );
    let saved = brevet_cli::session::load(&config).unwrap().unwrap();
    assert_eq!(saved.token, "brv_new");
    assert_eq!(saved.server, url);
    assert!(saved.ca.is_absolute());

    let (r, out) = brevet(&config, &["whoami"], "");
    r.unwrap();
    assert!(out.starts_with("user    "), "{out}");
    assert_eq!(
        seen.recv().unwrap().authorization.as_deref(),
        Some("Bearer brv_new")
    );
}

#[test]
fn a_request_denied_by_policy_is_printed_then_fails() {
    let view = serde_json::json!({
        "id": ID, "state": "denied", "user": "alice", "device": "web-01", "role": "admin",
        "duration_seconds": 1800, "ticket": null, "reason": "patch openssl", "start": null,
        "created_at": "2026-11-28T10:00:00Z", "expires_at": "2026-11-29T10:00:00Z",
        "decided_at": "2026-11-28T10:00:00Z", "approvals_required": 1, "approvals": [],
        "decision": {"outcome": "deny", "policies": ["no-admin-on-prod"],
                     "explain": "denied: forbidden by policy no-admin-on-prod"},
        "grant_id": null
    });
    let (url, ca, _seen) = serve(vec![("201 Created", view.to_string())]);
    let tmp = tempfile::tempdir().unwrap();
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let args = [
        "request",
        "--device",
        "web-01",
        "--role",
        "admin",
        "--duration",
        "30m",
        "--reason",
        "patch openssl",
        "--server",
        &url,
        "--ca",
        ca_path.to_str().unwrap(),
        "--token",
        "t",
        "--json",
    ];
    let (r, out) = brevet(tmp.path(), &args, "");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed, view);
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("request {ID} denied: forbidden by policy no-admin-on-prod")
    );
}
