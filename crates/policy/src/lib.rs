//! Brevet's policy engine: the Cedar schema, the default policy, and the
//! decision "may this principal do this action on this device?".
//!
//! Cedar model (no namespace, so policies write `User::"alice"`,
//! `Group::"operators"`, `Device::"web-1"`, `DeviceGroup::"test"`,
//! `Role::"admin"`, `Action::"request"`):
//!
//! - `User` (attribute `kind`: `"human"` | `"workload"`), member of `Group`s;
//! - `Device` (attribute `os`; string entity tags), member of `DeviceGroup`s;
//! - `Role`, named in the request context;
//! - actions `request`, `approve`, `breakglass`, `auto_approve` (group `elevation`) on a
//!   `Device`;
//! - `Brevet::"brevet"`, the installation, resource of the reading (`read_*`, group
//!   `reading`) and administration (`manage_*`, group `administration`) actions that
//!   [`Permission`] lists; [`Engine::permits`] decides those.
//!
//! [`SCHEMA`] holds the full schema. Policies are parsed and strictly
//! validated once, in [`Engine::new`]; [`Engine::decide`] builds the entities
//! for one query in memory and evaluates them. Each policy's `@id("...")`
//! annotation becomes its id, so a [`Decision`] names readable policies;
//! a policy without one keeps Cedar's positional id (`policy0`, `policy1`, ...).
//!
//! The crate is pure: no I/O, no clock. The caller supplies the time of day
//! and the ticket facts in [`Context`].

mod decision;
mod engine;
mod error;
mod load;
mod power;
mod query;
mod request;
mod schema;

pub use decision::Decision;
pub use engine::{Engine, check};
pub use error::{Error, Problem};
pub use power::Power;
pub use query::{
    Action, Context, NO_MFA, Permission, PermissionQuery, PrincipalKind, Query, ServiceContext,
    Ticket,
};
pub use schema::SCHEMA;

/// The policy `brevetd init` writes: operators may request, approvers may
/// approve, the break-glass group may break glass, nothing is auto-approved.
pub const DEFAULT_POLICY: &str = include_str!("default_policy.cedar");
