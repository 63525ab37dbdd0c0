//! Authorization: the one place that decides what a signed-in person may do and see.
//!
//! Every decision is Cedar's (`brevet-policy`): the elevation actions (`request`, `approve`,
//! `breakglass`) on a device, and the [`Permission`]s on the installation (`read_grants`,
//! `manage_people`, …). Handlers never look at group names; they ask this module. A denial is
//! [`Error::Forbidden`] naming the person, the Cedar action and the policy's explanation.
//!
//! What a person sees of records:
//! - requests and grants: everything with `read_requests` / `read_grants`; otherwise their own
//!   (with `read_own`) and those they may approve (the `approve` action on the record's device
//!   and role, as if their second factor were fresh, so that an approver sees the inbox before
//!   stepping up);
//! - devices: everything with `read_devices`; otherwise those they may request or approve a
//!   role on;
//! - a record someone may not see is answered as if it did not exist (`not_found`), so ids
//!   cannot be probed.

use brevet_policy::{Action, Permission, PermissionQuery, PrincipalKind, ServiceContext};
use brevet_proto::api::{DeviceView, GrantView, RequestView};
use brevet_proto::timefmt::hour_and_weekday;
use brevet_store::UserRecord;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;
use crate::decide::{Facts, decide};
use crate::views;

/// Whether `caller` holds `permission` now.
pub fn holds(app: &App, caller: &Caller, permission: Permission) -> bool {
    let now = app.clock.now();
    let mfa_age = caller.session.mfa_at.map(|t| now - t);
    user_holds(app, &caller.user, permission, mfa_age)
}

/// Whether the person `user` holds `permission`, with a second factor `mfa_age_seconds` old.
pub fn user_holds(
    app: &App,
    user: &UserRecord,
    permission: Permission,
    mfa_age_seconds: Option<i64>,
) -> bool {
    let (hour_utc, weekday) = hour_and_weekday(app.clock.now());
    let context = ServiceContext {
        mfa_age_seconds: mfa_age_seconds.unwrap_or(brevet_policy::NO_MFA),
        hour_utc,
        weekday: weekday.to_owned(),
    };
    let query = PermissionQuery {
        user: &user.name,
        groups: &user.groups,
        kind: PrincipalKind::Human,
        permission,
        context: &context,
    };
    app.policy.permits(&query).allowed
}

/// Refuses unless `caller` holds `permission`.
pub fn require(app: &App, caller: &Caller, permission: Permission) -> Result<(), Error> {
    if holds(app, caller, permission) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "`{}` may not {} (Cedar action `{}`): no policy permits it",
        caller.name(),
        describe(permission),
        permission.as_str()
    )))
}

/// What a permission lets one do, for error messages.
fn describe(p: Permission) -> &'static str {
    match p {
        Permission::ReadOwn => "read their own requests and grants",
        Permission::ReadRequests => "read everybody's requests",
        Permission::ReadGrants => "read everybody's grants",
        Permission::ReadDevices => "list every device",
        Permission::ReadFindings => "read the fleet's findings",
        Permission::ReadAudit => "read the audit trail",
        Permission::ReadUsers => "list people",
        Permission::ReadMetrics => "read the metrics",
        Permission::ManagePeople => "administer people",
        Permission::ManageDevices => "administer devices",
        Permission::ManageRequests => "cancel others' requests or revoke others' grants",
        Permission::ManageNotifications => "manage notifications",
        Permission::ManageRestore => "acknowledge a restore",
    }
}

/// Whether `caller` could approve a request for `role` on `device` once stepped up.
pub fn could_approve(
    app: &App,
    caller: &Caller,
    device: &DeviceView,
    role: &str,
    duration_seconds: u64,
    ticket: Option<&str>,
) -> bool {
    let facts = Facts {
        device,
        role,
        duration_seconds,
        ticket,
        mfa_age_seconds: Some(0),
    };
    decide(app, &caller.user, Action::Approve, &facts).allowed
}

/// Whether `caller` may see `request`.
pub async fn sees_request(app: &App, caller: &Caller, r: &RequestView) -> Result<bool, Error> {
    if r.user != caller.name() && !holds(app, caller, Permission::ReadRequests) {
        let device = app.store.device(&r.device).await?.map(views::device);
        return Ok(sees_request_on(app, caller, r, device.as_ref()));
    }
    Ok(sees_request_on(app, caller, r, None))
}

/// [`sees_request`] with the request's device already read.
pub fn sees_request_on(
    app: &App,
    caller: &Caller,
    r: &RequestView,
    device: Option<&DeviceView>,
) -> bool {
    if r.user == caller.name() && holds(app, caller, Permission::ReadOwn) {
        return true;
    }
    if holds(app, caller, Permission::ReadRequests) {
        return true;
    }
    r.user != caller.name()
        && device.is_some_and(|d| {
            could_approve(
                app,
                caller,
                d,
                &r.role,
                r.duration_seconds,
                r.ticket.as_deref(),
            )
        })
}

/// Whether `caller` may see `grant`.
pub async fn sees_grant(app: &App, caller: &Caller, g: &GrantView) -> Result<bool, Error> {
    if holds(app, caller, Permission::ReadGrants) {
        return Ok(true);
    }
    if g.user == caller.name() {
        return Ok(holds(app, caller, Permission::ReadOwn));
    }
    approves_grant(app, caller, g).await
}

/// Whether `caller` could approve the request behind `grant` (and so may revoke it).
pub async fn approves_grant(app: &App, caller: &Caller, g: &GrantView) -> Result<bool, Error> {
    let Some(device) = app.store.device(&g.device).await?.map(views::device) else {
        return Ok(false);
    };
    Ok(could_approve(
        app,
        caller,
        &device,
        &g.role,
        0,
        g.ticket.as_deref(),
    ))
}

/// The requests of `all` that `caller` may see, in order.
pub async fn visible_requests(
    app: &App,
    caller: &Caller,
    all: Vec<RequestView>,
) -> Result<Vec<RequestView>, Error> {
    let scope = Scope::of(app, caller, Permission::ReadRequests);
    scope
        .filter(app, caller, all, |r| {
            (
                &r.user,
                &r.device,
                &r.role,
                r.duration_seconds,
                r.ticket.as_deref(),
            )
        })
        .await
}

/// The grants of `all` that `caller` may see, in order.
pub async fn visible_grants(
    app: &App,
    caller: &Caller,
    all: Vec<GrantView>,
) -> Result<Vec<GrantView>, Error> {
    let scope = Scope::of(app, caller, Permission::ReadGrants);
    scope
        .filter(app, caller, all, |g| {
            (&g.user, &g.device, &g.role, 0, g.ticket.as_deref())
        })
        .await
}

/// What of a listing of requests or grants a person sees.
enum Scope {
    /// Everything (`read_requests` / `read_grants`).
    All,
    /// Their own (when `own`, i.e. `read_own`), and what they may approve.
    Mine { own: bool },
}

/// A record's holder, device, role, duration and ticket.
type Facets<'a> = (&'a String, &'a String, &'a String, u64, Option<&'a str>);

impl Scope {
    fn of(app: &App, caller: &Caller, everything: Permission) -> Scope {
        if holds(app, caller, everything) {
            Scope::All
        } else {
            Scope::Mine {
                own: holds(app, caller, Permission::ReadOwn),
            }
        }
    }

    async fn filter<T>(
        &self,
        app: &App,
        caller: &Caller,
        all: Vec<T>,
        facets: impl Fn(&T) -> Facets<'_>,
    ) -> Result<Vec<T>, Error> {
        let own = match self {
            Scope::All => return Ok(all),
            Scope::Mine { own } => *own,
        };
        let mut devices = DeviceCache::default();
        let mut out = Vec::new();
        for record in all {
            let (user, device, role, duration, ticket) = facets(&record);
            let visible = if user == caller.name() {
                own
            } else {
                match devices.get(app, device).await? {
                    Some(d) => could_approve(app, caller, d, role, duration, ticket),
                    None => false,
                }
            };
            if visible {
                out.push(record);
            }
        }
        Ok(out)
    }
}

/// The devices of `all` that `caller` may see: all of them with `read_devices`, otherwise
/// those on which some role may be requested or approved by them.
pub fn visible_devices(app: &App, caller: &Caller, all: Vec<DeviceView>) -> Vec<DeviceView> {
    if holds(app, caller, Permission::ReadDevices) {
        return all;
    }
    let now = app.clock.now();
    let mfa_age = caller.session.mfa_at.map(|t| now - t);
    all.into_iter()
        .filter(|device| {
            app.config.roles.keys().any(|role| {
                let facts = |mfa| Facts {
                    device,
                    role,
                    duration_seconds: 60,
                    ticket: None,
                    mfa_age_seconds: mfa,
                };
                decide(app, &caller.user, Action::Request, &facts(mfa_age)).allowed
                    || decide(app, &caller.user, Action::Approve, &facts(Some(0))).allowed
            })
        })
        .collect()
}

/// Devices looked up once per listing.
#[derive(Default)]
struct DeviceCache(std::collections::HashMap<String, Option<DeviceView>>);

impl DeviceCache {
    async fn get(&mut self, app: &App, name: &str) -> Result<Option<&DeviceView>, Error> {
        if !self.0.contains_key(name) {
            let d = app.store.device(name).await?.map(views::device);
            self.0.insert(name.to_owned(), d);
        }
        Ok(self.0.get(name).and_then(Option::as_ref))
    }
}
