//! Decision latency. Prints p50/p99; asserts nothing about time, since test
//! machines and debug builds vary. For real numbers:
//! `cargo test --release -p brevet-policy --test latency -- --nocapture`.

mod common;

use std::time::Instant;

use brevet_policy::{Action, DEFAULT_POLICY, Engine};
use common::Case;

#[test]
fn decision_latency() {
    let extra = r#"
@id("forbid-prod-weekend")
forbid (principal, action in Action::"elevation", resource)
when { resource.hasTag("env") && resource.getTag("env") == "prod" &&
       (context.weekday == "sat" || context.weekday == "sun") };
@id("forbid-long") forbid (principal, action in Action::"elevation", resource) when { context.duration_seconds > 7200 };
"#;
    let engine = Engine::new(&format!("{DEFAULT_POLICY}\n{extra}")).expect("valid");
    let mut case = Case::new(
        "alice",
        &["staff", "operators", "sre", "oncall", "eu"],
        Action::Request,
    )
    .tag("env", "prod")
    .tag("owner", "platform")
    .tag("tier", "1");
    case.device_groups = vec!["web".into(), "eu-west".into(), "linux".into()];

    const N: usize = 2000;
    let mut times = Vec::with_capacity(N);
    let mut allowed = 0;
    for _ in 0..N {
        let start = Instant::now();
        let d = engine.decide(&case.query());
        times.push(start.elapsed());
        allowed += usize::from(d.allowed);
    }
    assert_eq!(
        allowed, N,
        "the query is allowed, so the loop measured real work"
    );
    times.sort();
    let p = |q: f64| times[((N as f64 * q) as usize).min(N - 1)];
    println!(
        "decision latency over {N} runs: p50 {:?}, p99 {:?}, max {:?}",
        p(0.50),
        p(0.99),
        times[N - 1]
    );
}
