//! Turning policy text into a validated `PolicySet`: parse, give each policy
//! its `@id`, reject templates, then validate strictly against the schema.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};

use crate::error::{Error, Problem};

/// Parses and validates `src`. Every policy in the result has passed strict
/// validation against `schema`.
pub(crate) fn load(src: &str, schema: &Schema) -> Result<PolicySet, Error> {
    let parsed = PolicySet::from_str(src).map_err(|errs| {
        Error::Syntax(
            errs.iter()
                .map(|e| Problem::from_diagnostic(e, src, None))
                .collect(),
        )
    })?;

    if let Some(id) = parsed
        .templates()
        .map(|t| t.annotation("id").unwrap_or(t.id().as_ref()).to_string())
        .min()
    {
        return Err(Error::Template { id });
    }

    let mut seen = HashSet::new();
    let mut renamed = Vec::new();
    for policy in parsed.policies() {
        let policy = match policy.annotation("id") {
            Some("") => {
                return Err(Error::EmptyId {
                    id: policy.id().to_string(),
                });
            }
            Some(id) => policy.new_id(PolicyId::new(id)),
            None => policy.clone(),
        };
        if !seen.insert(policy.id().to_string()) {
            return Err(Error::DuplicateId {
                id: policy.id().to_string(),
            });
        }
        renamed.push(policy);
    }
    let set = PolicySet::from_policies(renamed)
        .map_err(|e| Error::Internal(format!("could not rebuild the policy set: {e}")))?;

    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let mut problems: Vec<Problem> = result
            .validation_errors()
            .map(|e| Problem::from_diagnostic(e, src, Some(e.policy_id().to_string())))
            .collect();
        problems.sort_by_key(|p| p.line);
        return Err(Error::Schema(problems));
    }
    Ok(set)
}
