//! Deciding whether a delivered grant may be applied, before anything on the system is touched.
//!
//! A grant is refused when its signature does not verify with the key pinned at enrollment, when
//! the document is not canonical or a field fails validation, when it names another device, when
//! the agent has already ended it (replay), when the device clock is off from the server's by
//! more than the bound (the window cannot be judged), or when its window is over. A grant whose
//! window has not started is accepted; it is put in force when `not_before` comes.

use std::fmt;

use brevet_proto::grant::{GrantDoc, SignedGrant};
use ring::signature::{ED25519, UnparsedPublicKey};

use crate::journal::Journal;

/// The default bound on the difference between the device clock and the server's.
pub const DEFAULT_MAX_SKEW_SECS: i64 = 120;

/// The short machine reason of a refusal, sent to the server in the `rejected` ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Signature,
    Invalid,
    Device,
    Replay,
    Skew,
    Expired,
    /// The local account is missing, UID 0, or a system account ([`crate::account`]).
    Account,
    /// The answer's server-state stamp is older than one seen, missing, or forged
    /// ([`crate::server_state`]).
    ServerState,
    /// This agent's enrollment was superseded by another enrollment of the device name.
    Superseded,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Signature => "signature",
            Reason::Invalid => "invalid",
            Reason::Device => "device",
            Reason::Replay => "replay",
            Reason::Skew => "skew",
            Reason::Expired => "expired",
            Reason::Account => "account",
            Reason::ServerState => "server_state",
            Reason::Superseded => "superseded",
        }
    }
}

/// Why a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.as_str())
    }
}

fn refuse(reason: Reason, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Verifier {
    /// This device's name, as enrolled.
    pub device: String,
    /// The Ed25519 grant-signing public key pinned at enrollment (32 bytes).
    pub grant_public_key: Vec<u8>,
    pub max_skew_secs: i64,
}

impl Verifier {
    pub fn new(device: impl Into<String>, grant_public_key: Vec<u8>) -> Verifier {
        Verifier {
            device: device.into(),
            grant_public_key,
            max_skew_secs: DEFAULT_MAX_SKEW_SECS,
        }
    }

    /// Verifies `signed` at device time `now`. `server_time` is the server's clock as reported
    /// with the delivery (`None`: not known, no skew check).
    pub fn verify(
        &self,
        signed: &SignedGrant,
        now: i64,
        server_time: Option<i64>,
        journal: &Journal,
    ) -> Result<GrantDoc, Refusal> {
        // The signature alone first, so that a forgery is named as such.
        let sig = data_encoding::BASE64
            .decode(signed.sig.as_bytes())
            .map_err(|_| refuse(Reason::Signature, "the signature is not base64"))?;
        UnparsedPublicKey::new(&ED25519, &self.grant_public_key)
            .verify(signed.doc.as_bytes(), &sig)
            .map_err(|_| {
                refuse(
                    Reason::Signature,
                    "the signature does not verify with the pinned grant key",
                )
            })?;
        // Then canonical form and every field (this checks the signature once more).
        let doc = signed
            .verify(&self.grant_public_key)
            .map_err(|e| refuse(Reason::Invalid, e.to_string()))?;
        if doc.device != self.device {
            return Err(refuse(
                Reason::Device,
                format!(
                    "the grant is for device `{}`, this is `{}`",
                    doc.device, self.device
                ),
            ));
        }
        if journal.ended.contains_key(&doc.grant_id) {
            return Err(refuse(
                Reason::Replay,
                "this grant has already ended on this device",
            ));
        }
        if let Some(server) = server_time {
            let skew = server.saturating_sub(now).saturating_abs();
            if skew > self.max_skew_secs {
                return Err(refuse(
                    Reason::Skew,
                    format!(
                        "the device clock is {skew} s away from the server's (at most {} s allowed); fix the clock (NTP)",
                        self.max_skew_secs
                    ),
                ));
            }
        }
        let not_after = doc
            .not_after_secs()
            .map_err(|e| refuse(Reason::Invalid, e.to_string()))?;
        if now >= not_after {
            return Err(refuse(
                Reason::Expired,
                format!("the grant window ended at {}", doc.not_after),
            ));
        }
        Ok(doc)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use brevet_proto::canonical;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// 2026-11-28T10:00:00Z, the sample grant's `not_before`.
    pub(crate) const T0: i64 = 1_795_860_000;

    pub(crate) fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    /// Signs the canonical bytes of any document, even one the server would refuse to sign.
    pub(crate) fn sign_raw(doc: &GrantDoc, key: &Ed25519KeyPair) -> SignedGrant {
        let text = canonical::to_string(doc).unwrap();
        let sig = data_encoding::BASE64.encode(key.sign(text.as_bytes()).as_ref());
        SignedGrant { doc: text, sig }
    }

    fn setup() -> (Ed25519KeyPair, Verifier, Journal, tempfile::TempDir) {
        let k = key();
        let v = Verifier::new("web-01", k.public_key().as_ref().to_vec());
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::load(tmp.path()).unwrap();
        (k, v, j, tmp)
    }

    #[test]
    fn refusals_name_their_reason() {
        let (k, v, mut j, _tmp) = setup();
        let doc = crate::sudoers::render_tests_doc();
        let good = sign_raw(&doc, &k);
        assert_eq!(v.verify(&good, T0, Some(T0), &j), Ok(doc.clone()));
        assert!(
            v.verify(&good, T0 - 3600, None, &j).is_ok(),
            "future grants are accepted"
        );

        let reason = |r: Result<GrantDoc, Refusal>| r.map(|_| ()).unwrap_err().reason;
        let forged = sign_raw(&doc, &key());
        assert_eq!(reason(v.verify(&forged, T0, None, &j)), Reason::Signature);
        let mut tampered = good.clone();
        tampered.doc = tampered.doc.replace("alice", "mallo");
        assert_eq!(reason(v.verify(&tampered, T0, None, &j)), Reason::Signature);
        let mut garbage = good.clone();
        garbage.sig = "%%%".into();
        assert_eq!(reason(v.verify(&garbage, T0, None, &j)), Reason::Signature);

        let mut other = doc.clone();
        other.device = "db-01".into();
        assert_eq!(
            reason(v.verify(&sign_raw(&other, &k), T0, None, &j)),
            Reason::Device
        );

        let mut hostile = doc.clone();
        hostile.user = "bob ALL=(ALL) NOPASSWD: ALL".into();
        assert_eq!(
            reason(v.verify(&sign_raw(&hostile, &k), T0, None, &j)),
            Reason::Invalid
        );

        let not_after = doc.not_after_secs().unwrap();
        assert_eq!(
            reason(v.verify(&good, not_after, Some(not_after), &j)),
            Reason::Expired
        );
        assert!(
            v.verify(&good, not_after - 1, Some(not_after - 1), &j)
                .is_ok()
        );

        assert_eq!(
            reason(v.verify(&good, T0, Some(T0 + 200), &j)),
            Reason::Skew
        );
        assert_eq!(
            reason(v.verify(&good, T0, Some(T0 - 200), &j)),
            Reason::Skew
        );
        assert!(
            v.verify(&good, T0, Some(T0 + 120), &j).is_ok(),
            "the bound itself is allowed"
        );

        j.record_ended(&doc.grant_id, T0, T0 + 1800, 120);
        assert_eq!(reason(v.verify(&good, T0, None, &j)), Reason::Replay);
    }

    #[test]
    fn a_non_canonical_document_is_invalid_even_if_signed() {
        let (k, v, j, _tmp) = setup();
        let text = canonical::to_string(&crate::sudoers::render_tests_doc())
            .unwrap()
            .replace(',', ", ");
        let sig = data_encoding::BASE64.encode(k.sign(text.as_bytes()).as_ref());
        let r = v
            .verify(&SignedGrant { doc: text, sig }, T0, None, &j)
            .unwrap_err();
        assert_eq!(r.reason, Reason::Invalid);
    }
}
