//! An ended grant stays refused as a replay for as long as it could be valid: a grant may start
//! 30 days ahead and last 7 days, so its id is kept until its own `not_after` has passed.

use super::*;

const DAY: i64 = 24 * 3600;

#[test]
fn an_ended_grant_that_starts_a_month_ahead_is_refused_until_its_window_is_over() {
    let env = Env::new();
    let mut d = doc();
    d.not_before = rfc3339(T0 + 30 * DAY);
    d.not_after = rfc3339(T0 + 37 * DAY);
    let mut a = env.agent_at(T0);
    // Accepted, waiting for its start.
    assert!(a.sync(&deliver(&env, &d, T0)).unwrap().is_empty());
    assert_eq!(a.next_deadline(), Some(T0 + 30 * DAY));
    // Revoked an hour later, long before it starts.
    a.clock().set(T0 + 3600);
    let acks = a.sync(&delivery(vec![], T0 + 3600)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("revoked"));

    // A month later (past the old 30-day memory) the grant is still inside its window; the
    // server — restored from a backup, say — delivers it again. It must be refused.
    for at in [T0 + 31 * DAY, T0 + 33 * DAY, T0 + 37 * DAY - 1] {
        a.clock().set(at);
        a.tick().unwrap();
        // A restart in between does not forget either.
        let mut b = env.agent_at(at);
        b.startup().unwrap();
        let acks = b.sync(&deliver(&env, &d, at)).unwrap();
        assert_eq!(acks.len(), 1, "at day {}: {acks:?}", (at - T0) / DAY);
        assert_eq!(acks[0].action, AckAction::Rejected);
        assert_eq!(acks[0].reason.as_deref(), Some("replay"), "{acks:?}");
        assert!(b.journal().active.is_empty());
        assert!(env.sudoers_d().is_empty());
    }
    // Once its window and the skew bound are over it is forgotten, and refused as expired.
    let at = T0 + 37 * DAY + DEFAULT_SKEW;
    let mut b = env.agent_at(at);
    b.tick().unwrap();
    assert!(b.journal().ended.is_empty());
    let acks = b.sync(&deliver(&env, &d, at)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("expired"));
}

const DEFAULT_SKEW: i64 = crate::verify::DEFAULT_MAX_SKEW_SECS;
