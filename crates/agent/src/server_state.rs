//! Restore safety on the device: the agent keeps the newest server-state stamp it has seen
//! ([`brevet_proto::state`]: device, restore generation, audit sequence number, signed with the
//! grant key it pinned at enrollment) and refuses any answer whose stamp is older, does not
//! verify, names another device, or is missing once a stamp has been seen. A server running on a
//! restored copy of its database therefore cannot hand out grants that were revoked after the
//! copy was taken.
//!
//! [`judge`] is pure; the caller stores an accepted stamp durably before acting on the answer.

use brevet_proto::state::{ServerState, SignedState};

/// How an answer's stamp compares with the newest one seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; `Some` is a newer stamp to store before acting on the answer.
    Accept(Option<ServerState>),
    /// Refused, with the sentence to give in `rejected` acks and the log.
    Refuse(String),
}

fn describe(s: &ServerState) -> String {
    format!("generation {}, audit seq {}", s.generation, s.audit_seq)
}

/// Judges the stamp of an answer (`None`: the answer has none) against the newest seen.
pub fn judge(
    seen: Option<&ServerState>,
    stamp: Option<&SignedState>,
    grant_key: &[u8],
    device: &str,
) -> Verdict {
    let Some(stamp) = stamp else {
        return match seen {
            // A server that does not stamp its answers yet, and never has.
            None => Verdict::Accept(None),
            Some(s) => Verdict::Refuse(format!(
                "the answer carries no server state although this device has seen {}: the \
                 server may run on a restored backup or an older version",
                describe(s)
            )),
        };
    };
    let state = match stamp.verify(grant_key, device) {
        Ok(s) => s,
        Err(e) => return Verdict::Refuse(format!("the server state is refused: {e}")),
    };
    match seen {
        Some(s) if state.is_older_than(s) => Verdict::Refuse(format!(
            "server state is older than one already seen ({} < {}): the server may run on a \
             restored backup",
            describe(&state),
            describe(s)
        )),
        Some(s) if !s.is_older_than(&state) => Verdict::Accept(None), // the same point
        _ => Verdict::Accept(Some(state)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    pub(crate) fn stamp(device: &str, generation: u64, audit_seq: u64) -> ServerState {
        ServerState {
            v: 1,
            device: device.into(),
            generation,
            audit_seq,
            issued_at: "2026-11-28T10:00:00Z".into(),
        }
    }

    pub(crate) fn signed(key: &Ed25519KeyPair, generation: u64, audit_seq: u64) -> SignedState {
        stamp("web-01", generation, audit_seq).sign(key).unwrap()
    }

    #[test]
    fn newer_or_equal_is_accepted_older_missing_or_forged_is_refused() {
        let k = crate::verify::tests::key();
        let pk = k.public_key().as_ref().to_vec();
        let j = |seen: Option<&ServerState>, s: Option<&SignedState>| judge(seen, s, &pk, "web-01");
        let s57 = stamp("web-01", 1, 57);

        assert_eq!(j(None, None), Verdict::Accept(None), "never seen one");
        assert_eq!(
            j(None, Some(&signed(&k, 1, 40))),
            Verdict::Accept(Some(stamp("web-01", 1, 40)))
        );
        assert_eq!(
            j(Some(&s57), Some(&signed(&k, 1, 58))),
            Verdict::Accept(Some(stamp("web-01", 1, 58)))
        );
        assert_eq!(
            j(Some(&s57), Some(&signed(&k, 1, 57))),
            Verdict::Accept(None)
        );
        assert_eq!(
            j(Some(&s57), Some(&signed(&k, 2, 3))),
            Verdict::Accept(Some(stamp("web-01", 2, 3))),
            "a later generation wins whatever its sequence number"
        );

        let Verdict::Refuse(m) = j(Some(&s57), Some(&signed(&k, 1, 40))) else {
            panic!("older accepted")
        };
        assert_eq!(
            m,
            "server state is older than one already seen (generation 1, audit seq 40 < \
             generation 1, audit seq 57): the server may run on a restored backup"
        );
        let Verdict::Refuse(m) = j(Some(&s57), None) else {
            panic!("missing accepted")
        };
        assert!(
            m.contains("no server state") && m.contains("audit seq 57"),
            "{m}"
        );
        let forged = signed(&crate::verify::tests::key(), 9, 9);
        assert!(
            matches!(j(None, Some(&forged)), Verdict::Refuse(m) if m.contains("does not verify"))
        );
        let other = stamp("db-01", 9, 9).sign(&k).unwrap();
        assert!(matches!(j(None, Some(&other)), Verdict::Refuse(m) if m.contains("db-01")));
    }
}
