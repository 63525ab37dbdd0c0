//! People: creating them, their groups, enabling and disabling them — and the two-person rule.
//!
//! Giving somebody power (a group the policy names in an approve, break-glass, auto-approve or
//! administration permit, or an account the policy names itself; `brevet_policy::Power`) needs
//! a second administrator. While another enabled person holds `manage_people`, such a change is
//! recorded `pending` and has no effect until a second administrator confirms it with a fresh
//! second factor (`privilege.confirmed`); neither the one who asked nor the person concerned may
//! confirm. On an installation with a single administrator (a fresh `init`, the quickstart,
//! scripted set-ups) the change takes effect at once but stays `unconfirmed`: it raises
//! `alert.privilege_unconfirmed`, goes to every notification channel, is listed by `brevet
//! report`, and a second administrator can confirm it or reject it (which takes it back).
//!
//! Disabling a person ends their sessions, revokes their live grants and cancels their pending
//! requests in the same transaction. Leaving a group asks the policy again about their pending
//! requests.

use brevet_policy::Permission;
use brevet_proto::api::{PrivilegeView, UserCreated, UserView};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::{Holder, PrivilegeRecord, PrivilegeState, Tx, UserRecord};
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::{Caller, step_up};
use crate::authz;

/// Whether a change that gives power waits for a second administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Another enabled person holds `manage_people`: the change waits (`pending`).
    TwoPerson,
    /// Nobody else could confirm: the change takes effect, `unconfirmed` and alerted.
    SingleAdmin,
}

impl Rule {
    fn state(self) -> PrivilegeState {
        match self {
            Rule::TwoPerson => PrivilegeState::Pending,
            Rule::SingleAdmin => PrivilegeState::Unconfirmed,
        }
    }
}

/// `brevet user add NAME [--group G]…`.
pub async fn create(
    app: &App,
    caller: &Caller,
    name: &str,
    groups: &[String],
) -> Result<UserCreated, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    let name = validate::new_person_name(name)?;
    let mut groups = groups.to_vec();
    for g in &groups {
        validate::group_name(g)?;
    }
    groups.sort();
    groups.dedup();
    let power = app.policy.power();
    let rule = rule(app, caller).await?;
    let account_power = power.everyone || power.users.contains(name);
    let (powered, plain): (Vec<String>, Vec<String>) = groups
        .iter()
        .cloned()
        .partition(|g| power.group_gives_power(g));
    let effective = match rule {
        Rule::SingleAdmin => groups.clone(),
        Rule::TwoPerson => plain,
    };
    // An account the policy itself names waits disabled until a second administrator confirms.
    let enabled = rule == Rule::SingleAdmin || !account_power;
    let (record, password, totp_uri) =
        crate::init::new_account(&app.totp_key, &*app.clock, name, &effective, enabled).await?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if tx.user(name).await?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "user `{name}` already exists"
        )));
    }
    tx.insert_user(&record).await?;
    tx.audit(
        "user.created",
        caller.name(),
        name,
        json!({ "groups": effective, "enabled": enabled }),
        now,
    )
    .await?;
    let mut privileges = Vec::new();
    if account_power {
        privileges.push(record_change(&mut tx, caller, name, None, rule, now).await?);
    }
    for g in &powered {
        privileges.push(record_change(&mut tx, caller, name, Some(g), rule, now).await?);
    }
    tx.commit().await?;
    Ok(UserCreated {
        name: name.to_owned(),
        password,
        totp_uri,
        groups: effective,
        privileges: privileges.iter().map(view).collect(),
    })
}

/// `brevet user enable|disable NAME`.
pub async fn set_enabled(
    app: &App,
    caller: &Caller,
    name: &str,
    enabled: bool,
) -> Result<UserView, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::user_name(name)?;
    if !enabled && name == caller.name() {
        return Err(Error::Invalid("you cannot disable your own account".into()));
    }
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if tx.user(name).await?.is_none() {
        return Err(Error::NotFound(format!("no user `{name}`")));
    }
    if enabled
        && let Some(p) = tx
            .lock_open_privilege_changes(name)
            .await?
            .into_iter()
            .find(|p| p.group.is_none() && p.state == PrivilegeState::Pending)
    {
        return Err(Error::Forbidden(format!(
            "the account `{name}` gives power under the policy and waits for a second \
             administrator: `brevet privilege confirm {}`",
            p.id
        )));
    }
    tx.set_user_enabled(name, enabled).await?;
    let mut revoked = Vec::new();
    let mut cancelled = Vec::new();
    if enabled {
        // Enabling is also how an administrator lifts a lock after failed logins.
        tx.clear_login_failures(name).await?;
    } else {
        // Nothing a disabled person was given stays live, and nothing they asked for can be
        // granted later.
        tx.revoke_user_sessions(name, now).await?;
        let of = Holder::User(name);
        let reason = "user disabled";
        revoked = crate::grants::revoke_live(&mut tx, of, reason, caller.name(), now).await?;
        cancelled =
            crate::requests::cancel_pending(&mut tx, of, reason, caller.name(), now).await?;
    }
    let kind = if enabled {
        "user.enabled"
    } else {
        "user.disabled"
    };
    let revoked_ids: Vec<&str> = revoked.iter().map(|(id, _)| id.as_str()).collect();
    tx.audit(
        kind,
        caller.name(),
        name,
        json!({ "grants_revoked": revoked_ids, "requests_cancelled": cancelled }),
        now,
    )
    .await?;
    tx.commit().await?;
    for (_, device) in &revoked {
        app.grant_changed(device);
    }
    user(app, name).await
}

/// `brevet user group add|remove NAME GROUP`.
pub async fn change_group(
    app: &App,
    caller: &Caller,
    name: &str,
    group: &str,
    add: bool,
) -> Result<UserView, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::user_name(name)?;
    validate::group_name(group)?;
    let rule = if add && app.policy.power().group_gives_power(group) {
        Some(rule(app, caller).await?)
    } else {
        None
    };
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let Some(before) = tx.user(name).await? else {
        return Err(Error::NotFound(format!("no user `{name}`")));
    };
    if add {
        if before.groups.iter().any(|g| g == group) {
            tx.commit().await?;
            return user(app, name).await;
        }
        let open = tx.lock_open_privilege_changes(name).await?;
        if let Some(p) = open
            .iter()
            .find(|p| p.group.as_deref() == Some(group) && p.state == PrivilegeState::Pending)
        {
            return Err(Error::Conflict(format!(
                "`{name}` joining `{group}` already waits for a second administrator: `brevet \
                 privilege confirm {}`",
                p.id
            )));
        }
        if rule != Some(Rule::TwoPerson) {
            tx.add_user_group(name, group).await?;
            tx.audit(
                "user.group_added",
                caller.name(),
                name,
                json!({ "group": group }),
                now,
            )
            .await?;
        }
        if let Some(rule) = rule {
            record_change(&mut tx, caller, name, Some(group), rule, now).await?;
        }
    } else {
        if tx.remove_user_group(name, group).await? {
            tx.audit(
                "user.group_removed",
                caller.name(),
                name,
                json!({ "group": group }),
                now,
            )
            .await?;
        }
        // A membership that was still waiting is withdrawn with it.
        for p in tx.lock_open_privilege_changes(name).await? {
            if p.group.as_deref() == Some(group) {
                let reason = "the group was removed";
                decide(&mut tx, caller, &p, PrivilegeState::Rejected, reason, now).await?;
            }
        }
        left_group(app, &mut tx, name, now).await?;
    }
    tx.commit().await?;
    user(app, name).await
}

/// After `name` left a group inside `tx`: their pending requests are asked about again.
async fn left_group(app: &App, tx: &mut Tx, name: &str, now: i64) -> Result<(), Error> {
    if let Some(after) = tx.user(name).await? {
        crate::requests::reevaluate_pending(app, tx, &after, now).await?;
    }
    Ok(())
}

/// `GET /v1/privileges[?state=S]`.
pub async fn list(
    app: &App,
    caller: &Caller,
    state: Option<&str>,
) -> Result<Vec<PrivilegeView>, Error> {
    authz::require(app, caller, Permission::ReadUsers)?;
    let state = state
        .map(|s| {
            PrivilegeState::parse(s).ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid state `{}`: expected pending, unconfirmed, confirmed or rejected",
                    s.chars().take(32).collect::<String>().escape_debug()
                ))
            })
        })
        .transpose()?;
    Ok(app
        .store
        .privilege_changes(state, 1000)
        .await?
        .iter()
        .map(view)
        .collect())
}

/// `brevet privilege confirm ID`: a second administrator, with a fresh second factor, confirms
/// a change (a pending one takes effect now).
pub async fn confirm(
    app: &App,
    caller: &mut Caller,
    id: &str,
    totp: Option<&str>,
) -> Result<PrivilegeView, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::id("privilege change id", id)?;
    step_up(app, caller, totp, "confirming a privilege change").await?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let p = open_change(&mut tx, id).await?;
    if p.requested_by == caller.name() {
        return Err(Error::SeparationOfDuties(format!(
            "you asked for change `{id}`: a second administrator must confirm it"
        )));
    }
    if p.user == caller.name() {
        return Err(Error::SeparationOfDuties(format!(
            "change `{id}` gives you power: another administrator must confirm it"
        )));
    }
    if p.state == PrivilegeState::Pending {
        match &p.group {
            Some(g) => {
                tx.add_user_group(&p.user, g).await?;
                tx.audit(
                    "user.group_added",
                    caller.name(),
                    &p.user,
                    json!({ "group": g, "privilege_change": p.id }),
                    now,
                )
                .await?;
            }
            None => {
                tx.set_user_enabled(&p.user, true).await?;
                tx.audit(
                    "user.enabled",
                    caller.name(),
                    &p.user,
                    json!({ "privilege_change": p.id }),
                    now,
                )
                .await?;
            }
        }
    }
    decide(&mut tx, caller, &p, PrivilegeState::Confirmed, "", now).await?;
    tx.commit().await?;
    fetch(app, id).await
}

/// `brevet privilege reject ID --reason …`: an administrator refuses a change. A pending one
/// never takes effect; an unconfirmed one is taken back (the membership removed, or the account
/// disabled with its grants revoked).
pub async fn reject(
    app: &App,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> Result<PrivilegeView, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::id("privilege change id", id)?;
    let reason = validate::reason(reason)?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let p = open_change(&mut tx, id).await?;
    let mut revoked = Vec::new();
    if p.state == PrivilegeState::Unconfirmed {
        match &p.group {
            Some(g) => {
                if tx.remove_user_group(&p.user, g).await? {
                    tx.audit(
                        "user.group_removed",
                        caller.name(),
                        &p.user,
                        json!({ "group": g, "privilege_change": p.id }),
                        now,
                    )
                    .await?;
                }
                left_group(app, &mut tx, &p.user, now).await?;
            }
            None => {
                tx.set_user_enabled(&p.user, false).await?;
                tx.revoke_user_sessions(&p.user, now).await?;
                let of = Holder::User(&p.user);
                let why = "privilege change rejected";
                revoked = crate::grants::revoke_live(&mut tx, of, why, caller.name(), now).await?;
                crate::requests::cancel_pending(&mut tx, of, why, caller.name(), now).await?;
                tx.audit(
                    "user.disabled",
                    caller.name(),
                    &p.user,
                    json!({ "privilege_change": p.id }),
                    now,
                )
                .await?;
            }
        }
    }
    decide(&mut tx, caller, &p, PrivilegeState::Rejected, reason, now).await?;
    tx.commit().await?;
    for (_, device) in &revoked {
        app.grant_changed(device);
    }
    fetch(app, id).await
}

/// Whether changes that give power wait for a second administrator: yes while another enabled
/// person holds `manage_people`.
async fn rule(app: &App, caller: &Caller) -> Result<Rule, Error> {
    for u in app.store.users().await? {
        if u.enabled
            && u.name != caller.name()
            && authz::user_holds(app, &u, Permission::ManagePeople, Some(0))
        {
            return Ok(Rule::TwoPerson);
        }
    }
    Ok(Rule::SingleAdmin)
}

/// Records a change that gives `user` power, audited and (unconfirmed) alerted.
async fn record_change(
    tx: &mut Tx,
    caller: &Caller,
    user: &str,
    group: Option<&str>,
    rule: Rule,
    now: i64,
) -> Result<PrivilegeRecord, Error> {
    record(tx, caller.name(), user, group, rule, now).await
}

/// Records that `actor` (the quickstart) gave `user` the power of `group` with nobody to
/// confirm it: in effect, `unconfirmed`, alerted.
pub async fn record_unconfirmed(
    tx: &mut Tx,
    actor: &str,
    user: &str,
    group: &str,
    now: i64,
) -> Result<(), Error> {
    record(tx, actor, user, Some(group), Rule::SingleAdmin, now).await?;
    Ok(())
}

async fn record(
    tx: &mut Tx,
    actor: &str,
    user: &str,
    group: Option<&str>,
    rule: Rule,
    now: i64,
) -> Result<PrivilegeRecord, Error> {
    let p = PrivilegeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user: user.to_owned(),
        group: group.map(str::to_owned),
        state: rule.state(),
        requested_by: actor.to_owned(),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        reason: None,
    };
    tx.insert_privilege_change(&p).await?;
    let data = json!({
        "user": user, "group": group, "state": p.state.as_str(), "requested_by": p.requested_by,
    });
    tx.audit("privilege.requested", actor, &p.id, data.clone(), now)
        .await?;
    if rule == Rule::SingleAdmin {
        tracing::warn!(%user, ?group, "privilege change in effect without a second administrator");
        tx.audit("alert.privilege_unconfirmed", "brevetd", &p.id, data, now)
            .await?;
    }
    Ok(p)
}

/// Closes change `p` as `to`, audited.
async fn decide(
    tx: &mut Tx,
    caller: &Caller,
    p: &PrivilegeRecord,
    to: PrivilegeState,
    reason: &str,
    now: i64,
) -> Result<(), Error> {
    let reason = (!reason.is_empty()).then_some(reason);
    if !tx
        .decide_privilege_change(&p.id, p.state, to, caller.name(), now, reason)
        .await?
    {
        return Err(Error::Conflict(format!(
            "privilege change `{}` was decided concurrently",
            p.id
        )));
    }
    let kind = match to {
        PrivilegeState::Confirmed => "privilege.confirmed",
        _ => "privilege.rejected",
    };
    let data = json!({
        "user": p.user, "group": p.group, "was": p.state.as_str(), "reason": reason,
        "requested_by": p.requested_by,
    });
    tx.audit(kind, caller.name(), &p.id, data, now).await?;
    Ok(())
}

async fn open_change(tx: &mut Tx, id: &str) -> Result<PrivilegeRecord, Error> {
    let p = tx
        .lock_privilege_change(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no privilege change `{id}`")))?;
    if p.state.is_open() {
        Ok(p)
    } else {
        Err(Error::Conflict(format!(
            "privilege change `{id}` is already {}",
            p.state.as_str()
        )))
    }
}

async fn fetch(app: &App, id: &str) -> Result<PrivilegeView, Error> {
    app.store
        .privilege_change(id)
        .await?
        .as_ref()
        .map(view)
        .ok_or_else(|| Error::NotFound(format!("no privilege change `{id}`")))
}

/// A person as the API shows them, with their open privilege changes.
pub async fn user(app: &App, name: &str) -> Result<UserView, Error> {
    let u = app
        .store
        .user(name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user `{name}`")))?;
    let open = open_of(app, name).await?;
    Ok(user_view(&u, open))
}

/// Everybody, with their open privilege changes.
pub async fn users(app: &App, caller: &Caller) -> Result<Vec<UserView>, Error> {
    authz::require(app, caller, Permission::ReadUsers)?;
    let mut open = app.store.privilege_changes(None, 10_000).await?;
    open.retain(|p| p.state.is_open());
    Ok(app
        .store
        .users()
        .await?
        .iter()
        .map(|u| {
            let mine = open.iter().filter(|p| p.user == u.name).map(view).collect();
            user_view(u, mine)
        })
        .collect())
}

async fn open_of(app: &App, name: &str) -> Result<Vec<PrivilegeView>, Error> {
    let open = app.store.open_privilege_changes(name).await?;
    Ok(open.iter().map(view).collect())
}

fn user_view(u: &UserRecord, privileges: Vec<PrivilegeView>) -> UserView {
    UserView {
        name: u.name.clone(),
        groups: u.groups.clone(),
        enabled: u.enabled,
        created_at: rfc3339(u.created_at),
        privileges,
    }
}

pub fn view(p: &PrivilegeRecord) -> PrivilegeView {
    PrivilegeView {
        id: p.id.clone(),
        user: p.user.clone(),
        group: p.group.clone(),
        state: p.state.as_str().to_owned(),
        requested_by: p.requested_by.clone(),
        requested_at: rfc3339(p.requested_at),
        decided_by: p.decided_by.clone(),
        decided_at: p.decided_at.map(rfc3339),
        reason: p.reason.clone(),
    }
}
