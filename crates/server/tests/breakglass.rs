//! Break-glass over real HTTPS on SQLite and PostgreSQL: only whom the policy names, only with a
//! fresh second factor, at once and without an approver, and loudly (alert, marked grant).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::api::{GrantState, RequestState};
use brevet_proto::grant::GrantKind;
use brevet_proto::timefmt::parse_rfc3339;
use common::*;

both_engines!(
    breakglass_is_immediate_policy_bound_and_loud,
    |mut h: Harness| {
        let c = h.cast();
        h.add_user(&c.admin, "erin", &["breakglass"]);
        let erin = h.login("erin");

        // Not in the break-glass group: refused by policy, and the attempt is on record.
        let e = c.alice.breakglass("web-01", "prod down", None).unwrap_err();
        assert_eq!(api_code(Err::<(), _>(e)), "policy_denied");
        let refused = events(&c.admin, "breakglass.refused");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].actor, "alice");

        // Hostile or unknown input: a clear error, nothing stored.
        let before = c.admin.grants(false, None).unwrap().len();
        assert_eq!(
            api_code(erin.breakglass("web-01; rm -rf /", "x y", None)),
            "invalid_input"
        );
        assert_eq!(
            api_code(erin.breakglass("web-01", ".", None)),
            "invalid_input"
        );
        assert_eq!(
            api_code(erin.breakglass("db-77", "prod down", None)),
            "not_found"
        );
        assert_eq!(c.admin.grants(false, None).unwrap().len(), before);

        // A member, with the login's second factor still fresh: granted at once.
        let r = erin
            .breakglass("web-01", "database down, pager CHG-9", None)
            .unwrap();
        assert_eq!(r.state, RequestState::Approved);
        assert_eq!((r.user.as_str(), r.role.as_str()), ("erin", "admin"));
        let g = erin.grant(r.grant_id.as_deref().unwrap()).unwrap();
        assert_eq!(g.kind, GrantKind::Breakglass);
        assert!(g.approvers.is_empty());
        assert!(g.state == GrantState::Issued || g.state == GrantState::Active);
        assert_eq!(g.commands, ["ALL"]);
        let span =
            parse_rfc3339("a", &g.not_after).unwrap() - parse_rfc3339("b", &g.not_before).unwrap();
        assert_eq!(span, 3600, "the configured break-glass duration");
        let alerts = events(&c.admin, "alert.breakglass_used");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].data["grant_id"], g.id.as_str());
        assert_eq!(alerts[0].data["reason"], "database down, pager CHG-9");
        let issued = events(&c.admin, "grant.issued");
        assert!(
            issued
                .iter()
                .any(|e| e.subject == g.id && e.data["kind"] == "breakglass")
        );

        // It ends like any grant.
        c.admin.revoke(&g.id, "incident over").unwrap();

        // The second factor must be fresh: after six minutes a code is needed.
        h.advance(6 * 60);
        assert_eq!(
            api_code(erin.breakglass("web-01", "again", None)),
            "mfa_required"
        );
        let code = h.fresh_code("erin");
        let again = erin.breakglass("web-01", "again", Some(&code)).unwrap();
        assert_eq!(again.state, RequestState::Approved);
    }
);
