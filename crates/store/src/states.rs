//! The groups of states that SQL conditions name, each defined once.
//!
//! A condition is a macro expanding to a string literal, so queries stay `&'static str`
//! through `concat!`. The tests below tie each literal to the enum it restates
//! (`GrantState::is_live`, `PrivilegeState::is_open`, `RequestState::Pending`): adding a live
//! grant state without updating the literal fails them.

/// SQL: the grant on this row is live, `issued` or `active` (`GrantState::is_live`).
macro_rules! live_grant {
    () => {
        "state IN ('issued', 'active')"
    };
}

/// SQL: the privilege change on this row is open, `pending` or `unconfirmed`
/// (`PrivilegeState::is_open`).
macro_rules! open_privilege_change {
    () => {
        "state IN ('pending', 'unconfirmed')"
    };
}

/// SQL: the request on this row is undecided (`RequestState::Pending`).
macro_rules! pending_request {
    () => {
        "state = 'pending'"
    };
}

#[cfg(test)]
mod tests {
    use brevet_proto::api::{GrantState, RequestState};

    use crate::PrivilegeState;

    /// The quoted words of an SQL condition.
    fn quoted(sql: &str) -> Vec<&str> {
        sql.split('\'').skip(1).step_by(2).collect()
    }

    #[test]
    fn live_grant_lists_the_live_states() {
        let all = [
            GrantState::Issued,
            GrantState::Active,
            GrantState::Expired,
            GrantState::Revoked,
            GrantState::Completed,
        ];
        let live: Vec<&str> = all
            .iter()
            .filter(|s| s.is_live())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(quoted(live_grant!()), live);
    }

    #[test]
    fn open_privilege_change_lists_the_open_states() {
        let all = [
            PrivilegeState::Pending,
            PrivilegeState::Unconfirmed,
            PrivilegeState::Confirmed,
            PrivilegeState::Rejected,
        ];
        let open: Vec<&str> = all
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(quoted(open_privilege_change!()), open);
    }

    #[test]
    fn pending_request_names_pending() {
        assert_eq!(quoted(pending_request!()), [RequestState::Pending.as_str()]);
    }
}
