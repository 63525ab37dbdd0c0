//! Hostile input is refused with a clear error naming it, and changes nothing (DESIGN §10).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::api::{AddDevice, CreateRequest, RequestState};
use common::*;

fn counts(admin: &brevet_cli::client::Client) -> (usize, usize, usize) {
    let requests = admin.requests(false).unwrap().len();
    let audit = admin.audit(0, 10_000).unwrap().len();
    let users = admin.users().unwrap().len();
    (requests, audit, users)
}

both_engines!(
    hostile_input_is_refused_and_stores_nothing,
    |mut h: Harness| {
        let c = h.cast();
        let before = counts(&c.admin);

        let base = ask("pkg-update", "30m");
        let cases: Vec<(CreateRequest, &str)> = vec![
            (
                CreateRequest {
                    duration: "0m".into(),
                    ..base.clone()
                },
                "duration",
            ),
            (
                CreateRequest {
                    duration: "-5m".into(),
                    ..base.clone()
                },
                "duration",
            ),
            (
                CreateRequest {
                    duration: "99999999h".into(),
                    ..base.clone()
                },
                "duration",
            ),
            (
                CreateRequest {
                    duration: "30".into(),
                    ..base.clone()
                },
                "duration",
            ),
            (
                CreateRequest {
                    duration: "3h".into(),
                    ..base.clone()
                },
                "allows at most",
            ),
            (
                CreateRequest {
                    reason: ".".into(),
                    ..base.clone()
                },
                "reason",
            ),
            (
                CreateRequest {
                    reason: "ok\nALL ALL=(ALL) NOPASSWD: ALL".into(),
                    ..base.clone()
                },
                "reason",
            ),
            (
                CreateRequest {
                    device: "web-01;rm -rf /".into(),
                    ..base.clone()
                },
                "device name",
            ),
            (
                CreateRequest {
                    device: "ALL".into(),
                    ..base.clone()
                },
                "unknown device",
            ),
            (
                CreateRequest {
                    role: "ALL".into(),
                    ..base.clone()
                },
                "role",
            ),
            (
                CreateRequest {
                    role: "root-shell".into(),
                    ..base.clone()
                },
                "unknown role",
            ),
            (
                CreateRequest {
                    ticket: Some("CHG-1, ALL".into()),
                    ..base.clone()
                },
                "ticket",
            ),
            (
                CreateRequest {
                    role: "admin".into(),
                    ticket: None,
                    ..base.clone()
                },
                "requires a ticket",
            ),
            (
                CreateRequest {
                    start: Some("tomorrow".into()),
                    ..base.clone()
                },
                "start",
            ),
            (
                CreateRequest {
                    start: Some("2001-01-01T00:00:00Z".into()),
                    ..base.clone()
                },
                "in the past",
            ),
        ];
        for (body, needle) in cases {
            match c.alice.create_request(&body) {
                Ok(r) => panic!("accepted {body:?}: {r:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(needle),
                        "{body:?}: `{msg}` does not mention `{needle}`"
                    );
                    assert!(
                        matches!(e.api_code(), Some("invalid_input" | "not_found")),
                        "{msg}"
                    );
                    assert!(!msg.contains('\n'), "one line: {msg:?}");
                }
            }
        }
        for name in [
            "bob ALL=(ALL) NOPASSWD: ALL",
            "Root",
            "../etc",
            "x".repeat(40).as_str(),
            "",
        ] {
            assert_eq!(
                api_code(c.admin.add_user(name, &[])),
                "invalid_input",
                "{name:?}"
            );
        }
        assert_eq!(
            api_code(c.admin.add_user("zed", &["sudo ALL".into()])),
            "invalid_input"
        );
        for (name, tag) in [
            ("web_01", "env=prod"),
            ("web-02", "env=prod,x"),
            ("web-03", "Env=prod"),
        ] {
            let (k, v) = tag.split_once('=').unwrap();
            let body = AddDevice {
                name: name.into(),
                tags: [(k.to_owned(), v.to_owned())].into(),
                groups: vec![],
                os: None,
            };
            assert_eq!(
                api_code(c.admin.add_device(&body)),
                "invalid_input",
                "{name} {tag}"
            );
        }
        // The client refuses bad ids before sending; the server refuses them too.
        assert!(c.bob.approve("x' OR '1'='1", None).is_err());
        assert_eq!(
            api_code(c.bob.get_text("/v1/requests/x'%20OR%20'1'='1")),
            "invalid_input"
        );
        assert_eq!(
            api_code(c.bob.get_text("/v1/grants/..%2F..%2Fetc%2Fpasswd")),
            "invalid_input"
        );

        let after = counts(&c.admin);
        assert_eq!(before, after, "(requests, audit events, users) changed");
    }
);

both_engines!(policy_denial_names_its_policy, |mut h: Harness| {
    let c = h.cast();
    // Mallory is in no group: no policy lets her ask.
    h.add_user(&c.admin, "mallory", &[]);
    let mallory = h.login("mallory");
    let r = mallory.create_request(&ask("pkg-update", "30m")).unwrap();
    assert_eq!(r.state, RequestState::Denied);
    assert!(
        r.decision.explain.contains("no policy permits"),
        "{:?}",
        r.decision
    );
    assert!(r.grant_id.is_none());
    // Approving a denied request is a conflict, not a grant.
    assert_eq!(api_code(c.bob.approve(&r.id, None)), "conflict");
    // An allowed one names the permit that allowed it.
    let ok = pending(&c.alice, "pkg-update");
    assert_eq!(ok.decision.policies, ["operators-may-request"]);
});

#[test]
fn openapi_lists_every_route() {
    let Some(h) = Harness::start(Db::Sqlite, "openapi_lists_every_route") else {
        return;
    };
    let doc: serde_json::Value =
        serde_json::from_str(&h.anonymous().get_text("/v1/openapi.json").unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in brevet_server::ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is served but not in openapi.json"
        );
    }
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            assert!(
                brevet_server::ROUTES.contains(&(method.as_str(), path.as_str())),
                "openapi.json lists {method} {path}, which is not served"
            );
        }
    }
    let missing = h.anonymous().get_text("/v1/nope").unwrap_err();
    assert_eq!(missing.api_code(), Some("not_found"), "{missing}");
}
