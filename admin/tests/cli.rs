//! `nats-admin` run as a user would: the built binary, its output and exit codes, against a
//! 3-node cluster with a system account.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{app_client, disconnected_then_reconnected};
use nats_tests::{APP_USER, Cluster, SYS_USER, free_port};
use serde_json::Value;

/// Runs the binary with `args`, with the environment cleared of NATS settings.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_nats-admin"));
    for var in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_CA",
        "NATS_CONTEXT",
    ] {
        cmd.env_remove(var);
    }
    // Longer than the defaults: a loaded machine must not make a slow server look missing.
    cmd.args(["--timeout", "10s", "--quiet-period", "2s"])
        .args(args)
        .envs(env.iter().copied());
    cmd.output().await.expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 0, and the JSON on stdout.
fn ok_json(o: &Output) -> Value {
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Exit 1 with one line on stderr containing `needle`, nothing that looks like a panic.
fn one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_print_tables_and_json() {
    let cluster = Cluster::start(3);
    let url = cluster.sys_url();
    let s = ["-s", url.as_str()];

    let table = run(&[&s[..], &["server", "list"]].concat(), &[]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    for column in [
        "NAME",
        "VERSION",
        "UPTIME",
        "CONNS",
        "ROUTES",
        "MEM",
        "CPU",
        "SLOW",
        "META LEADER",
        "HEALTH",
    ] {
        assert!(text.contains(column), "{column} missing in\n{text}");
    }
    for name in ["n1", "n2", "n3"] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }

    // The same through the environment, as JSON.
    let list = ok_json(
        &run(
            &["--json", "server", "list"],
            &[
                ("NATS_URL", &cluster.node(1).url()),
                ("NATS_USER", SYS_USER.user),
                ("NATS_PASSWORD", SYS_USER.password),
            ],
        )
        .await,
    );
    let servers = list["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3, "{list}");
    assert_eq!(list["healthy"], true, "{list}");
    assert_eq!(list["missing"], Value::Array(vec![]));
    assert!(
        servers
            .iter()
            .all(|s| s["route_peers"].as_array().map(Vec::len) == Some(2))
    );

    let ping = ok_json(&run(&[&s[..], &["--json", "server", "ping"]].concat(), &[]).await);
    assert_eq!(ping["servers"].as_array().map(Vec::len), Some(3), "{ping}");

    // A context file supplies what flags and environment leave unset.
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("ctx.json");
    std::fs::write(
        &context,
        serde_json::json!({
            "url": cluster.node(2).url(),
            "user": SYS_USER.user,
            "password": SYS_USER.password,
        })
        .to_string(),
    )
    .unwrap();
    let path = context.to_str().unwrap();
    let ping = ok_json(&run(&["--context", path, "--json", "server", "ping"], &[]).await);
    assert_eq!(ping["servers"].as_array().map(Vec::len), Some(3), "{ping}");
    // By name, where the `nats` CLI keeps its contexts.
    let saved = dir.path().join("nats").join("context");
    std::fs::create_dir_all(&saved).unwrap();
    std::fs::copy(&context, saved.join("prod.json")).unwrap();
    let config_home = dir.path().to_str().unwrap();
    let ping = ok_json(
        &run(
            &["--context", "prod", "--json", "server", "ping"],
            &[("XDG_CONFIG_HOME", config_home)],
        )
        .await,
    );
    assert_eq!(ping["servers"].as_array().map(Vec::len), Some(3), "{ping}");
    let o = run(
        &["--context", "nope", "server", "ping"],
        &[("XDG_CONFIG_HOME", config_home)],
    )
    .await;
    one_line_error(&o, "cannot read the context file");

    let info = ok_json(&run(&[&s[..], &["--json", "server", "info", "n3"]].concat(), &[]).await);
    assert_eq!(info["data"]["server_name"], "n3", "{info}");

    let unknown = run(&[&s[..], &["server", "info", "n7"]].concat(), &[]).await;
    one_line_error(&unknown, "no server named \"n7\"");

    let health = run(&[&s[..], &["health"]].concat(), &[]).await;
    assert!(health.status.success(), "{}", stderr(&health));
    assert!(
        stdout(&health).contains("cluster healthy"),
        "{}",
        stdout(&health)
    );

    // A stream shows up in `streams` and its consumer in `consumers`.
    let js = jetstream::new(app_client(&cluster, 0, "cli-js").await);
    let stream = js
        .create_stream(jetstream::StreamConfig {
            num_replicas: 3,
            ..jetstream::StreamConfig::new("ORDERS", ["orders.>"])
        })
        .await
        .unwrap();
    stream
        .create_consumer(jetstream::ConsumerConfig::durable("billing"))
        .await
        .unwrap();
    js.publish("orders.1", "one").await.unwrap();
    let streams = ok_json(&run(&[&s[..], &["--json", "streams"]].concat(), &[]).await);
    assert_eq!(streams["missing"], Value::Array(vec![]), "{streams}");
    let orders = streams["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "ORDERS"))
        .unwrap_or_else(|| panic!("ORDERS missing in {streams}"));
    assert_eq!(orders["account"], "APP");
    assert_eq!(orders["messages"], 1);
    let table = run(&[&s[..], &["consumers", "ORDERS"]].concat(), &[]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    for column in [
        "CONSUMER",
        "ACK PENDING",
        "REDELIVERED",
        "LEADER",
        "billing",
    ] {
        assert!(
            stdout(&table).contains(column),
            "{column} in\n{}",
            stdout(&table)
        );
    }
    let consumers =
        ok_json(&run(&[&s[..], &["--json", "consumers", "ORDERS"]].concat(), &[]).await);
    assert_eq!(consumers["consumers"][0]["name"], "billing", "{consumers}");
    assert_eq!(consumers["consumers"][0]["num_pending"], 1, "{consumers}");
    let none = run(&[&s[..], &["consumers", "NOPE"]].concat(), &[]).await;
    one_line_error(&none, "no stream named \"NOPE\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_one_line_and_exit_1() {
    let cluster = Cluster::start(3);
    let port = cluster.node(0).port();

    let nobody = format!("nats://127.0.0.1:{}", free_port());
    one_line_error(
        &run(&["-s", &nobody, "server", "list"], &[]).await,
        "cannot reach",
    );

    let wrong = format!("nats://sys:wrong@127.0.0.1:{port}");
    one_line_error(
        &run(&["-s", &wrong, "server", "list"], &[]).await,
        "refused the credentials",
    );
    // The password is not echoed.
    assert!(!stderr(&run(&["-s", &wrong, "server", "list"], &[]).await).contains("wrong"));

    let app = format!("nats://127.0.0.1:{port}");
    let o = run(
        &[
            "-s",
            &app,
            "--user",
            APP_USER.user,
            "--password",
            APP_USER.password,
            "server",
            "list",
        ],
        &[],
    )
    .await;
    one_line_error(&o, "not the system account");
    assert!(stderr(&o).contains("\"APP\""), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn close_by_name_and_kick_disconnect_a_client_that_comes_back() {
    let cluster = Cluster::start(3);
    let url = cluster.sys_url();
    let s = ["-s", url.as_str()];
    let victim = app_client(&cluster, 1, "cli-victim").await;
    let mut events = victim.events();

    let listed = ok_json(
        &run(
            &[&s[..], &["--json", "connections", "--account", "APP"]].concat(),
            &[],
        )
        .await,
    );
    let row = listed["connections"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "cli-victim"))
        .unwrap_or_else(|| panic!("cli-victim missing in {listed}"))
        .clone();
    assert_eq!(row["server"], "n2");
    assert_eq!(row["account"], "APP");

    let closed = ok_json(
        &run(
            &[&s[..], &["--json", "connection", "close", "cli-victim"]].concat(),
            &[],
        )
        .await,
    );
    assert_eq!(closed.as_array().map(Vec::len), Some(1), "{closed}");
    disconnected_then_reconnected(&mut events, Duration::from_secs(20))
        .await
        .expect("closed by name, then back");

    // Back under a new cid; kick it by server and cid.
    let listed = ok_json(
        &run(
            &[
                &s[..],
                &["--json", "connection", "list", "--default-account", "APP"],
            ]
            .concat(),
            &[],
        )
        .await,
    );
    let row = listed
        .as_array()
        .and_then(|a| a.iter().find(|c| c["user_provided_name"] == "cli-victim"))
        .unwrap_or_else(|| panic!("cli-victim missing in {listed}"))
        .clone();
    let server = row["server"].as_str().unwrap().to_string();
    let cid = row["cid"].as_u64().unwrap().to_string();
    let kicked = run(&[&s[..], &["kick", &server, &cid]].concat(), &[]).await;
    assert!(kicked.status.success(), "{}", stderr(&kicked));
    disconnected_then_reconnected(&mut events, Duration::from_secs(20))
        .await
        .expect("kicked, then back");

    let gone = run(
        &[&s[..], &["connection", "close", "no-such-client"]].concat(),
        &[],
    )
    .await;
    one_line_error(&gone, "no connection named \"no-such-client\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_node_is_listed_missing_and_health_fails() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.meta_leader().expect("a meta leader");
    // Through node 0; kill a node that is neither it nor the meta leader, so the leader
    // still names the dead one.
    let victim = (1..3).find(|&i| cluster.node(i).name() != leader).unwrap();
    let victim_name = cluster.node(victim).name().to_string();
    let url = cluster.sys_url();
    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.kill_node(victim);
        cluster
    })
    .await
    .unwrap();
    let s = ["-s", url.as_str()];

    let table = run(&[&s[..], &["server", "list"]].concat(), &[]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains(&format!("missing (known, did not answer): {victim_name}")),
        "{}",
        stdout(&table)
    );
    let list = ok_json(&run(&[&s[..], &["--json", "server", "list"]].concat(), &[]).await);
    assert_eq!(list["servers"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["missing"], serde_json::json!([victim_name]));
    assert_eq!(list["healthy"], false);

    let info = run(&[&s[..], &["server", "info", &victim_name]].concat(), &[]).await;
    one_line_error(&info, &format!("server {victim_name} does not answer"));

    // A listing that would be partial is refused.
    let conns = run(&[&s[..], &["connection", "list"]].concat(), &[]).await;
    one_line_error(&conns, &format!("servers did not answer: {victim_name}"));

    let health = run(&[&s[..], &["health"]].concat(), &[]).await;
    one_line_error(&health, "not healthy");
    assert!(stdout(&health).contains("missing"), "{}", stdout(&health));
}
