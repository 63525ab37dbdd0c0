//! `brevetd`, the Brevet control plane: HTTPS API, Cedar policy, approvals with step-up MFA,
//! signed grants, expiry, and the hash-chained audit trail.
//!
//! Layout: [`init`] creates a data directory; [`serve`] runs the API ([`http`]) and the
//! [`sweeper`]; the lifecycle rules live in `requests`, `grants` and `auth`; the device side in
//! `enroll` and `devices` (mutual-TLS identity), `delivery` (long-poll, acknowledgements),
//! `reports` and `alerts`; [`clock`] makes time a parameter. `main.rs` only parses arguments.

mod alerts;
pub mod app;
pub mod audit_checkpoints;
pub mod audit_key;
mod audit_proofs;
mod audit_tail;
mod auth;
mod authz;
mod breakglass;
pub mod clock;
pub mod config;
mod config_audit;
pub mod datadir;
pub mod db_url;
mod decide;
mod delivery;
pub mod demo_agent;
mod device_events;
mod devices;
mod edge;
pub mod enroll;
mod error;
mod forward;
mod grants;
mod hashing;
mod http;
pub mod init;
mod metrics;
mod metrics_listener;
pub mod offline;
mod people;
pub mod quickstart;
mod replicas;
mod reports;
mod requests;
mod restore;
pub mod serve;
pub mod sweeper;
mod throttle;
pub mod totp_key;
mod views;
mod webhooks;

pub use error::Error;
pub use http::ROUTES;
