//! `brevet user …`, `group …` and `device …`: the administrator's accounts and devices.

use std::collections::BTreeMap;
use std::io::Write;

use brevet_proto::api::{AddDevice, DeviceView, PrivilegeView, UserCreated, UserView};
use brevet_proto::validate;

use super::Ctx;
use crate::cli::{DeviceCommand, GroupCommand, UserCommand};
use crate::error::Error;
use crate::output::{Fields, Table, joined, sanitize};

pub(crate) fn user(ctx: &mut Ctx<'_>, command: UserCommand) -> Result<(), Error> {
    match command {
        UserCommand::Add { name, groups } => {
            validate::new_person_name(&name)?;
            for g in &groups {
                validate::group_name(g)?;
            }
            let created = ctx.client()?.add_user(&name, &groups)?;
            ctx.show(&created, created_fields)?;
            if !ctx.global.json {
                eprintln!(
                    "brevet: the password and TOTP URI are shown only this once; hand them to {name} over a secure channel"
                );
            }
            Ok(())
        }
        UserCommand::List => {
            let users = ctx.client()?.users()?;
            ctx.show(users.as_slice(), user_table)
        }
        UserCommand::Disable { name } => set_enabled(ctx, &name, false),
        UserCommand::Enable { name } => set_enabled(ctx, &name, true),
    }
}

pub(crate) fn group(ctx: &mut Ctx<'_>, command: GroupCommand) -> Result<(), Error> {
    let (user, group, add) = match &command {
        GroupCommand::Add { user, group } => (user, group, true),
        GroupCommand::Remove { user, group } => (user, group, false),
    };
    validate::user_name(user)?;
    validate::group_name(group)?;
    let client = ctx.client()?;
    let u = if add {
        client.add_user_group(user, group)?
    } else {
        client.remove_user_group(user, group)?
    };
    ctx.show(&u, user_fields)
}

pub(crate) fn device(ctx: &mut Ctx<'_>, command: DeviceCommand) -> Result<(), Error> {
    match command {
        DeviceCommand::Add {
            name,
            tags,
            groups,
            os,
        } => {
            let body = build_device(&name, &tags, &groups, os)?;
            let d = ctx.client()?.add_device(&body)?;
            ctx.show(&d, device_fields)
        }
        DeviceCommand::List => {
            let ds = ctx.client()?.devices()?;
            ctx.show(ds.as_slice(), device_table)
        }
        DeviceCommand::EnrollToken { name } => {
            validate::device_name(&name)?;
            let t = ctx.client()?.enroll_token(&name)?;
            ctx.show(&t, |out, t| {
                writeln!(out, "{}", sanitize(&t.token))?;
                Ok(())
            })?;
            if !ctx.global.json {
                eprintln!(
                    "brevet: the token enrolls `{}` once, until {}; on the device run \
                     `brevet-agent enroll --server URL --ca FILE --token TOKEN`",
                    sanitize(&t.device),
                    sanitize(&t.expires_at)
                );
            }
            Ok(())
        }
        DeviceCommand::Disable { name } => set_device_enabled(ctx, &name, false),
        DeviceCommand::Enable { name } => set_device_enabled(ctx, &name, true),
    }
}

fn set_device_enabled(ctx: &mut Ctx<'_>, name: &str, enabled: bool) -> Result<(), Error> {
    validate::device_name(name)?;
    let d = ctx.client()?.set_device_enabled(name, enabled)?;
    ctx.show(&d, device_fields)
}

fn set_enabled(ctx: &mut Ctx<'_>, name: &str, enabled: bool) -> Result<(), Error> {
    validate::user_name(name)?;
    let u = ctx.client()?.set_user_enabled(name, enabled)?;
    ctx.show(&u, user_fields)
}

/// The `device add` body, validated; a tag key given twice is refused.
pub(crate) fn build_device(
    name: &str,
    tags: &[String],
    groups: &[String],
    os: Option<String>,
) -> Result<AddDevice, Error> {
    let name = validate::new_device_name(name)?;
    let mut map = BTreeMap::new();
    for t in tags {
        let (k, v) = validate::tag(t)?;
        if map.insert(k, v).is_some() {
            return Err(brevet_proto::Error::Invalid {
                field: "tag",
                value: crate::output::sanitize(t),
                reason: "names a key that is already given; give each key once".to_owned(),
            }
            .into());
        }
    }
    for g in groups {
        validate::group_name(g)?;
    }
    Ok(AddDevice {
        name,
        tags: map,
        groups: groups.to_vec(),
        os,
    })
}

fn created_fields(out: &mut dyn Write, u: &UserCreated) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("name", &u.name)
        .add("password", &u.password)
        .add("totp_uri", &u.totp_uri)
        .add("groups", joined(&u.groups));
    add_privileges(&mut f, &u.privileges);
    f.print(out)
}

fn user_fields(out: &mut dyn Write, u: &UserView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("name", &u.name)
        .add("enabled", u.enabled.to_string())
        .add("groups", joined(&u.groups))
        .add("created_at", &u.created_at);
    add_privileges(&mut f, &u.privileges);
    f.print(out)
}

/// One line per open privilege change: what waits for a second administrator.
fn add_privileges(f: &mut Fields, ps: &[PrivilegeView]) {
    for p in ps {
        let what = p.group.as_deref().unwrap_or("(account)");
        let note = match p.state.as_str() {
            "pending" => "waits for a second administrator, no effect yet",
            _ => "in effect, not confirmed by a second administrator",
        };
        f.add(
            "privilege",
            format!(
                "{what}: {} ({note}): brevet privilege confirm {}",
                p.state, p.id
            ),
        );
    }
}

fn user_table(out: &mut dyn Write, us: &[UserView]) -> Result<(), Error> {
    let mut t = Table::new(&["NAME", "ENABLED", "GROUPS", "CREATED"]);
    for u in us {
        t.row(vec![
            u.name.clone(),
            u.enabled.to_string(),
            joined(&u.groups),
            u.created_at.clone(),
        ]);
    }
    t.print(out, "no users")
}

fn tags(d: &DeviceView) -> String {
    let pairs: Vec<String> = d.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined(&pairs)
}

fn device_fields(out: &mut dyn Write, d: &DeviceView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("name", &d.name)
        .add("os", &d.os)
        .add("tags", tags(d))
        .add("groups", joined(&d.groups))
        .add("enabled", d.enabled.to_string())
        .add("created_at", &d.created_at);
    f.print(out)
}

fn device_table(out: &mut dyn Write, ds: &[DeviceView]) -> Result<(), Error> {
    let mut t = Table::new(&["NAME", "OS", "TAGS", "GROUPS", "ENABLED", "CREATED"]);
    for d in ds {
        t.row(vec![
            d.name.clone(),
            d.os.clone(),
            tags(d),
            joined(&d.groups),
            d.enabled.to_string(),
            d.created_at.clone(),
        ]);
    }
    t.print(out, "no devices")
}
