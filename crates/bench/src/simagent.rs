//! What a simulated device decides about each long-poll answer, the way `brevet-agent` does
//! (`crates/agent/src/enforce.rs`, `Agent::sync`) but with nothing written to disk.
//!
//! The answer's server-state stamp is judged by the agent's own [`server_state::judge`] against
//! the newest stamp this device has seen (a refused stamp refuses every new grant in the
//! answer); each new live grant is checked by the agent's own [`Verifier`] (Ed25519 signature
//! with the key pinned at enrollment, canonical form, every field, this device's name, the skew
//! against the answer's `server_time`, the window) after the replay check against the grants
//! this device has ended, and must carry the id it was delivered under. Accepted grants are
//! acknowledged `applied` at once (there is no drop-in to write and no `visudo` to run); a grant
//! held that the answer no longer lists is acknowledged `removed` with reason `revoked`; a
//! refused one is acknowledged `rejected` once, with the agent's reason. Not simulated: the
//! agent's own expiry timer (the benchmark's grants outlive the run), reports and events.

use std::collections::{BTreeMap, BTreeSet};

use brevet_agent::journal::Journal;
use brevet_agent::server_state::{self, Verdict};
use brevet_agent::verify::{Reason, Refusal, Verifier};
use brevet_proto::agent::{Ack, AckAction, DeviceGrants};
use brevet_proto::state::ServerState;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use serde_json::json;

/// One device's view of its grants.
pub(crate) struct SimAgent {
    verifier: Verifier,
    /// The newest server-state stamp accepted.
    seen: Option<ServerState>,
    /// Grants in force: id → `not_after` (unix seconds).
    active: BTreeMap<String, i64>,
    /// Grants this device has ended (the agent's replay list).
    ended: BTreeSet<String>,
    /// Grants refused and acknowledged as such.
    rejected: BTreeSet<String>,
}

/// What one answer led to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) acks: Vec<Ack>,
    /// Grants verified and put in force by this answer.
    pub(crate) applied: Vec<String>,
    /// Grants refused by this answer, with the refusal.
    pub(crate) refused: Vec<(String, String)>,
}

impl SimAgent {
    /// A device enrolled as `device`, pinning `grant_public_key` (32 bytes).
    pub(crate) fn new(device: &str, grant_public_key: Vec<u8>) -> SimAgent {
        SimAgent {
            verifier: Verifier::new(device, grant_public_key),
            seen: None,
            active: BTreeMap::new(),
            ended: BTreeSet::new(),
            rejected: BTreeSet::new(),
        }
    }

    pub(crate) fn device(&self) -> &str {
        &self.verifier.device
    }

    /// Grants in force.
    #[cfg(test)]
    pub(crate) fn active(&self) -> usize {
        self.active.len()
    }

    /// Judges one answer at device time `now` (unix seconds). `empty` is an empty journal: the
    /// verifier's replay check reads it, and this device's own replay list is checked first.
    pub(crate) fn sync(&mut self, answer: &DeviceGrants, now: i64, empty: &Journal) -> Outcome {
        let mut out = Outcome::default();
        let refused = match server_state::judge(
            self.seen.as_ref(),
            answer.state.as_ref(),
            &self.verifier.grant_public_key,
            &self.verifier.device,
        ) {
            Verdict::Accept(newer) => {
                if newer.is_some() {
                    self.seen = newer;
                }
                None
            }
            Verdict::Refuse(message) => Some(Refusal {
                reason: Reason::ServerState,
                message,
            }),
        };
        let live: BTreeMap<&str, _> = answer
            .grants
            .iter()
            .filter(|g| g.state.is_live())
            .map(|g| (g.id.as_str(), &g.signed))
            .collect();
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|id| !live.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.active.remove(&id);
            self.ended.insert(id.clone());
            out.acks
                .push(ack(&id, AckAction::Removed, Some("revoked"), now));
        }
        let server_time = parse_rfc3339("server_time", &answer.server_time).map_err(|_| Refusal {
            reason: Reason::Skew,
            message: format!(
                "the server time `{}` is unreadable, so the clock cannot be checked",
                answer.server_time.escape_default()
            ),
        });
        for (&id, signed) in &live {
            if self.active.contains_key(id) || self.rejected.contains(id) {
                continue;
            }
            let verdict = match &refused {
                Some(r) => Err(r.clone()),
                None if self.ended.contains(id) => Err(Refusal {
                    reason: Reason::Replay,
                    message: "this grant has already ended on this device".into(),
                }),
                None => server_time.clone(),
            };
            let verdict = verdict
                .and_then(|st| self.verifier.verify(signed, now, Some(st), empty))
                .and_then(|doc| {
                    if doc.grant_id == id {
                        Ok(doc)
                    } else {
                        Err(Refusal {
                            reason: Reason::Invalid,
                            message: format!(
                                "delivered as grant `{id}` but the document is grant `{}`",
                                doc.grant_id
                            ),
                        })
                    }
                });
            match verdict {
                Ok(doc) => {
                    let not_after = doc.not_after_secs().unwrap_or(now);
                    self.active.insert(id.to_owned(), not_after);
                    let mut a = ack(id, AckAction::Applied, None, now);
                    a.detail = json!({ "simulated": true, "not_after": doc.not_after });
                    out.acks.push(a);
                    out.applied.push(id.to_owned());
                }
                Err(r) => {
                    self.rejected.insert(id.to_owned());
                    let mut a = ack(id, AckAction::Rejected, Some(r.reason.as_str()), now);
                    a.detail = json!({ "message": r.message });
                    out.acks.push(a);
                    out.refused.push((id.to_owned(), r.to_string()));
                }
            }
        }
        out
    }
}

fn ack(id: &str, action: AckAction, reason: Option<&str>, now: i64) -> Ack {
    Ack {
        grant_id: id.to_owned(),
        action,
        at: rfc3339(now),
        reason: reason.map(str::to_owned),
        detail: json!({ "simulated": true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brevet_proto::agent::DeliveredGrant;
    use brevet_proto::api::GrantState;
    use brevet_proto::grant::{GrantDoc, GrantKind};
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    const NOW: i64 = 1_795_860_000; // 2026-11-28T10:00:00Z

    /// A grant id (ids are UUIDs).
    fn uid(n: u64) -> String {
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn grant(key: &Ed25519KeyPair, id: &str, device: &str) -> DeliveredGrant {
        let doc = GrantDoc {
            v: 1,
            grant_id: id.into(),
            request_id: uid(99),
            device: device.into(),
            user: "alice".into(),
            role: "bench".into(),
            runas: "root".into(),
            commands: vec!["/usr/bin/id".into()],
            groups: vec![],
            not_before: rfc3339(NOW),
            not_after: rfc3339(NOW + 600),
            ticket: None,
            approvers: vec!["bob".into()],
            issued_at: rfc3339(NOW),
            kind: GrantKind::Normal,
        };
        DeliveredGrant {
            id: id.into(),
            state: GrantState::Issued,
            signed: doc.sign(key).unwrap(),
        }
    }

    fn answer(key: &Ed25519KeyPair, seq: u64, grants: Vec<DeliveredGrant>) -> DeviceGrants {
        let state = ServerState {
            v: 1,
            device: "dev-0".into(),
            generation: 1,
            audit_seq: seq,
            issued_at: rfc3339(NOW),
        };
        DeviceGrants {
            cursor: "e:1".into(),
            server_time: rfc3339(NOW),
            grants,
            state: Some(state.sign(key).unwrap()),
        }
    }

    fn actions(o: &Outcome) -> Vec<(String, AckAction, Option<String>)> {
        o.acks
            .iter()
            .map(|a| (a.grant_id.clone(), a.action, a.reason.clone()))
            .collect()
    }

    #[test]
    fn verifies_applies_removes_and_refuses_like_the_agent() {
        let k = key();
        let tmp = tempfile::tempdir().unwrap();
        let empty = Journal::load(tmp.path()).unwrap();
        let mut a = SimAgent::new("dev-0", k.public_key().as_ref().to_vec());
        let g1 = grant(&k, &uid(1), "dev-0");

        let o = a.sync(&answer(&k, 5, vec![g1.clone()]), NOW, &empty);
        assert_eq!(o.applied, [uid(1)]);
        assert_eq!(actions(&o), [(uid(1), AckAction::Applied, None)]);
        // The same answer again changes nothing.
        assert!(
            a.sync(&answer(&k, 5, vec![g1.clone()]), NOW, &empty)
                .acks
                .is_empty()
        );

        // Forged, for another device, or under another id: rejected with the agent's reason.
        let mut forged = grant(&key(), &uid(2), "dev-0");
        forged.id = uid(2);
        let other = grant(&k, &uid(3), "dev-9");
        let mut renamed = grant(&k, &uid(4), "dev-0");
        renamed.id = uid(5);
        let o = a.sync(
            &answer(&k, 6, vec![g1.clone(), forged, other, renamed]),
            NOW,
            &empty,
        );
        let reasons: Vec<_> = o.acks.iter().map(|a| a.reason.clone().unwrap()).collect();
        assert_eq!(reasons, ["signature", "device", "invalid"]);
        assert!(o.applied.is_empty());

        // Gone from the answer: removed as revoked; delivered again: a replay.
        let o = a.sync(&answer(&k, 7, vec![]), NOW, &empty);
        assert_eq!(
            actions(&o),
            [(uid(1), AckAction::Removed, Some("revoked".into()))]
        );
        let o = a.sync(&answer(&k, 8, vec![g1.clone()]), NOW, &empty);
        assert_eq!(o.acks[0].reason.as_deref(), Some("replay"));

        // An older server state refuses every new grant in the answer.
        let g6 = grant(&k, &uid(6), "dev-0");
        let o = a.sync(&answer(&k, 3, vec![g6.clone()]), NOW, &empty);
        assert_eq!(o.acks[0].reason.as_deref(), Some("server_state"));
        assert_eq!(a.active(), 0);
        // A stamp signed by another key is refused too.
        let mut bad = answer(&k, 9, vec![grant(&k, &uid(7), "dev-0")]);
        bad.state = answer(&key(), 9, vec![]).state;
        assert_eq!(
            a.sync(&bad, NOW, &empty).acks[0].reason.as_deref(),
            Some("server_state")
        );
        assert_eq!(a.device(), "dev-0");
    }
}
