//! The engine: a validated policy set, evaluated against one query at a time.

use cedar_policy::{ActionConstraint, Authorizer, PolicySet};

use crate::decision::Decision;
use crate::error::Error;
use crate::power::Power;
use crate::query::{PermissionQuery, Query};
use crate::request::{self, Names};
use crate::{load, schema};

/// A validated policy set, ready to decide. `Send + Sync`; share it behind
/// an `Arc` and replace the whole engine to reload policy.
///
/// Cedar evaluates every policy of a set for every query, so the set is also kept split by
/// the actions a policy's scope can match: elevation decisions (a hot path) evaluate only the
/// policies that could apply to them, and the same for permissions. A policy whose scope names
/// no action is in both. The answers are the same as the whole set's: a policy whose action
/// scope cannot match the query's action can never be satisfied by it.
#[derive(Debug, Clone)]
pub struct Engine {
    policies: PolicySet,
    elevation: PolicySet,
    service: PolicySet,
    /// Whether some policy names an action group (`Action::"elevation"` …).
    action_groups: bool,
    names: Names,
    power: Power,
    authorizer: Authorizer,
}

impl Engine {
    /// Parses `policy_src` and validates it strictly against [`SCHEMA`](crate::SCHEMA).
    /// The error names the policy and line at fault.
    pub fn new(policy_src: &str) -> Result<Engine, Error> {
        let schema = schema::parse()?;
        let policies = load::load(policy_src, &schema)?;
        Ok(Engine {
            power: Power::of(&policies),
            elevation: subset(&policies, Family::Elevation)?,
            service: subset(&policies, Family::Service)?,
            action_groups: names_action_groups(&policies),
            policies,
            names: Names::new(&schema)?,
            authorizer: Authorizer::new(),
        })
    }

    /// Number of policies in the set.
    pub fn len(&self) -> usize {
        self.policies.num_of_policies()
    }

    /// The policies' ids (their `@id` annotation), sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The groups and people this policy gives power to (see [`Power`]).
    pub fn power(&self) -> &Power {
        &self.power
    }

    /// True when the set holds no policy (so everything is denied).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides `q`. Default deny: a query that cannot be evaluated is denied,
    /// with the reason in `errors`.
    pub fn decide(&self, q: &Query<'_>) -> Decision {
        self.evaluate(
            &self.elevation,
            request::build(&self.names, q, None, self.action_groups),
        )
    }

    /// Decides whether a person holds a [`Permission`](crate::Permission) on the
    /// installation. Default deny, as [`Engine::decide`].
    pub fn permits(&self, q: &PermissionQuery<'_>) -> Decision {
        self.evaluate(
            &self.service,
            request::build_permission(&self.names, q, None, self.action_groups),
        )
    }

    fn evaluate(
        &self,
        policies: &PolicySet,
        built: Result<(cedar_policy::Request, cedar_policy::Entities), String>,
    ) -> Decision {
        let (request, entities) = match built {
            Ok(built) => built,
            Err(e) => return Decision::failed(e),
        };
        let response = self.authorizer.is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let mut policies: Vec<String> = diagnostics.reason().map(|id| id.to_string()).collect();
        policies.sort();
        Decision {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            policies,
            errors: diagnostics.errors().map(|e| e.to_string()).collect(),
        }
    }
}

/// The two families of actions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `request`, `approve`, `breakglass`, `auto_approve` on a device.
    Elevation,
    /// The reading and administration actions on the installation.
    Service,
}

fn family_of(action_id: &str) -> Family {
    match action_id {
        "request" | "approve" | "breakglass" | "auto_approve" | "elevation" => Family::Elevation,
        _ => Family::Service,
    }
}

/// Whether any policy names an action group, in its scope or its conditions.
fn names_action_groups(all: &PolicySet) -> bool {
    fn mentions(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(map) => {
                let group = matches!(
                    (map.get("type"), map.get("id")),
                    (Some(serde_json::Value::String(t)), Some(serde_json::Value::String(id)))
                        if t == "Action" && ["elevation", "reading", "administration"].contains(&id.as_str())
                );
                group || map.values().any(mentions)
            }
            serde_json::Value::Array(items) => items.iter().any(mentions),
            _ => false,
        }
    }
    // A policy that cannot be shown as JSON is taken to name one (the safe side).
    all.policies()
        .any(|p| p.to_json().map_or(true, |j| mentions(&j)))
}

/// The policies whose action scope can match an action of `family`.
fn subset(all: &PolicySet, family: Family) -> Result<PolicySet, Error> {
    let matches = |c: ActionConstraint| match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => family_of(uid.id().unescaped()) == family,
        ActionConstraint::In(uids) => uids
            .iter()
            .any(|uid| family_of(uid.id().unescaped()) == family),
    };
    PolicySet::from_policies(
        all.policies()
            .filter(|p| matches(p.action_constraint()))
            .cloned(),
    )
    .map_err(|e| Error::Internal(format!("could not split the policy set: {e}")))
}

/// Validates a policy file as [`Engine::new`] would, and counts its policies.
/// For `brevet policy check FILE`.
pub fn check(policy_src: &str) -> Result<usize, Error> {
    Engine::new(policy_src).map(|engine| engine.len())
}
