//! What the server runs under is part of the trail. At each start the SHA-256 of `brevet.toml`
//! and of `policy.cedar` is compared with the one recorded last (`meta`); when it differs — a
//! first start, or a file edited since — a `config.changed` or `policy.changed` event records
//! the new hash, the previous one and what the file now says:
//!
//! - `policy.changed`: the policy ids and, up to 64 KiB, the policy text itself (policies hold
//!   no secrets, and an auditor needs the text that decided);
//! - `config.changed`: the roles (commands, groups, run-as, limits) and the lifetimes, but
//!   never the database address or the syslog settings, which may hold credentials.
//!
//! Both files are read once, when the server starts; a change takes effect, and is recorded,
//! at the next start.

use brevet_store::Store;
use ring::digest;
use serde_json::{Value, json};

use crate::Error;
use crate::config::Config;

/// Policy text longer than this is recorded by hash and ids only.
const MAX_POLICY_TEXT: usize = 64 << 10;

/// The files as loaded, for [`record`].
pub(crate) struct Loaded<'a> {
    pub config: &'a Config,
    pub config_text: &'a str,
    pub policy_ids: Vec<String>,
    pub policy_text: &'a str,
}

/// Appends `config.changed` / `policy.changed` for each file whose hash differs from the one
/// recorded last, in one transaction with the new hashes.
pub(crate) async fn record(store: &Store, files: &Loaded<'_>, now: i64) -> Result<(), Error> {
    let config_summary = json!({
        "file": "brevet.toml",
        "roles": files.config.roles,
        "request_ttl": files.config.server.request_ttl,
        "session_ttl": files.config.server.session_ttl,
        "step_up_max_age": files.config.server.step_up_max_age,
        "syslog_forwarding": files.config.syslog.is_some(),
    });
    let mut policy_summary = json!({ "file": "policy.cedar", "policies": files.policy_ids });
    if files.policy_text.len() <= MAX_POLICY_TEXT {
        policy_summary["text"] = Value::from(files.policy_text);
    }
    let mut tx = store.begin().await?;
    for (kind, key, text, mut data) in [
        (
            "config.changed",
            "config_sha256",
            files.config_text,
            config_summary,
        ),
        (
            "policy.changed",
            "policy_sha256",
            files.policy_text,
            policy_summary,
        ),
    ] {
        let sha = sha256_hex(text);
        let previous = tx.meta(key).await?;
        if previous.as_deref() == Some(sha.as_str()) {
            continue;
        }
        tracing::info!(kind, sha256 = %sha, previous = ?previous, "recording a changed file");
        data["sha256"] = Value::from(sha.as_str());
        data["previous_sha256"] = previous.map_or(Value::Null, Value::from);
        let subject = data["file"].as_str().unwrap_or_default().to_owned();
        tx.audit(kind, "brevetd", &subject, data, now).await?;
        tx.set_meta(key, &sha).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn sha256_hex(text: &str) -> String {
    data_encoding::HEXLOWER.encode(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
}
