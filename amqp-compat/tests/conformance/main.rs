//! AMQP conformance: the same scenarios run through lapin 4.12 against a real RabbitMQ 3.10
//! and through amqp-compat's routing engine; every observation must agree (or be a documented
//! difference in `docs/amqp-mapping.md` §11), and RabbitMQ's answers must be the ones each
//! scenario states. Needs `rabbitmq-server` (`bash scripts/setup --rabbitmq`): a missing broker
//! fails the test with that command.

mod engine_backend;
mod lapin_backend;
mod ops;
mod scenarios;

use std::time::Instant;

use engine_backend::EngineBackend;
use lapin_backend::LapinBackend;
use nats_tests::RabbitMq;
use ops::{Backend, Expect, Obs, Scenario};

/// Differences between RabbitMQ and amqp-compat that are accepted, with the reason, as listed
/// in docs/amqp-mapping.md §11: (scenario, step index, reason).
const KNOWN: &[(&str, usize, &str)] = &[];

async fn run(backend: &mut impl Backend, scenario: &Scenario) -> Vec<Obs> {
    let mut out = Vec::with_capacity(scenario.steps.len());
    for step in &scenario.steps {
        out.push(backend.run(&step.op).await);
    }
    backend.finish().await;
    out
}

fn expected(expect: &Expect, obs: &Obs) -> bool {
    match expect {
        Expect::Any => true,
        Expect::Is(want) => want == obs,
        Expect::Code(code) => matches!(obs, Obs::Error { code: c, .. } if c == code),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_and_the_routing_engine_agree() {
    let started = Instant::now();
    let broker = tokio::task::spawn_blocking(RabbitMq::start)
        .await
        .expect("broker start");
    eprintln!("RabbitMQ {} up in {:?}", broker.node(), started.elapsed());
    let mut lapin = LapinBackend::new(broker.url());
    let mut problems = Vec::new();
    let mut compared = 0;
    for scenario in scenarios::all() {
        let mut engine = EngineBackend::default();
        let theirs = run(&mut lapin, &scenario).await;
        let ours = run(&mut engine, &scenario).await;
        // CONFORMANCE_SHOW=<scenario name prefix> prints every observation of those scenarios.
        if std::env::var("CONFORMANCE_SHOW").is_ok_and(|p| scenario.name.starts_with(&p)) {
            for (i, (r, e)) in theirs.iter().zip(&ours).enumerate() {
                eprintln!(
                    "[{}] {i}: {:?}\n  {}: {r:?}\n  {}: {e:?}",
                    scenario.name,
                    scenario.steps[i].op,
                    lapin.name(),
                    engine.name()
                );
            }
        }
        for (i, ((step, r), e)) in scenario.steps.iter().zip(&theirs).zip(&ours).enumerate() {
            if !expected(&step.expect, r) {
                problems.push(format!(
                    "[{}] step {i} {:?}: RabbitMQ observed {r:?}, the scenario expects {:?}",
                    scenario.name, step.op, step.expect
                ));
            }
            if *e == Obs::NotApplicable {
                continue;
            }
            compared += 1;
            if r != e && !KNOWN.iter().any(|(s, n, _)| *s == scenario.name && *n == i) {
                problems.push(format!(
                    "[{}] step {i} {:?}:\n    {}: {r:?}\n    {}: {e:?}",
                    scenario.name,
                    step.op,
                    lapin.name(),
                    engine.name()
                ));
            }
        }
    }
    eprintln!(
        "{compared} observations compared in {:?}",
        started.elapsed()
    );
    drop(broker);
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
