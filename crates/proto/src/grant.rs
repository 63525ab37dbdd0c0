//! The grant document (DESIGN §3) and its Ed25519 signature.
//!
//! The server signs the canonical JSON bytes of a [`GrantDoc`]; a [`SignedGrant`] carries those
//! exact bytes as a string next to the signature, so a verifier checks the signature over what it
//! received and never over a re-encoding. [`SignedGrant::verify`] then refuses documents that are
//! not canonical, not version 1, or whose fields fail the same validation the server applied.

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::{Error, canonical, timefmt, validate};

/// `normal` grants come from an approved request; `breakglass` grants from the emergency path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    Normal,
    Breakglass,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Normal => "normal",
            GrantKind::Breakglass => "breakglass",
        }
    }
}

/// What a device is told to apply. Field order here is irrelevant: the signed bytes are canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDoc {
    pub v: u32,
    pub grant_id: String,
    pub request_id: String,
    pub device: String,
    pub user: String,
    pub role: String,
    pub runas: String,
    /// Sudo commands, each validated by [`validate::command`]; `ALL` only if the role says so.
    pub commands: Vec<String>,
    /// Unix groups the user joins for the grant's life (group-type roles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub approvers: Vec<String>,
    pub issued_at: String,
    pub kind: GrantKind,
}

impl GrantDoc {
    /// Checks every field as the server did before signing (defence in depth for the agent).
    pub fn validate(&self) -> Result<(), Error> {
        if self.v != 1 {
            return Err(Error::Grant(format!(
                "unsupported grant version {}",
                self.v
            )));
        }
        validate::id("grant id", &self.grant_id)?;
        validate::id("request id", &self.request_id)?;
        if validate::device_name(&self.device)? != self.device {
            return Err(Error::Grant("device name is not in lower case".into()));
        }
        validate::user_name(&self.user)?;
        validate::role_name(&self.role)?;
        validate::user_name(&self.runas)?;
        if self.commands.is_empty() && self.groups.is_empty() {
            return Err(Error::Grant(
                "grant gives neither commands nor groups".into(),
            ));
        }
        for c in &self.commands {
            validate::command(c, true)?;
        }
        for g in &self.groups {
            validate::group_name(g)?;
        }
        for a in &self.approvers {
            validate::user_name(a)?;
        }
        if let Some(t) = &self.ticket {
            validate::ticket(t)?;
        }
        let nb = self.not_before_secs()?;
        let na = self.not_after_secs()?;
        timefmt::parse_rfc3339("issued_at", &self.issued_at)?;
        if na <= nb {
            return Err(Error::Grant("not_after is not after not_before".into()));
        }
        if (na - nb) as u64 > validate::MAX_DURATION_SECS {
            return Err(Error::Grant("grant window is longer than 7 days".into()));
        }
        Ok(())
    }

    pub fn not_before_secs(&self) -> Result<i64, Error> {
        timefmt::parse_rfc3339("not_before", &self.not_before)
    }

    pub fn not_after_secs(&self) -> Result<i64, Error> {
        timefmt::parse_rfc3339("not_after", &self.not_after)
    }

    /// Signs the canonical bytes of this document.
    pub fn sign(&self, key: &Ed25519KeyPair) -> Result<SignedGrant, Error> {
        self.validate()?;
        let doc = canonical::to_string(self)?;
        let sig = key.sign(doc.as_bytes());
        Ok(SignedGrant {
            doc,
            sig: data_encoding::BASE64.encode(sig.as_ref()),
        })
    }
}

/// A grant document as signed: the canonical JSON text and a base64 Ed25519 signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    pub doc: String,
    pub sig: String,
}

impl SignedGrant {
    /// Verifies the signature with the pinned 32-byte public key, then parses and validates the
    /// document. Any failure is an [`Error::Grant`] or [`Error::Invalid`]; nothing is trusted
    /// before the signature checks.
    pub fn verify(&self, public_key: &[u8]) -> Result<GrantDoc, Error> {
        let sig = data_encoding::BASE64
            .decode(self.sig.as_bytes())
            .map_err(|_| Error::Grant("signature is not base64".into()))?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(self.doc.as_bytes(), &sig)
            .map_err(|_| {
                Error::Grant("signature does not verify with the pinned grant key".into())
            })?;
        let doc: GrantDoc = serde_json::from_str(&self.doc)
            .map_err(|e| Error::Grant(format!("document does not parse: {e}")))?;
        if canonical::to_string(&doc)? != self.doc {
            return Err(Error::Grant("document is not in canonical form".into()));
        }
        doc.validate()?;
        Ok(doc)
    }
}

/// The public half of a grant-signing key, as distributed: base64 of the 32 raw bytes.
pub fn public_key_b64(key: &Ed25519KeyPair) -> String {
    use ring::signature::KeyPair;
    data_encoding::BASE64.encode(key.public_key().as_ref())
}

/// Decodes a base64 public key as produced by [`public_key_b64`].
pub fn public_key_from_b64(s: &str) -> Result<Vec<u8>, Error> {
    let k = data_encoding::BASE64
        .decode(s.trim().as_bytes())
        .map_err(|_| Error::Encoding("grant public key is not base64".into()))?;
    if k.len() != 32 {
        return Err(Error::Encoding("grant public key must be 32 bytes".into()));
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    pub(crate) fn sample() -> GrantDoc {
        GrantDoc {
            v: 1,
            grant_id: "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            request_id: "1b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            device: "web-01".into(),
            user: "alice".into(),
            role: "pkg-update".into(),
            runas: "root".into(),
            commands: vec!["/usr/bin/apt-get update".into()],
            groups: vec![],
            not_before: "2026-11-28T10:00:00Z".into(),
            not_after: "2026-11-28T10:30:00Z".into(),
            ticket: Some("CHG-1234".into()),
            approvers: vec!["bob".into()],
            issued_at: "2026-11-28T10:00:00Z".into(),
            kind: GrantKind::Normal,
        }
    }

    /// Fixed bytes: the canonical document and its Ed25519 signature (deterministic) under a
    /// fixed key. Agents in the field verify these bytes; they must never change.
    #[test]
    fn fixed_vector() {
        let k = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let signed = sample().sign(&k).unwrap();
        assert_eq!(
            signed.doc,
            concat!(
                r#"{"approvers":["bob"],"commands":["/usr/bin/apt-get update"],"device":"web-01","#,
                r#""grant_id":"0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d","issued_at":"2026-11-28T10:00:00Z","#,
                r#""kind":"normal","not_after":"2026-11-28T10:30:00Z","#,
                r#""not_before":"2026-11-28T10:00:00Z","#,
                r#""request_id":"1b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d","role":"pkg-update","#,
                r#""runas":"root","ticket":"CHG-1234","user":"alice","v":1}"#
            )
        );
        assert_eq!(
            signed.sig,
            "jq0EkTXmgFPdFDZvxioTfTqmVtV/v0YXBym8ZIVG8zKcHRCsz7ry5YxRQcqRTD0CUsH5O7WIiC7yfK0ypbNEBA=="
        );
        assert_eq!(signed.verify(k.public_key().as_ref()).unwrap(), sample());
    }

    #[test]
    fn signs_and_verifies() {
        let k = key();
        let signed = sample().sign(&k).unwrap();
        assert!(
            signed
                .doc
                .starts_with(r#"{"approvers":["bob"],"commands":"#)
        );
        assert_eq!(signed.verify(k.public_key().as_ref()).unwrap(), sample());
    }

    #[test]
    fn tampering_is_detected() {
        let k = key();
        let signed = sample().sign(&k).unwrap();
        let pk = k.public_key().as_ref().to_vec();

        let mut t = signed.clone();
        t.doc = t.doc.replace("/usr/bin/apt-get update", "ALL");
        assert!(matches!(t.verify(&pk), Err(Error::Grant(_))));

        let mut t = signed.clone();
        t.doc = t.doc.replace("10:30:00Z", "23:30:00Z");
        assert!(t.verify(&pk).is_err());

        let mut t = signed.clone();
        t.sig = data_encoding::BASE64.encode(&[0u8; 64]);
        assert!(t.verify(&pk).is_err());

        assert!(
            signed.verify(key().public_key().as_ref()).is_err(),
            "other key"
        );
    }

    #[test]
    fn non_canonical_or_invalid_documents_are_refused_even_if_signed() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        // Signed, but with whitespace: not canonical.
        let doc = canonical::to_string(&sample()).unwrap().replace(",", ", ");
        let sig = data_encoding::BASE64.encode(k.sign(doc.as_bytes()).as_ref());
        assert!(SignedGrant { doc, sig }.verify(&pk).is_err());
        // Signed and canonical, but with an injected user name.
        let mut bad = sample();
        bad.user = "bob ALL=(ALL) NOPASSWD: ALL".into();
        assert!(bad.sign(&k).is_err(), "server refuses to sign");
        let doc = canonical::to_string(&bad).unwrap();
        let sig = data_encoding::BASE64.encode(k.sign(doc.as_bytes()).as_ref());
        assert!(matches!(
            SignedGrant { doc, sig }.verify(&pk),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn window_must_be_sane() {
        let mut g = sample();
        g.not_after = g.not_before.clone();
        assert!(g.validate().is_err());
        g.not_after = "2026-12-28T10:00:00Z".into();
        assert!(g.validate().is_err());
    }
}
