//! `brevetd quickstart`: a working demo in one command — a data directory with demo people,
//! a device, and the server running on it.

use brevet_store::DeviceRecord;
use serde::Serialize;
use serde_json::json;

use crate::Error;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::init::{self, InitOutput};

/// The demo people: one requester, two approvers.
pub const DEMO_USERS: [(&str, &str); 3] = [
    ("alice", "operators"),
    ("bob", "approvers"),
    ("carol", "approvers"),
];
pub const DEMO_DEVICE: &str = "demo-01";

#[derive(Debug, Serialize)]
pub struct DemoUser {
    pub name: String,
    pub group: String,
    pub password: String,
    pub totp_uri: String,
}

#[derive(Debug, Serialize)]
pub struct Demo {
    pub init: InitOutput,
    /// Spent by the demo agent's enrollment right after the server starts.
    #[serde(skip)]
    pub enroll_token: String,
    pub users: Vec<DemoUser>,
    pub device: String,
}

/// Initialises `dir` with demo people and a device. Fails if `dir` is already initialised
/// (quickstart then just serves it).
pub async fn prepare(dir: &DataDir, listen: &str) -> Result<Demo, Error> {
    let init = init::init(dir, listen).await?;
    let config = Config::load(&dir.config())?;
    let store = brevet_store::Store::open(&dir.database_url(&config.server.db)).await?;
    let clock = SystemClock;
    let totp_key = crate::totp_key::load(dir)?
        .ok_or_else(|| Error::Config("init wrote no totp.key".into()))?;
    let policy = brevet_policy::Engine::new(&dir.read(&dir.policy())?)
        .map_err(|e| Error::Config(format!("the policy init wrote: {e}")))?;
    let mut users = Vec::new();
    for (name, group) in DEMO_USERS {
        let u = init::create_user(
            &store,
            &clock,
            &totp_key,
            name,
            &[group.to_owned()],
            "quickstart",
        )
        .await?;
        if policy.power().group_gives_power(group) {
            // One administrator and no second one to confirm: in effect, but listed.
            let mut tx = store.begin().await?;
            crate::people::record_unconfirmed(&mut tx, "quickstart", name, group, clock.now())
                .await?;
            tx.commit().await?;
        }
        users.push(DemoUser {
            name: name.into(),
            group: group.into(),
            password: u.password,
            totp_uri: u.totp_uri,
        });
    }
    let now = clock.now();
    let device = DeviceRecord {
        name: DEMO_DEVICE.into(),
        tags: [("env".to_owned(), "demo".to_owned())].into(),
        groups: vec!["demo".into()],
        os: "linux".into(),
        enabled: true,
        created_at: now,
    };
    let mut tx = store.begin().await?;
    tx.insert_device(&device).await?;
    tx.audit(
        "device.added",
        "quickstart",
        DEMO_DEVICE,
        json!({ "tags": device.tags }),
        now,
    )
    .await?;
    tx.commit().await?;
    let names: Vec<&str> = DEMO_USERS.iter().map(|(n, _)| *n).collect();
    crate::demo_agent::make_root(&dir.root.join("sandbox"), &names)?;
    let token = crate::enroll::issue_token(&store, now, DEMO_DEVICE, "quickstart").await?;
    store.close().await;
    Ok(Demo {
        enroll_token: token.token,
        init,
        users,
        device: DEMO_DEVICE.into(),
    })
}

/// The text quickstart prints after preparing the demo.
pub fn next_steps(demo: &Demo, brevet: &str) -> String {
    let ca = &demo.init.ca_file;
    let url = &demo.init.server_url;
    let mut out = format!(
        "Brevet is running at {url} (data in {}).\n\nPeople (save these now; they are not shown again):\n",
        demo.init.data_dir
    );
    let admin = [(
        crate::init::ADMIN,
        "admins",
        &demo.init.admin_password,
        &demo.init.totp_uri,
    )];
    for (name, group, pw, uri) in admin.into_iter().chain(
        demo.users
            .iter()
            .map(|u| (u.name.as_str(), u.group.as_str(), &u.password, &u.totp_uri)),
    ) {
        out.push_str(&format!(
            "  {name:<6} ({group:<9}) password {pw}\n         TOTP {uri}\n"
        ));
    }
    out.push_str(&format!(
        r#"
Add each TOTP URI to an authenticator app (or compute a code with `{brevet} totp --uri URI`). Then:

  export BREVET_SERVER={url} BREVET_CA={ca}
  echo PASSWORD | {brevet} login --user alice --password-stdin --totp CODE
  {brevet} request --device {dev} --role pkg-update --duration 30m --ticket CHG-1 --reason "patch openssl"
  echo PASSWORD | {brevet} login --user bob --password-stdin --totp CODE
  {brevet} requests --pending
  {brevet} approve REQUEST_ID
  {brevet} grants --active
  cat {data}/sandbox/etc/sudoers.d/brevet_*      # the sandboxed agent's drop-in (log: {data}/agent.log)
  {brevet} done GRANT_ID                          # and watch it disappear
"#,
        data = demo.init.data_dir,
        dev = demo.device
    ));
    out
}
