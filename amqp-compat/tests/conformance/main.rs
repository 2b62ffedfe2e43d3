//! AMQP conformance: the same scenarios run through lapin 4.12 against a real RabbitMQ 3.10
//! and through amqp-compat's routing engine; every observation must agree (or be a documented
//! difference in `docs/amqp-mapping.md` §11), and RabbitMQ's answers must be the ones each
//! scenario states. Needs `rabbitmq-server` (`bash scripts/setup --rabbitmq`): a missing broker
//! fails the test with that command.

mod engine_backend;
mod lapin_backend;
mod nats_backend;
mod ops;
mod scenarios;

use std::time::Instant;

use engine_backend::EngineBackend;
use lapin_backend::LapinBackend;
use nats_backend::NatsBackend;
use nats_tests::{NatsServer, RabbitMq};
use ops::{Backend, Expect, Obs, Scenario};

/// Differences between RabbitMQ and amqp-compat that are accepted, with the reason, as listed
/// in docs/amqp-mapping.md §11: (scenario, step index, reason).
const KNOWN: &[(&str, usize, &str)] = &[];

/// The same for amqp-compat on nats-server (docs/amqp-mapping.md §11, "NATS backend").
const KNOWN_NATS: &[(&str, usize, &str)] = &[
    (
        "nack requeue redelivers with redelivered=true; reject drops; a bad tag closes the channel later",
        8,
        "a nacked message is redelivered after the next new one, not at the queue's head",
    ),
    (
        "nack requeue redelivers with redelivered=true; reject drops; a bad tag closes the channel later",
        10,
        "the same requeue order, seen from the next delivery",
    ),
    (
        "x-max-length(-bytes) with drop-head, reject-publish, reject-publish-dlx; maxlen dead letters",
        18,
        "drop-head removal by the stream is silent: no maxlen dead letters",
    ),
    (
        "x-max-length(-bytes) with drop-head, reject-publish, reject-publish-dlx; maxlen dead letters",
        27,
        "JetStream's max_bytes counts headers and subject too, RabbitMQ only bodies",
    ),
    (
        "x-max-length(-bytes) with drop-head, reject-publish, reject-publish-dlx; maxlen dead letters",
        28,
        "no maxlen dead letters (as step 18)",
    ),
    (
        "x-max-length(-bytes) with drop-head, reject-publish, reject-publish-dlx; maxlen dead letters",
        29,
        "no maxlen dead letters (as step 18)",
    ),
    (
        "x-max-priority: higher first, capped at the maximum, FIFO within; no effect without it",
        16,
        "x-max-priority is not built yet: FIFO",
    ),
];

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
    let mut lapin = LapinBackend::new(broker.url(), "lapin+RabbitMQ");
    let nats = NatsServer::jetstream();
    let mut problems = Vec::new();
    let mut nats_problems = Vec::new();
    let mut compared = 0;
    for (n, scenario) in scenarios::all().into_iter().enumerate() {
        let mut engine = EngineBackend::default();
        let theirs = run(&mut lapin, &scenario).await;
        let ours = run(&mut engine, &scenario).await;
        // amqp-compat on nats-server: one namespace (topology bucket, streams, subjects) per
        // scenario, as each RabbitMQ scenario starts from its own names.
        let url = format!("{}?namespace=c{n}", nats.url());
        let mut on_nats = NatsBackend::new(url, "amqp-compat+nats");
        let nats_obs = run(&mut on_nats, &scenario).await;
        for (i, ((step, r), e)) in scenario
            .steps
            .iter()
            .zip(&theirs)
            .zip(&nats_obs)
            .enumerate()
        {
            compared += 1;
            if r != e
                && !KNOWN_NATS
                    .iter()
                    .any(|(s, n, _)| *s == scenario.name && *n == i)
            {
                nats_problems.push(format!(
                    "[{}] step {i} {:?}:\n    lapin+RabbitMQ: {r:?}\n    amqp-compat+nats: {e:?}",
                    scenario.name, step.op
                ));
            }
        }
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
    if !nats_problems.is_empty() {
        problems.push(format!(
            "amqp-compat on nats-server: {} differences:\n{}",
            nats_problems.len(),
            nats_problems.join("\n")
        ));
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
