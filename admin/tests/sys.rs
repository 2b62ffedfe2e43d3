//! `SysClient` against a 3-node cluster with a system account: one answer per server for every
//! kind, missing servers named, the clear error outside the system account.

mod common;

use std::time::{Duration, Instant};

use admin::models::{
    Accountz, Connz, Gatewayz, HealthStatus, JetStreamInfo, Leafz, Routez, ServerStats, Subsz, Varz,
};
use admin::options::{
    AccountzOptions, HealthzOptions, LeafzOptions, NoOptions, ServerFilter, SubszOptions,
};
use admin::{AccountKind, AdminError, ConnzOptions, JszOptions, ServerKind, SysClient};
use common::{TIMING, sys_client};
use nats_tests::{APP_ACCOUNT, APP_USER, Cluster};

const NAMES: [&str; 3] = ["n1", "n2", "n3"];

fn names<T>(g: &admin::Gathered<T>) -> Vec<String> {
    g.replies.iter().map(|r| r.server.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_gets_one_answer_per_server() {
    let cluster = Cluster::start(3);
    let sys = sys_client(&cluster, 0).await;
    let known: Vec<String> = sys.known_servers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(known, NAMES);

    for kind in ServerKind::ALL {
        let g = sys
            .ping::<serde_json::Value>(kind, &NoOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(names(&g), NAMES, "{kind:?}");
        assert!(g.complete(), "{kind:?}: {g:?}");
    }

    // The typed models decode what the servers send.
    let varz = sys.varz().await.unwrap();
    assert_eq!(names(&varz), NAMES);
    for r in &varz.replies {
        let v: &Varz = &r.data;
        assert_eq!(v.server_name, r.server.name);
        assert!(
            !v.version.is_empty() && v.start.is_some() && v.mem > 0,
            "{v:?}"
        );
        assert_eq!(v.system_account.as_deref(), Some("SYS"));
        assert!(v.jetstream.meta.as_ref().and_then(|m| m.leader()).is_some());
    }
    let routez = sys.routez().await.unwrap();
    for r in &routez.replies {
        let data: &Routez = &r.data;
        let mut others: Vec<&str> = NAMES.into_iter().filter(|n| *n != r.server.name).collect();
        others.sort();
        assert_eq!(data.peers(), others);
    }
    let connz = sys.connz(&ConnzOptions::default()).await.unwrap();
    let _: &Connz = &connz.replies[0].data;
    assert_eq!(names(&connz), NAMES);
    let jsz = sys.jsz(&JszOptions::default()).await.unwrap();
    for r in &jsz.replies {
        let data: &JetStreamInfo = &r.data;
        assert!(!data.disabled);
        assert_eq!(data.meta_cluster.as_ref().map(|m| m.cluster_size), Some(3));
    }
    let health = sys.healthz(&HealthzOptions::default()).await.unwrap();
    assert!(health.replies.iter().all(|r| {
        let h: &HealthStatus = &r.data;
        h.is_ok()
    }));
    let statsz = sys.statsz().await.unwrap();
    for r in &statsz.replies {
        let s: &ServerStats = &r.data;
        assert!(s.routes.iter().filter_map(|r| r.name.clone()).count() >= 2);
    }
    let accountz = sys.accountz(&AccountzOptions::default()).await.unwrap();
    for r in &accountz.replies {
        let a: &Accountz = &r.data;
        assert!(a.accounts.iter().any(|n| n == APP_ACCOUNT), "{a:?}");
    }
    let subsz = sys.subsz(&SubszOptions::default()).await.unwrap();
    assert!(subsz.replies.iter().all(|r| {
        let s: &Subsz = &r.data;
        s.num_subscriptions > 0
    }));
    let leafz = sys.leafz(&LeafzOptions::default()).await.unwrap();
    assert!(leafz.replies.iter().all(|r| {
        let l: &Leafz = &r.data;
        l.leafs.is_empty()
    }));
    let gatewayz = sys.gatewayz().await.unwrap();
    let _: &Gatewayz = &gatewayz.replies[0].data;
    assert_eq!(names(&gatewayz), NAMES);

    // The overview: one row per server, all healthy, one meta leader.
    let overview = admin::report::overview(&sys).await.unwrap();
    let rows: Vec<&str> = overview.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(rows, NAMES);
    assert!(overview.healthy, "{overview:?}");
    assert!(overview.meta_leader.is_some());
    for s in &overview.servers {
        assert_eq!(s.route_peers.len(), 2, "{s:?}");
        assert_eq!(s.health, "ok");
        assert!(s.mem > 0 && !s.version.is_empty() && s.jetstream);
    }

    // A server filter: only the matching server answers, and nobody is called missing.
    let only_n2 = sys
        .ping::<Varz>(
            ServerKind::Varz,
            &NoOptions {
                filter: ServerFilter {
                    name: Some("n2".into()),
                    exact_match: true,
                    ..ServerFilter::default()
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&only_n2), ["n2"]);
    assert!(only_n2.complete(), "{only_n2:?}");

    // Per server, by name or by id.
    let one = sys
        .server_request::<Varz>("n2", ServerKind::Varz, &NoOptions::default())
        .await
        .unwrap();
    assert_eq!(one.server.name, "n2");
    let again = sys
        .server_request::<Varz>(&one.server.id, ServerKind::Varz, &NoOptions::default())
        .await
        .unwrap();
    assert_eq!(again.data.server_name, "n2");
    match sys
        .server_request::<Varz>("n9", ServerKind::Varz, &NoOptions::default())
        .await
    {
        Err(AdminError::UnknownServer { server, known }) => {
            assert_eq!(server, "n9");
            assert_eq!(known, "n1, n2, n3");
        }
        other => panic!("{other:?}"),
    }

    // Per account: every server knows APP.
    let acc = sys
        .account_request::<Connz>(APP_ACCOUNT, AccountKind::Connz, &NoOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&acc), NAMES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_node_is_reported_missing_after_the_quiet_period() {
    let mut cluster = Cluster::start(3);
    let sys = sys_client(&cluster, 0).await;
    let leader = cluster.meta_leader().expect("a meta leader");
    // Kill a node that is neither the one we talk through nor the meta leader (so the
    // leader keeps listing it as a peer for a fresh client's discovery).
    let victim = (1..3)
        .find(|&i| cluster.node(i).name() != leader)
        .expect("two candidates, one leader");
    let victim_name = cluster.node(victim).name().to_string();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.kill_node(victim);
        cluster
    })
    .await
    .expect("the kill ran");

    let started = Instant::now();
    let varz = sys.varz().await.unwrap();
    let took = started.elapsed();
    assert_eq!(varz.replies.len(), 2, "{varz:?}");
    assert_eq!(varz.missing, std::slice::from_ref(&victim_name));
    assert!(!varz.complete());
    // Ended by the quiet period after the second answer, not by the deadline.
    assert!(took < TIMING.deadline, "took {took:?}");

    // The overview says so too, and calls the cluster unhealthy.
    let overview = admin::report::overview(&sys).await.unwrap();
    assert_eq!(overview.servers.len(), 2);
    assert_eq!(overview.missing, std::slice::from_ref(&victim_name));
    assert!(!overview.healthy);
    assert_eq!(overview.meta_leader.as_deref(), Some(leader.as_str()));

    // Asking the dead server itself says so.
    match sys
        .server_request::<Varz>(&victim_name, ServerKind::Varz, &NoOptions::default())
        .await
    {
        Err(AdminError::ServerNotAnswering { server }) => assert_eq!(server, victim_name),
        other => panic!("{other:?}"),
    }

    // A client that never saw the victim still names it: the meta leader lists it as a peer.
    let fresh = sys_client(&cluster, 0).await;
    let health = fresh.healthz(&HealthzOptions::default()).await.unwrap();
    assert_eq!(health.replies.len(), 2);
    assert_eq!(health.missing, [victim_name]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_outside_the_system_account_gets_a_clear_error() {
    let cluster = Cluster::start(3);
    let client = nats_client::ConnectOptions::new()
        .user_and_password(APP_USER.user, APP_USER.password)
        .connect(&cluster.node(0).url())
        .await
        .unwrap();
    let started = Instant::now();
    match SysClient::with_timing(client, TIMING).await {
        Err(AdminError::NotSystemAccount { user, account }) => {
            assert_eq!(user, APP_USER.user);
            assert_eq!(account, APP_ACCOUNT);
        }
        other => panic!("expected NotSystemAccount, got {other:?}"),
    }
    // Known at once (the 503), not after the deadline.
    assert!(started.elapsed() < Duration::from_secs(5));
}
