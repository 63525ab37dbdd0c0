//! The released migration steps, oldest first. A released step is never edited, reordered or
//! removed: its checksum is recorded in every database it ran on, and `brevetd` refuses to start
//! on a database whose recorded checksum differs (`docs/migrations.md`). Changes go in a new
//! step at the end.

use super::{Sql, Step};

/// The first landed schema: people and their sessions, devices, requests and approvals, grants,
/// and the audit chain with its head.
const V1: &[&str] = &[
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        totp_secret TEXT NOT NULL,
        totp_last_step BIGINT,
        enabled BIGINT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE user_groups (
        user_name TEXT NOT NULL REFERENCES users(name),
        group_name TEXT NOT NULL,
        PRIMARY KEY (user_name, group_name))",
    "CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users(name),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        mfa_at BIGINT,
        revoked_at BIGINT)",
    "CREATE TABLE devices (
        name TEXT PRIMARY KEY,
        tags TEXT NOT NULL,
        device_groups TEXT NOT NULL,
        os TEXT NOT NULL,
        enabled BIGINT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        user_name TEXT NOT NULL,
        device TEXT NOT NULL,
        role TEXT NOT NULL,
        duration_seconds BIGINT NOT NULL,
        ticket TEXT,
        reason TEXT NOT NULL,
        start_at BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        approvals_required BIGINT NOT NULL,
        decision TEXT NOT NULL,
        grant_id TEXT)",
    "CREATE INDEX requests_by_state ON requests (state, expires_at)",
    "CREATE INDEX requests_by_created ON requests (created_at)",
    "CREATE TABLE approvals (
        request_id TEXT NOT NULL REFERENCES requests(id),
        approver TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (request_id, approver))",
    "CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE REFERENCES requests(id),
        state TEXT NOT NULL,
        user_name TEXT NOT NULL,
        device TEXT NOT NULL,
        role TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        issued_at BIGINT NOT NULL,
        ended_at BIGINT,
        end_reason TEXT,
        ended_by TEXT,
        revocation_confirmed_at BIGINT,
        doc TEXT NOT NULL,
        sig TEXT NOT NULL)",
    "CREATE INDEX grants_by_state ON grants (state, not_after)",
    "CREATE INDEX grants_by_device ON grants (device, state)",
    "CREATE TABLE audit_events (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        leaf_hash TEXT NOT NULL,
        chain_hash TEXT NOT NULL)",
    "CREATE TABLE audit_head (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        chain_hash TEXT NOT NULL)",
    "INSERT INTO audit_head (id, seq, chain_hash) VALUES
        (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')",
];

/// Devices: one-time enrollment tokens, the client certificates the server still accepts, the
/// latest scan per device, and the delivery/application/alert times of grants.
const V2: &[&str] = &[
    "CREATE TABLE enroll_tokens (
        token_hash TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT)",
    "CREATE TABLE device_certs (
        fingerprint TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        not_after BIGINT NOT NULL,
        issued_at BIGINT NOT NULL)",
    "CREATE INDEX device_certs_by_device ON device_certs (device)",
    "CREATE TABLE device_reports (
        device TEXT PRIMARY KEY,
        reported_at BIGINT NOT NULL,
        agent_time TEXT NOT NULL,
        findings TEXT NOT NULL,
        drift TEXT NOT NULL)",
    "CREATE TABLE device_rejections (
        device TEXT NOT NULL,
        grant_id TEXT NOT NULL,
        at TEXT NOT NULL,
        recorded_at BIGINT NOT NULL,
        PRIMARY KEY (device, grant_id, at))",
    "ALTER TABLE grants ADD COLUMN applied_at BIGINT",
    "ALTER TABLE grants ADD COLUMN alert_raised_at BIGINT",
    "ALTER TABLE grants ADD COLUMN delivered_at BIGINT",
    "CREATE INDEX grants_unconfirmed ON grants (ended_at)
        WHERE delivered_at IS NOT NULL AND revocation_confirmed_at IS NULL
          AND alert_raised_at IS NULL",
];

/// The verifiable log: signed checkpoints (one per size, so replicas cannot store two for the
/// same size) with the Merkle frontier they were signed from, and the search index of audit
/// events. `audit_terms_through` asks `Store::open` to index the events written before V3.
const V3: &[&str] = &[
    "CREATE TABLE audit_checkpoints (
        size BIGINT PRIMARY KEY,
        root TEXT NOT NULL,
        at TEXT NOT NULL,
        signature TEXT NOT NULL,
        frontier TEXT NOT NULL)",
    "CREATE TABLE audit_terms (
        term TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (term, seq))",
    "CREATE INDEX audit_events_by_at ON audit_events (at)",
    "INSERT INTO meta (key, value)
        SELECT 'audit_terms_through', CAST(seq AS TEXT) FROM audit_head WHERE id = 1",
];

/// Syslog forwarding: how far the audit log has been forwarded, and which `brevetd` replica
/// holds the forwarding lease (one row).
const V4: &[&str] = &[
    "CREATE TABLE syslog_cursor (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        owner TEXT NOT NULL,
        lease_until BIGINT NOT NULL)",
    "INSERT INTO syslog_cursor (id, seq, owner, lease_until) VALUES (1, 0, '', 0)",
];

/// The record of use: the ids of the events devices sent (`grant.used`, `grant.changes`) and
/// the audit event each became, so an event sent again is recognised and not recorded twice.
const V5: &[&str] = &[
    "CREATE TABLE device_events (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        grant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq BIGINT NOT NULL,
        recorded_at BIGINT NOT NULL)",
    "CREATE INDEX device_events_by_grant ON device_events (grant_id)",
];

/// Failed logins in a row per account, and until when it is locked (`lockout.rs`).
const V6: &[&str] = &["CREATE TABLE login_failures (
        user_name TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        locked_until BIGINT)"];

/// Webhooks (`webhooks.rs`): where to POST the events people must act on, the secret that
/// signs them (sealed), and per webhook how far the audit log has been delivered and which
/// `brevetd` replica delivers it (a lease, as for syslog).
const V7: &[&str] = &["CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        owner TEXT NOT NULL,
        lease_until BIGINT NOT NULL)"];

/// Login throttling instead of account locks (`lockout.rs`): failures per key (an account at a
/// source, a source, a session's step-up) with the refusal they lead to; failed logins for
/// unknown names counted per time bucket and source; the storm alerts raised. The old locks
/// go: an outsider could lock any account with them.
const V8: &[&str] = &[
    "DROP TABLE login_failures",
    "CREATE TABLE login_throttle (
        key TEXT PRIMARY KEY,
        user_name TEXT,
        source TEXT,
        failures BIGINT NOT NULL,
        last_failure BIGINT NOT NULL,
        blocked_until BIGINT NOT NULL,
        throttled_at BIGINT)",
    "CREATE INDEX login_throttle_by_user ON login_throttle (user_name)",
    "CREATE INDEX login_throttle_by_throttled ON login_throttle (throttled_at)",
    "CREATE TABLE login_unknown (
        bucket BIGINT NOT NULL,
        source TEXT NOT NULL,
        failures BIGINT NOT NULL,
        PRIMARY KEY (bucket, source))",
    "CREATE TABLE login_storms (
        bucket BIGINT PRIMARY KEY,
        accounts BIGINT NOT NULL,
        sources BIGINT NOT NULL)",
];

/// The two-person rule (`privileges.rs`): changes that give somebody power, and whether a
/// second administrator has confirmed them.
const V9: &[&str] = &[
    "CREATE TABLE privilege_changes (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        group_name TEXT,
        state TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        decided_by TEXT,
        decided_at BIGINT,
        reason TEXT)",
    "CREATE INDEX privilege_changes_by_state ON privilege_changes (state, requested_at)",
    "CREATE INDEX privilege_changes_by_user ON privilege_changes (user_name, state)",
];

/// Re-enrollment and restores: a superseded device certificate is kept (until it expires) with
/// what superseded it, so its agent can be told `device_superseded`; the restore generation
/// starts at 1 (`restore.rs`).
const V10: &[&str] = &[
    "ALTER TABLE device_certs ADD COLUMN superseded_at BIGINT",
    "ALTER TABLE device_certs ADD COLUMN superseded_by TEXT",
    "INSERT INTO meta (key, value) VALUES ('restore_generation', '1')",
];

/// Every step, in order; `version` is the position plus one.
pub(crate) const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "initial",
        sql: Sql::Both(V1),
    },
    Step {
        version: 2,
        name: "devices",
        sql: Sql::Both(V2),
    },
    Step {
        version: 3,
        name: "audit_search",
        sql: Sql::Both(V3),
    },
    Step {
        version: 4,
        name: "syslog_cursor",
        sql: Sql::Both(V4),
    },
    Step {
        version: 5,
        name: "device_events",
        sql: Sql::Both(V5),
    },
    Step {
        version: 6,
        name: "login_failures",
        sql: Sql::Both(V6),
    },
    Step {
        version: 7,
        name: "webhooks",
        sql: Sql::Both(V7),
    },
    Step {
        version: 8,
        name: "login_throttle",
        sql: Sql::Both(V8),
    },
    Step {
        version: 9,
        name: "privilege_changes",
        sql: Sql::Both(V9),
    },
    Step {
        version: 10,
        name: "superseded_certs",
        sql: Sql::Both(V10),
    },
];
