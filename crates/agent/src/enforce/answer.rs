//! Whether an answer of the server may put anything new in force, before its grants are looked
//! at: not when this agent's enrollment was superseded by another enrollment of the same device
//! name, and not when the answer's server-state stamp is older than one already seen, does not
//! verify, or is missing although one was seen ([`crate::server_state`]).
//!
//! A refused answer applies nothing new: its grants that the agent does not hold are acked
//! `rejected` with the reason; grants already held keep running to their own `not_after`;
//! removal (a held grant the answer no longer lists) is always allowed. An accepted newer stamp
//! is written to the journal before anything else is done with the answer.

use brevet_proto::agent::{Ack, DeviceGrants};

use super::Agent;
use crate::Result;
use crate::clock::Clock;
use crate::journal::Superseded;
use crate::server_state::{self, Verdict};
use crate::system::System;
use crate::verify::{Reason, Refusal};

impl<C: Clock, S: System> Agent<C, S> {
    /// Names the enrollment this agent runs with. A superseded mark left by another enrollment
    /// is cleared: the device was enrolled again.
    pub fn set_enrollment(&mut self, enrollment: &str) -> Result<()> {
        self.enrollment = enrollment.to_owned();
        if self
            .journal
            .superseded
            .as_ref()
            .is_some_and(|m| m.enrollment != enrollment)
        {
            self.journal.superseded = None;
            self.journal.save()?;
        }
        Ok(())
    }

    /// Set when the server said another enrollment superseded this one.
    pub fn superseded_mark(&self) -> Option<&Superseded> {
        self.journal.superseded.as_ref()
    }

    /// The server said another enrollment of this device name superseded this agent's
    /// certificate: every grant held is removed at once (fail closed), and nothing is applied
    /// again until the device is enrolled again. Returns the removal acks.
    pub fn superseded(&mut self, message: &str) -> Result<Vec<Ack>> {
        if self.journal.superseded.is_none() {
            self.journal.superseded = Some(Superseded {
                at: self.clock.now(),
                enrollment: self.enrollment.clone(),
                message: message.to_owned(),
            });
            self.journal.save()?;
        }
        self.remove_all("device superseded")
    }

    /// Why `delivered` may not put anything new in force, if it may not. A newer stamp is saved
    /// before this returns.
    pub(super) fn judge_answer(&mut self, delivered: &DeviceGrants) -> Result<Option<Refusal>> {
        if self.journal.superseded.is_some() {
            return Ok(Some(Refusal {
                reason: Reason::Superseded,
                message: "this device was enrolled again elsewhere, which superseded this \
                          agent's certificate; nothing is applied until it is enrolled again"
                    .into(),
            }));
        }
        let verdict = server_state::judge(
            self.journal.server_state.as_ref(),
            delivered.state.as_ref(),
            &self.verifier.grant_public_key,
            &self.verifier.device,
        );
        match verdict {
            Verdict::Accept(newer) => {
                if let Some(newer) = newer {
                    self.journal.server_state = Some(newer);
                    self.journal.save()?;
                }
                self.state_refusal_told = None;
                Ok(None)
            }
            Verdict::Refuse(message) => {
                if self.state_refusal_told.as_deref() != Some(message.as_str()) {
                    eprintln!(
                        "brevet-agent: error: answer of the server refused, nothing new is \
                         applied, grants held run to their own end: {message}"
                    );
                    self.state_refusal_told = Some(message.clone());
                }
                Ok(Some(Refusal {
                    reason: Reason::ServerState,
                    message,
                }))
            }
        }
    }
}
