//! The search index of the audit trail: `audit_terms (term, seq)`, one row per thing an event
//! is about, such as `user:alice`, `device:web-01`, `grant:ID`, `request:ID` or `ticket:CHG-1`.
//!
//! Terms come from the event itself — the actor, the `user`, `device`, `grant_id`,
//! `request_id` and `ticket` fields of its data, and its subject read by kind (`grant.*` and
//! `alert.*` name a grant, `request.*` a request, `device.*` and `drift.*` a device, `user.*`,
//! `login.*`, `logout` and `mfa.*` a person) — and, for an event about a grant or request that
//! does not say everything, from that grant's or request's row: so `grant.used` is found by the
//! grant holder's name, the device and the ticket even if its data names only the grant.
//!
//! The index is derived data: it is not hashed, and a verifier never reads it. It is written in
//! the transaction of the event, so search sees exactly the committed events.

use std::collections::BTreeSet;

use brevet_audit::Event;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, Tx};

/// Values longer than this, empty, or with control characters are not indexed.
const MAX_VALUE: usize = 256;

/// What one event is about.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Terms {
    set: BTreeSet<String>,
    grant: Option<String>,
    request: Option<String>,
    /// Whether the data named the grant holder / requester (`user`), the device, the ticket.
    holder: bool,
    device: bool,
    ticket: bool,
}

impl Terms {
    fn add(&mut self, key: &str, value: &str) -> bool {
        let ok =
            !value.is_empty() && value.len() <= MAX_VALUE && !value.chars().any(char::is_control);
        if ok {
            self.set.insert(format!("{key}:{value}"));
        }
        ok
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.set.into_iter().collect()
    }
}

/// The terms an event carries by itself.
pub(crate) fn terms_of(e: &Event) -> Terms {
    let mut t = Terms::default();
    let field = |name: &str| e.data.get(name).and_then(serde_json::Value::as_str);
    match e.actor.split_once(':') {
        Some(("device", name)) => t.add("device", name),
        Some(_) => false,
        None => t.add("user", &e.actor),
    };
    let family = e.kind.split('.').next().unwrap_or_default();
    match family {
        "grant" | "alert" if t.add("grant", &e.subject) => t.grant = Some(e.subject.clone()),
        "request" if t.add("request", &e.subject) => t.request = Some(e.subject.clone()),
        "device" | "drift" => t.device |= t.add("device", &e.subject),
        "user" | "login" | "logout" | "mfa" => {
            t.add("user", &e.subject);
        }
        _ => {}
    }
    if let Some(v) = field("user") {
        t.holder |= t.add("user", v);
    }
    if let Some(v) = field("device") {
        t.device |= t.add("device", v);
    }
    if let Some(v) = field("ticket") {
        t.ticket |= t.add("ticket", v);
    }
    if let Some(v) = field("grant_id")
        && t.add("grant", v)
    {
        t.grant.get_or_insert_with(|| v.to_owned());
    }
    if let Some(v) = field("request_id")
        && t.add("request", v)
    {
        t.request.get_or_insert_with(|| v.to_owned());
    }
    t
}

impl Tx {
    /// Indexes a new event (see the module docs), looking up what it does not say.
    /// The search terms of `e`, completed from its grant or request where the event itself does
    /// not name the holder, device or ticket.
    pub(crate) async fn event_terms(&mut self, e: &Event) -> Result<Vec<String>> {
        let mut t = terms_of(e);
        let complete = t.holder && t.device && t.ticket;
        let lookup =
            if let Some(grant) = t.grant.clone().filter(|_| !complete || t.request.is_none()) {
                Some(("grant", grant))
            } else {
                t.request
                    .clone()
                    .filter(|_| !complete)
                    .map(|r| ("request", r))
            };
        if let Some((what, id)) = lookup {
            for (key, value) in self.facts(what, &id).await? {
                t.add(key, &value);
            }
        }
        Ok(t.into_vec())
    }

    /// The request, holder, device and ticket of grant or request `id`, read once per
    /// transaction: a device's report carries many events about the same grant. They never
    /// change once written; an absent one can only appear through `insert_grant` or
    /// `insert_request`, which empty this cache.
    async fn facts(&mut self, what: &'static str, id: &str) -> Result<Vec<(&'static str, String)>> {
        let cache_key = (what, id.to_owned());
        if let Some(found) = self.audit_facts.get(&cache_key) {
            return Ok(found.clone());
        }
        let sql = match what {
            "grant" => {
                "SELECT g.request_id, g.user_name, g.device, r.ticket
                 FROM grants g JOIN requests r ON r.id = g.request_id WHERE g.id = $1"
            }
            _ => "SELECT user_name, device, ticket FROM requests WHERE id = $1",
        };
        let Some(row) = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut found = Vec::with_capacity(4);
        if what == "grant" {
            found.push(("request", row.try_get::<String, _>("request_id")?));
        }
        found.push(("user", row.try_get::<String, _>("user_name")?));
        found.push(("device", row.try_get::<String, _>("device")?));
        if let Some(ticket) = row.try_get::<Option<String>, _>("ticket")? {
            found.push(("ticket", ticket));
        }
        self.audit_facts.insert(cache_key, found.clone());
        Ok(found)
    }

    /// Inserts `(term, seq)` rows, a few hundred per statement.
    pub(crate) async fn insert_terms(&mut self, terms: &[(String, i64)]) -> Result<()> {
        for chunk in terms.chunks(200) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            // Only generated placeholders are spliced in; every value is bound.
            let sql = format!(
                "INSERT INTO audit_terms (term, seq) VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (term, seq) in chunk {
                q = q.bind(term.clone()).bind(*seq);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// Indexes the events written before the index existed (up to the `seq` the V3 migration
/// recorded), then forgets the marker. Safe to run twice or on two replicas at once.
pub(crate) async fn backfill(store: &Store) -> Result<()> {
    let through: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_terms_through'")
            .fetch_optional(store.pool())
            .await?;
    let Some(through) = through else {
        return Ok(());
    };
    let through: u64 = through
        .parse()
        .map_err(|_| crate::Error::Corrupt(format!("audit_terms_through `{through}`")))?;
    let mut after = 0;
    while after < through {
        let page = store.audit_events(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.event.seq;
        let mut tx = store.begin().await?;
        for s in page.iter().filter(|s| s.event.seq <= through) {
            let seq = i64::try_from(s.event.seq)
                .map_err(|_| crate::Error::Corrupt("audit seq".into()))?;
            let terms: Vec<(String, i64)> = tx
                .event_terms(&s.event)
                .await?
                .into_iter()
                .map(|t| (t, seq))
                .collect();
            tx.insert_terms(&terms).await?;
        }
        tx.commit().await?;
    }
    let mut tx = store.begin().await?;
    sqlx::query("DELETE FROM meta WHERE key = 'audit_terms_through'")
        .execute(&mut *tx.tx)
        .await?;
    tx.commit().await?;
    tracing::info!(events = through, "indexed the audit trail for search");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, actor: &str, subject: &str, data: serde_json::Value) -> Event {
        Event {
            seq: 1,
            at: "2026-11-28T10:00:00Z".into(),
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            data,
        }
    }

    fn terms(e: &Event) -> Vec<String> {
        terms_of(e).into_vec()
    }

    #[test]
    fn subjects_are_read_by_kind() {
        let e = event(
            "request.created",
            "alice",
            "r1",
            json!({"device": "web-01", "ticket": "CHG-1"}),
        );
        assert_eq!(
            terms(&e),
            ["device:web-01", "request:r1", "ticket:CHG-1", "user:alice"]
        );
        let e = event(
            "grant.applied",
            "device:web-01",
            "g1",
            json!({"device": "web-01"}),
        );
        assert_eq!(terms(&e), ["device:web-01", "grant:g1"]);
        let t = terms_of(&e);
        assert_eq!(t.grant.as_deref(), Some("g1"));
        assert!(t.device && !t.holder && !t.ticket);
        let e = event("user.created", "admin", "bob", json!({"groups": []}));
        assert_eq!(terms(&e), ["user:admin", "user:bob"]);
        let e = event("drift.detected", "device:d1", "d1", json!({}));
        assert_eq!(terms(&e), ["device:d1"]);
    }

    #[test]
    fn data_fields_name_grants_and_requests() {
        let e = event(
            "request.approved",
            "bob",
            "r1",
            json!({"grant_id": "g1", "user": "alice", "request_id": "ignored-second"}),
        );
        let t = terms_of(&e);
        assert_eq!(t.grant.as_deref(), Some("g1"));
        assert_eq!(t.request.as_deref(), Some("r1"));
        assert!(t.holder);
        assert_eq!(
            t.into_vec(),
            [
                "grant:g1",
                "request:ignored-second",
                "request:r1",
                "user:alice",
                "user:bob"
            ]
        );
    }

    #[test]
    fn odd_values_are_not_indexed() {
        let e = event(
            "login.failed",
            "",
            "x\ny",
            json!({"device": 3, "ticket": "a".repeat(300)}),
        );
        assert!(terms(&e).is_empty());
    }
}
