//! The Cedar schema that every policy is validated against.

use crate::error::Error;

/// The Cedar schema, in Cedar's human-readable schema syntax.
pub const SCHEMA: &str = include_str!("brevet.cedarschema");

/// Parses [`SCHEMA`]. It is a constant, so failure is a bug in this crate.
pub(crate) fn parse() -> Result<cedar_policy::Schema, Error> {
    cedar_policy::Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Error::Internal(format!("the built-in schema does not parse: {e}")))
}
