//! `brevet-agent run` and the other commands.
//!
//! The run loop keeps enforcement off the network path: the main thread owns the [`Agent`]
//! (journal, drop-ins, timers) and only ever waits on a channel, with a timeout set by the next
//! grant deadline. A poller thread long-polls the server and passes grant lists in; an outbox
//! thread delivers acknowledgements, reports and the record of use (`grant.used`,
//! `grant.changes` events from the durable queue, one batch at a time) in order, retrying while
//! the server is away. A dead or unreachable server therefore never delays an expiry, and never
//! extends a grant.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use brevet_proto::agent::{Ack, DeviceEvent, DeviceGrants, DeviceReport, Finding, Severity};
use brevet_proto::api::code::{DEVICE_DISABLED, DEVICE_SUPERSEDED, RESTORE_PENDING};
use brevet_proto::timefmt::rfc3339;

use crate::cli::{Command, Mode, RunArgs};
use crate::clock::{Clock, SystemClock};
use crate::enforce::Agent;
use crate::enroll::{self, StateDir};
use crate::linux::{LinuxSystem, SandboxSystem};
use crate::net::{POLL_WAIT_SECS, Server};
use crate::root::Root;
use crate::scan::{self, Allowlist};
use crate::system::System;
use crate::verify::Verifier;
use crate::{Error, Result, reconcile};

/// The longest the loop sleeps without looking at its timers.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Most events in one upload.
const EVENT_BATCH: usize = 200;
/// How often a superseded agent asks again (in case the server was wrong).
const SUPERSEDED_RETRY: Duration = Duration::from_secs(60);
/// How often the agent asks while the server waits for a restore to be acknowledged.
const RESTORE_PENDING_RETRY: Duration = Duration::from_secs(5);
/// How often the error of a superseded enrollment is repeated in the log.
const SUPERSEDED_REMINDER: Duration = Duration::from_secs(600);

pub fn main(command: Command) -> Result<u8> {
    match command {
        Command::Enroll {
            server,
            ca,
            token,
            state_dir,
        } => {
            let ca_pem = std::fs::read_to_string(&ca).map_err(|e| Error::file("read", &ca, e))?;
            let state = StateDir::open(&state_dir)?;
            if state.is_enrolled() {
                return Err(Error::Usage(format!(
                    "`{}` is already enrolled; to enroll again, stop the agent and remove enrollment.json there",
                    state_dir.display()
                )));
            }
            let e = enroll::enroll(&server, &ca_pem, &token, &state, SystemClock.now())?;
            println!(
                "enrolled as `{}` with {}; certificate valid until {}",
                e.device,
                e.server,
                rfc3339(e.cert_not_after)
            );
            Ok(0)
        }
        Command::Scan { root, json } => {
            let root = root.map(Root::new).unwrap_or_else(Root::real);
            let findings = scan::scan(&root, &Allowlist::default());
            if json {
                let text = serde_json::to_string_pretty(&findings)
                    .map_err(|e| Error::State(e.to_string()))?;
                println!("{text}");
            } else if findings.is_empty() {
                println!("no standing privilege found");
            } else {
                for f in &findings {
                    println!(
                        "{:<8} {:<22} {}\n         {}\n         fix: {}",
                        format!("{:?}", f.severity).to_lowercase(),
                        f.kind,
                        f.subject,
                        f.detail,
                        f.remediation
                    );
                }
            }
            Ok(0)
        }
        Command::Run(args) => {
            let root = args.root.clone().map(Root::new).unwrap_or_else(Root::real);
            if root.is_real() {
                let system = LinuxSystem::new();
                for (name, path) in system.tools() {
                    match path {
                        Some(p) => log(&format!("{name}: {}", p.display())),
                        None => log(&format!("{name}: {}", crate::linux::tools::missing(name))),
                    }
                }
                run(args, root, system)
            } else {
                let system = SandboxSystem::new(root.clone());
                run(args, root, system)
            }
        }
        Command::Help | Command::Version => Ok(0),
    }
}

enum Event {
    Grants(DeviceGrants),
    Offline(String),
    /// The server refuses this device: an administrator disabled it.
    Disabled(String),
    /// The server says another enrollment of this device name superseded this agent's
    /// certificate (`device_superseded`).
    Superseded(String),
    /// The server waits for an administrator to acknowledge a restore from backup
    /// (`restore_pending`); grants held run to their own end.
    RestorePending(String),
    AcksDelivered(usize),
    ReportDelivered(usize),
    EventsDelivered(usize),
}

enum Outgoing {
    Acks(Vec<Ack>),
    Report(DeviceReport, usize),
    Events(Vec<DeviceEvent>),
}

fn run<S: System + 'static>(args: RunArgs, root: Root, system: S) -> Result<u8> {
    let state = StateDir::open(&args.state_dir)?;
    if !state.is_enrolled() {
        return Err(Error::Usage(format!(
            "`{}` holds no enrollment; run `brevet-agent enroll` first",
            args.state_dir.display()
        )));
    }
    let creds = state.load()?;
    let verifier = Verifier::new(creds.enrollment.device.clone(), creds.grant_public_key()?);
    let device = creds.enrollment.device.clone();
    let mut agent = Agent::new(root.clone(), &args.state_dir, SystemClock, system, verifier)?
        .with_kill_processes(args.kill_processes && root.is_real())
        .with_watch(args.watch.clone())
        .with_system_users(args.allow_system_users.clone());
    agent.set_enrollment(&creds.enrollment.enrollment_id)?;
    if let Some(mark) = agent.superseded_mark() {
        log_error(&superseded_message(&mark.message, &args.state_dir, None));
    }
    // Before any network: whatever expired while the agent was down goes first.
    agent.startup()?;
    log(&format!(
        "device `{device}`, root {}, mode {:?}, time bounds in drop-ins: {}",
        if root.is_real() {
            "/".to_owned()
        } else {
            format!("{:?}", args.root)
        },
        args.mode,
        agent.time_bounds()
    ));
    log(&format!(
        "commands under grants are read from {}; changes are watched in {}",
        crate::usage::SUDO_LOG,
        agent.watched().join(", ")
    ));

    let server = Arc::new(RwLock::new(creds.server()?));
    let (events, inbox) = mpsc::channel();
    let (outbox, outgoing) = mpsc::channel();
    spawn_poller(state, creds, server.clone(), events.clone());
    spawn_outbox(server, outgoing, events);
    main_loop(&mut agent, &args, inbox, outbox)
}

fn main_loop<C: Clock, S: System>(
    agent: &mut Agent<C, S>,
    args: &RunArgs,
    inbox: Receiver<Event>,
    outbox: Sender<Outgoing>,
) -> Result<u8> {
    let allow = Allowlist {
        users: args.allow_users.clone(),
        sudoers_files: args.allow_sudoers.clone(),
        breakglass_user: args.breakglass_user.clone(),
    };
    let quarantine = args.state_dir.join("quarantine");
    let mut acks_in_flight = 0;
    let mut events_in_flight = 0;
    let mut report_in_flight = false;
    let mut last_reconcile: Option<Instant> = None;
    let mut offline = false;
    let mut disabled = false;
    let mut restore_pending = false;
    let mut superseded_told: Option<Instant> = None;
    let mut told = BTreeSet::new();
    loop {
        if last_reconcile.is_none_or(|t| t.elapsed() >= Duration::from_secs(args.reconcile_secs)) {
            reconcile_and_scan(
                agent,
                args.mode,
                &allow,
                &quarantine,
                &outbox,
                &mut report_in_flight,
                &mut told,
            )?;
            last_reconcile = Some(Instant::now());
        }
        if acks_in_flight == 0 && !agent.pending_acks().is_empty() {
            acks_in_flight = agent.pending_acks().len();
            let _ = outbox.send(Outgoing::Acks(agent.pending_acks().to_vec()));
        }
        if events_in_flight == 0 && agent.pending_event_count() > 0 {
            let batch = agent.pending_events(EVENT_BATCH);
            events_in_flight = batch.len();
            let _ = outbox.send(Outgoing::Events(batch));
        }
        let wait = match agent.next_deadline() {
            Some(at) => Duration::from_millis(
                (at * 1000 - agent.clock().now_ms()).clamp(0, MAX_WAIT.as_millis() as i64) as u64,
            ),
            None => MAX_WAIT,
        };
        match inbox.recv_timeout(wait) {
            Ok(Event::Grants(list)) => {
                if offline {
                    log("server reachable again");
                    offline = false;
                }
                if disabled {
                    log("the server accepts this device again");
                    disabled = false;
                }
                if restore_pending {
                    log("the server delivers grants again (the restore was acknowledged)");
                    restore_pending = false;
                }
                if agent.superseded_mark().is_some() && superseded_told.is_some() {
                    log_error(
                        "the server answers this superseded enrollment again; nothing is \
                         applied until this agent is enrolled again",
                    );
                    superseded_told = None;
                }
                log_acks(&agent.sync(&list)?);
                let report = reconcile::reconcile(agent)?;
                if !report.removed_orphans.is_empty()
                    || !report.restored.is_empty()
                    || !report.quarantined.is_empty()
                {
                    log(&format!(
                        "reconciled: removed {:?}, restored {:?}, quarantined {:?}",
                        report.removed_orphans, report.restored, report.quarantined
                    ));
                }
            }
            Ok(Event::Offline(why)) => {
                if !offline {
                    log(&format!(
                        "server unreachable ({why}); enforcing from the journal"
                    ));
                    offline = true;
                }
            }
            Ok(Event::Disabled(why)) => {
                // Fail closed: a device shut out by its server keeps no privilege it granted.
                let acks = agent.remove_all("device disabled")?;
                if !disabled || !acks.is_empty() {
                    log(&format!(
                        "the server refuses this device ({why}); {} grant(s) removed",
                        acks.len()
                    ));
                }
                log_acks(&acks);
                disabled = true;
            }
            Ok(Event::Superseded(why)) => {
                // Fail closed: another enrollment holds this device name now.
                let acks = agent.superseded(&why)?;
                let remind = superseded_told.is_none_or(|t| t.elapsed() >= SUPERSEDED_REMINDER);
                if remind || !acks.is_empty() {
                    log_error(&superseded_message(&why, &args.state_dir, Some(acks.len())));
                    superseded_told = Some(Instant::now());
                }
                log_acks(&acks);
            }
            Ok(Event::RestorePending(why)) => {
                if !restore_pending {
                    log(&format!(
                        "the server waits for an administrator to acknowledge a restore from \
                         backup ({why}); grants held run to their own end, nothing new is \
                         applied; asking again every {} s",
                        RESTORE_PENDING_RETRY.as_secs()
                    ));
                    restore_pending = true;
                }
            }
            Ok(Event::AcksDelivered(n)) => {
                agent.acks_delivered(n)?;
                acks_in_flight = 0;
            }
            Ok(Event::ReportDelivered(drift)) => {
                agent.drift_delivered(drift)?;
                report_in_flight = false;
            }
            Ok(Event::EventsDelivered(n)) => {
                // The queue moved on in memory; if its position could not be saved the events
                // are sent again after a restart, and the server ignores them.
                if let Err(e) = agent.events_delivered(n) {
                    log(&format!("event queue: {e}"));
                }
                events_in_flight = 0;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::State("agent threads stopped".into()));
            }
        }
        log_acks(&agent.tick()?);
    }
}

fn reconcile_and_scan<C: Clock, S: System>(
    agent: &mut Agent<C, S>,
    mode: Mode,
    allow: &Allowlist,
    quarantine: &Path,
    outbox: &Sender<Outgoing>,
    report_in_flight: &mut bool,
    told: &mut BTreeSet<String>,
) -> Result<()> {
    reconcile::reconcile(agent)?;
    let mut findings = scan::scan(agent.root(), allow);
    if mode == Mode::Enforce {
        // Never undo a Brevet group grant that is in force, and leave low-severity groups
        // (e.g. `adm`, which system accounts need) to the report.
        let granted: Vec<String> = agent
            .journal()
            .active
            .values()
            .flat_map(|e| {
                e.groups
                    .iter()
                    .map(|g| format!("group-member:{g}:{}", e.doc.user))
            })
            .collect();
        let actionable: Vec<Finding> = findings
            .iter()
            .filter(|f| f.severity >= Severity::Medium && !granted.contains(&f.id))
            .cloned()
            .collect();
        let system = agent.system();
        let (done, errors) =
            scan::remediate(agent.root(), &actionable, allow, quarantine, &|u, g| {
                system.group_remove(u, g)
            });
        for d in &done {
            log(&format!("enforce: {d:?}"));
        }
        for e in errors {
            let e = e.to_string();
            if told.insert(e.clone()) {
                log(&format!("enforce: {e}"));
            }
        }
        if !done.is_empty() {
            findings = scan::scan(agent.root(), allow);
        }
    }
    if !*report_in_flight {
        let drift: Vec<Finding> = agent.pending_drift().to_vec();
        let report = DeviceReport {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            agent_time: rfc3339(agent.clock().now()),
            mode: format!("{mode:?}").to_lowercase(),
            findings,
            drift: drift.clone(),
        };
        *report_in_flight = outbox.send(Outgoing::Report(report, drift.len())).is_ok();
    }
    Ok(())
}

/// Long-polls for grants; renews the certificate at two thirds of its life.
fn spawn_poller(
    state: StateDir,
    mut creds: enroll::Credentials,
    server: Arc<RwLock<Server>>,
    events: Sender<Event>,
) {
    std::thread::spawn(move || {
        let mut cursor = String::new();
        let mut backoff = Duration::from_millis(500);
        loop {
            match enroll::renew_if_due(&state, &mut creds, SystemClock.now()) {
                Ok(true) => match creds.server() {
                    Ok(s) => {
                        log("client certificate renewed");
                        if let Ok(mut w) = server.write() {
                            *w = s;
                        }
                    }
                    Err(e) => log(&format!("renewed certificate does not load: {e}")),
                },
                Ok(false) => {}
                Err(e) => log(&format!("certificate renewal failed (will retry): {e}")),
            }
            let current = match server.read() {
                Ok(s) => s.clone(),
                Err(_) => return,
            };
            match current.grants(&cursor, POLL_WAIT_SECS) {
                Ok(list) => {
                    backoff = Duration::from_millis(500);
                    cursor = list.cursor.clone();
                    if events.send(Event::Grants(list)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let (event, pause) = poll_failure(&e, backoff);
                    if events.send(event).is_err() {
                        return;
                    }
                    std::thread::sleep(pause);
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
            }
        }
    });
}

/// What a failed long-poll means, and how long to wait before the next: a refusal the server
/// states (`device_disabled`, `device_superseded`, `restore_pending`) or being offline.
fn poll_failure(e: &Error, backoff: Duration) -> (Event, Duration) {
    match e {
        Error::Api { code, message, .. } if code == DEVICE_DISABLED => {
            (Event::Disabled(message.clone()), backoff)
        }
        Error::Api { code, message, .. } if code == DEVICE_SUPERSEDED => {
            (Event::Superseded(message.clone()), SUPERSEDED_RETRY)
        }
        Error::Api { code, message, .. } if code == RESTORE_PENDING => (
            Event::RestorePending(message.clone()),
            RESTORE_PENDING_RETRY,
        ),
        _ => (Event::Offline(e.to_string()), backoff),
    }
}

/// The error logged when the enrollment was superseded: what happened, what was done, what to do.
fn superseded_message(why: &str, state_dir: &Path, removed: Option<usize>) -> String {
    let done = match removed {
        Some(n) => format!("{n} grant(s) removed now; "),
        None => String::new(),
    };
    format!(
        "this device was enrolled again elsewhere: the server says this agent's certificate is \
         superseded ({why}). {done}no grant is applied with this identity any more. Re-enroll \
         this agent: stop it, move `{}` aside, run `brevet-agent enroll` with a new token, start \
         it again",
        state_dir.join("enrollment.json").display()
    )
}

/// Delivers acknowledgements and reports in order, retrying until the server takes them.
fn spawn_outbox(server: Arc<RwLock<Server>>, outgoing: Receiver<Outgoing>, events: Sender<Event>) {
    std::thread::spawn(move || {
        for item in outgoing {
            let mut backoff = Duration::from_millis(250);
            loop {
                let current = match server.read() {
                    Ok(s) => s.clone(),
                    Err(_) => return,
                };
                let (result, event) = match &item {
                    Outgoing::Acks(acks) => (
                        current.acks(acks).map(drop),
                        Event::AcksDelivered(acks.len()),
                    ),
                    Outgoing::Report(r, drift) => {
                        (current.report(r).map(drop), Event::ReportDelivered(*drift))
                    }
                    Outgoing::Events(events) => (
                        current.events(events).map(|answer| {
                            for r in answer.refused {
                                log(&format!(
                                    "server refused event {} ({}: {})",
                                    r.id, r.code, r.message
                                ));
                            }
                        }),
                        Event::EventsDelivered(events.len()),
                    ),
                };
                match result {
                    Ok(_) => {
                        if events.send(event).is_err() {
                            return;
                        }
                        break;
                    }
                    // A refusal that retrying cannot fix (bad request): drop it, say so.
                    Err(Error::Api {
                        status,
                        code,
                        message,
                    }) if (400..500).contains(&status) && status != 401 && status != 403 => {
                        log(&format!(
                            "server refused an upload ({code}: {message}); dropping it"
                        ));
                        let _ = events.send(event);
                        break;
                    }
                    Err(_) => {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                    }
                }
            }
        }
    });
}

fn log_acks(acks: &[Ack]) {
    for a in acks {
        let why = a
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let message = a.detail["message"]
            .as_str()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        log(&format!(
            "grant {} {:?}{why}{message}",
            a.grant_id, a.action
        ));
    }
}

fn log(msg: &str) {
    eprintln!("brevet-agent: {msg}");
}

/// A condition an administrator must act on.
fn log_error(msg: &str) {
    eprintln!("brevet-agent: error: {msg}");
}

#[cfg(test)]
mod tests;
