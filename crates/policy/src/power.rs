//! Which groups and people the policy gives *power*: approving, breaking glass, letting
//! requests through unattended, or administering the installation.
//!
//! The server asks before a person is created or joins a group, because giving power needs a
//! second administrator's confirmation (two-person rule). The answer comes from reading the
//! policies, not from evaluating them, and errs towards "power": every `permit` whose action
//! scope can include a power action contributes every `Group` and `User` it names anywhere (in
//! its scope or its conditions), and one whose principal scope names no group or person at all
//! gives power to everybody. `forbid` policies only take power away and are ignored.

use std::collections::BTreeSet;

use cedar_policy::{ActionConstraint, Effect, EntityUid, PolicySet, PrincipalConstraint};

/// Actions and action groups whose permits give power.
const POWER_ACTIONS: &[&str] = &[
    "approve",
    "breakglass",
    "auto_approve",
    "elevation",
    "manage_people",
    "manage_devices",
    "manage_requests",
    "manage_notifications",
    "manage_restore",
    "administration",
];

/// What the policy gives power to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Power {
    /// Members of these groups may hold power.
    pub groups: BTreeSet<String>,
    /// These people may hold power whatever their groups.
    pub users: BTreeSet<String>,
    /// Some permit gives power without naming a group or person: everybody may hold it.
    pub everyone: bool,
    /// The actions some `permit` names (action groups expanded); `*` when one names none.
    pub permitted: BTreeSet<String>,
}

impl Power {
    pub(crate) fn of(policies: &PolicySet) -> Power {
        let mut power = Power::default();
        for policy in policies.policies() {
            if policy.effect() != Effect::Permit {
                continue;
            }
            power.note_permitted(&policy.action_constraint());
            if !gives_power(&policy.action_constraint()) {
                continue;
            }
            match policy.principal_constraint() {
                PrincipalConstraint::Any | PrincipalConstraint::Is(_) => power.everyone = true,
                PrincipalConstraint::In(uid)
                | PrincipalConstraint::Eq(uid)
                | PrincipalConstraint::IsIn(_, uid) => power.add(&uid),
            }
            if let Ok(json) = policy.to_json() {
                power.add_literals(&json);
            }
        }
        power
    }

    /// Whether a person named `user` in `groups` could hold power under this policy.
    pub fn grants(&self, user: &str, groups: &[String]) -> bool {
        self.everyone || self.users.contains(user) || groups.iter().any(|g| self.groups.contains(g))
    }

    /// Whether joining `group` could give power (to anybody).
    pub fn group_gives_power(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// Whether some `permit` could allow `action` (an action id such as `manage_people`).
    pub fn ever_permitted(&self, action: &str) -> bool {
        self.permitted.contains("*") || self.permitted.contains(action)
    }

    fn note_permitted(&mut self, actions: &ActionConstraint) {
        let mut add = |uid: &EntityUid| {
            let id = uid.id().unescaped();
            let members: &[&str] = match id {
                "elevation" => &["request", "approve", "breakglass", "auto_approve"],
                "administration" => &[
                    "manage_people",
                    "manage_devices",
                    "manage_requests",
                    "manage_notifications",
                    "manage_restore",
                ],
                "reading" => &[
                    "read_own",
                    "read_requests",
                    "read_grants",
                    "read_devices",
                    "read_findings",
                    "read_audit",
                    "read_users",
                    "read_metrics",
                ],
                other => &[other][..],
            };
            for m in members {
                self.permitted.insert((*m).to_owned());
            }
        };
        match actions {
            ActionConstraint::Any => {
                self.permitted.insert("*".to_owned());
            }
            ActionConstraint::Eq(uid) => add(uid),
            ActionConstraint::In(uids) => uids.iter().for_each(add),
        }
    }

    fn add(&mut self, uid: &EntityUid) {
        let id = uid.id().unescaped().to_owned();
        match uid.type_name().to_string().as_str() {
            "Group" => {
                self.groups.insert(id);
            }
            "User" => {
                self.users.insert(id);
            }
            _ => {}
        }
    }

    /// Every `{"type": "Group"|"User", "id": …}` entity reference in a policy's JSON form.
    fn add_literals(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let (Some(serde_json::Value::String(ty)), Some(serde_json::Value::String(id))) =
                    (map.get("type"), map.get("id"))
                {
                    match ty.as_str() {
                        "Group" => {
                            self.groups.insert(id.clone());
                        }
                        "User" => {
                            self.users.insert(id.clone());
                        }
                        _ => {}
                    }
                }
                for value in map.values() {
                    self.add_literals(value);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.add_literals(item);
                }
            }
            _ => {}
        }
    }
}

fn gives_power(actions: &ActionConstraint) -> bool {
    let named = |uid: &EntityUid| POWER_ACTIONS.contains(&uid.id().unescaped());
    match actions {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => named(uid),
        ActionConstraint::In(uids) => uids.iter().any(named),
    }
}

#[cfg(test)]
mod tests {
    use crate::{DEFAULT_POLICY, Engine};

    fn power(src: &str) -> super::Power {
        Engine::new(src).expect("valid").power().clone()
    }

    #[test]
    fn default_policy_gives_power_to_approvers_breakglass_and_admins() {
        let p = power(DEFAULT_POLICY);
        let groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
        assert_eq!(groups, ["admins", "approvers", "breakglass"]);
        assert!(!p.everyone);
        assert!(p.users.is_empty());
        let g = |gs: &[&str]| gs.iter().map(|g| g.to_string()).collect::<Vec<_>>();
        assert!(!p.grants("alice", &g(&["operators", "auditors"])));
        assert!(p.grants("bob", &g(&["operators", "approvers"])));
        assert!(p.group_gives_power("admins"));
        assert!(!p.group_gives_power("operators"));
        assert!(p.ever_permitted("manage_people") && p.ever_permitted("read_own"));
        assert!(!p.ever_permitted("auto_approve"));
        let old = power(
            r#"permit (principal in Group::"approvers", action == Action::"approve", resource);"#,
        );
        assert!(!old.ever_permitted("manage_people"), "{old:?}");
    }

    #[test]
    fn conditions_groups_people_and_open_permits_count() {
        let p = power(
            r#"
            @id("a") permit (principal in Group::"approvers", action == Action::"approve", resource)
              when { principal in Group::"senior" };
            @id("b") permit (principal == User::"root-of-all", action in Action::"administration", resource);
            @id("c") permit (principal in Group::"readers", action == Action::"read_audit", resource);
            @id("d") forbid (principal in Group::"interns", action, resource);
            @id("e") permit (principal in Group::"night", action == Action::"auto_approve", resource);
            "#,
        );
        let groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
        assert_eq!(groups, ["approvers", "night", "senior"]);
        assert!(p.users.contains("root-of-all"));
        assert!(!p.everyone);
        assert!(power(r#"permit (principal, action == Action::"breakglass", resource);"#).everyone);
        assert!(power(r#"permit (principal, action, resource);"#).everyone);
        assert!(
            !power(r#"permit (principal, action == Action::"request", resource);"#).everyone,
            "asking for elevation is not power"
        );
    }
}
