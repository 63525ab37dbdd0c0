//! Building the Cedar request and entity store for one query, in memory, with
//! no text parsing: a `User` with its groups as parents, a `Device` with its
//! device groups as parents and its tags as entity tags, and the context record.

use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};

use crate::error::Error;
use crate::query::{Action, Permission, PermissionQuery, Query};

/// Entity type names and action entities, built once per engine.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    user: EntityTypeName,
    group: EntityTypeName,
    device: EntityTypeName,
    device_group: EntityTypeName,
    role: EntityTypeName,
    /// The installation, resource of the [`Permission`] actions.
    brevet: EntityUid,
    /// Each action's entity as the schema declares it (with its action group as parent), so
    /// `action in Action::"elevation"` works. Indexed like [`Action::ALL`].
    actions: Vec<Entity>,
    /// Indexed like [`Permission::ALL`].
    permissions: Vec<Entity>,
}

impl Names {
    pub(crate) fn new(schema: &Schema) -> Result<Names, Error> {
        let ty = |name: &str| {
            EntityTypeName::from_str(name)
                .map_err(|e| Error::Internal(format!("bad entity type `{name}`: {e}")))
        };
        let declared = schema
            .action_entities()
            .map_err(|e| Error::Internal(format!("the schema's actions: {e}")))?;
        let action_ty = ty("Action")?;
        let find = |id: &str| {
            let uid = EntityUid::from_type_name_and_id(action_ty.clone(), EntityId::new(id));
            declared
                .get(&uid)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("the schema has no action `{id}`")))
        };
        Ok(Names {
            user: ty("User")?,
            group: ty("Group")?,
            device: ty("Device")?,
            device_group: ty("DeviceGroup")?,
            role: ty("Role")?,
            brevet: uid(&ty("Brevet")?, "brevet"),
            actions: Action::ALL
                .iter()
                .map(|a| find(a.as_str()))
                .collect::<Result<_, _>>()?,
            permissions: Permission::ALL
                .iter()
                .map(|p| find(p.as_str()))
                .collect::<Result<_, _>>()?,
        })
    }

    fn action(&self, a: Action) -> &Entity {
        // INVARIANT: `actions` is built from `Action::ALL`, in the same order.
        let i = Action::ALL.iter().position(|x| *x == a).unwrap_or(0);
        &self.actions[i]
    }

    fn permission(&self, p: Permission) -> &Entity {
        // INVARIANT: `permissions` is built from `Permission::ALL`, in the same order.
        let i = Permission::ALL.iter().position(|x| *x == p).unwrap_or(0);
        &self.permissions[i]
    }
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

/// The principal: a `User` with its `kind`, member of its groups.
fn principal(
    names: &Names,
    user: &str,
    groups: &[String],
    kind: crate::query::PrincipalKind,
) -> Result<(EntityUid, Entity), String> {
    let user_uid = uid(&names.user, user);
    let entity = Entity::new_with_tags(
        user_uid.clone(),
        [("kind".to_string(), string(kind.as_str()))],
        groups.iter().map(|g| uid(&names.group, g)),
        [],
    )
    .map_err(|e| format!("could not build user `{user}`: {e}"))?;
    Ok((user_uid, entity))
}

/// The request and entities for `q`. Errors are described for the log; the
/// caller turns them into a denial.
///
/// With `schema`, Cedar also checks that the entities and context conform to
/// it. The engine passes `None` to save the time: what we build is fixed by
/// this function, and a test checks it against the schema.
///
/// `groups`: whether the policies name action groups (`action in Action::"elevation"`), which
/// needs the action's entity with its parents; most policy sets do not, and leaving it out
/// saves a few microseconds a decision.
pub(crate) fn build(
    names: &Names,
    q: &Query<'_>,
    schema: Option<&Schema>,
    groups: bool,
) -> Result<(Request, Entities), String> {
    let device_uid = uid(&names.device, q.device);
    let kind = q.kind.as_str();
    let (user_uid, user) = principal(names, q.user, q.groups, q.kind)?;
    let device = Entity::new_with_tags(
        device_uid.clone(),
        [("os".to_string(), string(q.device_os))],
        q.device_groups.iter().map(|g| uid(&names.device_group, g)),
        q.device_tags.iter().map(|(k, v)| (k.clone(), string(v))),
    )
    .map_err(|e| format!("could not build device `{}`: {e}", q.device))?;
    let action = names.action(q.action);
    let entities = Entities::from_entities(
        [user, device]
            .into_iter()
            .chain(groups.then(|| action.clone())),
        schema,
    )
    .map_err(|e| format!("could not build entities: {e}"))?;

    let c = q.context;
    let t = &c.ticket;
    let ticket = RestrictedExpression::new_record([
        (
            "present".to_string(),
            RestrictedExpression::new_bool(t.present),
        ),
        ("id".to_string(), string(&t.id)),
        ("valid".to_string(), RestrictedExpression::new_bool(t.valid)),
        ("state".to_string(), string(&t.state)),
        (
            "assignee_matches".to_string(),
            RestrictedExpression::new_bool(t.assignee_matches),
        ),
        (
            "device_listed".to_string(),
            RestrictedExpression::new_bool(t.device_listed),
        ),
        (
            "window_ok".to_string(),
            RestrictedExpression::new_bool(t.window_ok),
        ),
    ])
    .map_err(|e| format!("could not build ticket: {e}"))?;
    let context = Context::from_pairs([
        (
            "role".to_string(),
            RestrictedExpression::new_entity_uid(uid(&names.role, q.role)),
        ),
        (
            "duration_seconds".to_string(),
            RestrictedExpression::new_long(c.duration_seconds),
        ),
        ("ticket".to_string(), ticket),
        (
            "mfa_age_seconds".to_string(),
            RestrictedExpression::new_long(c.mfa_age_seconds),
        ),
        (
            "hour_utc".to_string(),
            RestrictedExpression::new_long(c.hour_utc),
        ),
        ("weekday".to_string(), string(&c.weekday)),
        ("kind".to_string(), string(kind)),
    ])
    .map_err(|e| format!("could not build context: {e}"))?;

    let request = Request::new(user_uid, action.uid(), device_uid, context, schema)
        .map_err(|e| format!("could not build request: {e}"))?;
    Ok((request, entities))
}

/// The request and entities for a [`PermissionQuery`]: the person, their groups, and the
/// installation as resource.
pub(crate) fn build_permission(
    names: &Names,
    q: &PermissionQuery<'_>,
    schema: Option<&Schema>,
    groups: bool,
) -> Result<(Request, Entities), String> {
    let kind = q.kind.as_str();
    let (user_uid, user) = principal(names, q.user, q.groups, q.kind)?;
    let brevet = Entity::new_no_attrs(names.brevet.clone(), Default::default());
    let action = names.permission(q.permission);
    let entities = Entities::from_entities(
        [user, brevet]
            .into_iter()
            .chain(groups.then(|| action.clone())),
        schema,
    )
    .map_err(|e| format!("could not build entities: {e}"))?;
    let c = q.context;
    let context = Context::from_pairs([
        (
            "mfa_age_seconds".to_string(),
            RestrictedExpression::new_long(c.mfa_age_seconds),
        ),
        (
            "hour_utc".to_string(),
            RestrictedExpression::new_long(c.hour_utc),
        ),
        ("weekday".to_string(), string(&c.weekday)),
        ("kind".to_string(), string(kind)),
    ])
    .map_err(|e| format!("could not build context: {e}"))?;
    let request = Request::new(
        user_uid,
        action.uid(),
        names.brevet.clone(),
        context,
        schema,
    )
    .map_err(|e| format!("could not build request: {e}"))?;
    Ok((request, entities))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::query::{Context, PrincipalKind, Ticket};

    /// What `build` produces conforms to the schema, for every action and
    /// principal kind, with and without groups and tags.
    #[test]
    fn built_request_conforms_to_schema() {
        let schema = crate::schema::parse().expect("schema parses");
        let names = Names::new(&schema).expect("names parse");
        let groups = ["operators".to_string(), "a \"quoted\" name".to_string()];
        let tags = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let no_tags = BTreeMap::new();
        let context = Context {
            ticket: Ticket {
                present: true,
                id: "CHG-1".into(),
                ..Ticket::default()
            },
            ..Context::default()
        };
        for action in Action::ALL {
            for kind in [PrincipalKind::Human, PrincipalKind::Workload] {
                for (groups, tags) in [(&groups[..], &tags), (&[][..], &no_tags)] {
                    let q = Query {
                        user: "alice",
                        groups,
                        kind,
                        action,
                        device: "web-1",
                        device_groups: groups,
                        device_tags: tags,
                        device_os: "linux",
                        role: "admin",
                        context: &context,
                    };
                    if let Err(e) = build(&names, &q, Some(&schema), true) {
                        panic!("{action:?} {kind:?}: {e}");
                    }
                }
            }
        }
        let context = crate::query::ServiceContext::default();
        for permission in Permission::ALL {
            for kind in [PrincipalKind::Human, PrincipalKind::Workload] {
                let q = PermissionQuery {
                    user: "alice",
                    groups: &groups,
                    kind,
                    permission,
                    context: &context,
                };
                if let Err(e) = build_permission(&names, &q, Some(&schema), true) {
                    panic!("{permission:?} {kind:?}: {e}");
                }
            }
        }
    }
}
