//! Connections across the cluster: CONNZ finds a client by its connection name, and kick,
//! lame duck and close-by-name move or disconnect it (and it comes back).

mod common;

use std::time::Duration;

use admin::report::top_connections;
use admin::{AdminError, ConnSort, ConnzOptions, QueueAdmin, SysClient, VhostMapping};
use common::{app_client, disconnected_then_reconnected, sys_client};
use nats_tests::{APP_ACCOUNT, Cluster};

const BACK_WITHIN: Duration = Duration::from_secs(20);

/// (server, cid) of the connection named `name`, if CONNZ shows exactly one.
async fn find(sys: &SysClient, name: &str) -> Option<(String, u64)> {
    let connz = sys
        .connz(&ConnzOptions {
            auth: true,
            account: Some(APP_ACCOUNT.into()),
            ..ConnzOptions::default()
        })
        .await
        .ok()?;
    let found: Vec<(String, u64)> = connz
        .replies
        .iter()
        .flat_map(|r| {
            r.data
                .connections
                .iter()
                .filter(|c| c.name.as_deref() == Some(name))
                .map(|c| (r.server.name.clone(), c.cid))
        })
        .collect();
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Polls [`find`] until it finds the connection on a server `accept`s, or gives up.
async fn find_eventually(
    sys: &SysClient,
    name: &str,
    accept: impl Fn(&str) -> bool,
) -> Option<(String, u64)> {
    let end = tokio::time::Instant::now() + BACK_WITHIN;
    loop {
        if let Some(found) = find(sys, name).await.filter(|(s, _)| accept(s)) {
            return Some(found);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connz_finds_a_client_by_its_connection_name() {
    let cluster = Cluster::start(3);
    let sys = sys_client(&cluster, 0).await;
    let finder = app_client(&cluster, 2, "finder").await;
    let _quiet = app_client(&cluster, 1, "quiet-one").await;
    for _ in 0..100 {
        finder.publish("work.items", "x").await.unwrap();
    }
    finder.flush().await.unwrap();

    let (server, cid) = find(&sys, "finder")
        .await
        .expect("one connection named finder");
    assert_eq!(server, "n3");

    // The management view: vhost "/" is APP here.
    let queues = QueueAdmin::new(&sys, VhostMapping::new(APP_ACCOUNT));
    let conns = queues.list_connections("/").await.unwrap();
    let finder_row = conns
        .iter()
        .find(|c| c.user_provided_name.as_deref() == Some("finder"))
        .expect("finder in vhost /");
    assert_eq!(finder_row.name, format!("n3/{cid}"));
    assert_eq!(finder_row.account.as_deref(), Some(APP_ACCOUNT));
    assert_eq!(finder_row.user.as_deref(), Some("app"));
    assert!(
        conns
            .iter()
            .any(|c| c.user_provided_name.as_deref() == Some("quiet-one"))
    );
    // Paging through each server gives the same list.
    let mut crowd = Vec::new();
    for i in 0..5 {
        crowd.push(app_client(&cluster, 2, &format!("crowd-{i}")).await);
    }
    let all = queues.list_connections("/").await.unwrap();
    let paged = QueueAdmin::new(&sys, VhostMapping::new(APP_ACCOUNT))
        .page_size(2)
        .list_connections("/")
        .await
        .unwrap();
    assert_eq!(paged, all);
    assert_eq!(all.len(), conns.len() + 5);
    let on_n3 = all.iter().filter(|c| c.server == "n3").count();
    assert!(on_n3 >= 6, "finder and the crowd are on n3: {all:?}");

    // Another vhost (account) does not see them.
    let sys_conns = queues.list_connections("SYS").await.unwrap();
    assert!(
        sys_conns
            .iter()
            .all(|c| c.account.as_deref() == Some("SYS"))
    );
    assert!(
        !sys_conns.is_empty(),
        "the admin's own connection is in SYS"
    );

    // The busiest publisher of APP comes first.
    let top = top_connections(&sys, ConnSort::MsgsFrom, 5, Some(APP_ACCOUNT))
        .await
        .unwrap();
    assert_eq!(top.connections[0].name.as_deref(), Some("finder"));
    assert!(top.connections[0].in_msgs >= 100);
    assert!(top.missing.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn kick_lame_duck_and_close_by_name_disconnect_a_client_that_comes_back() {
    let cluster = Cluster::start(3);
    let sys = sys_client(&cluster, 0).await;
    let victim = app_client(&cluster, 1, "victim").await;
    let mut events = victim.events();

    // Kick by server name and cid.
    let (server, cid) = find(&sys, "victim").await.expect("victim listed");
    sys.kick(&server, cid).await.unwrap();
    disconnected_then_reconnected(&mut events, BACK_WITHIN)
        .await
        .expect("kicked, then back");

    // Close by the unique management name `<server>/<cid>`.
    let (server, cid) = find_eventually(&sys, "victim", |_| true)
        .await
        .expect("victim listed again after the kick");
    let queues = QueueAdmin::new(&sys, VhostMapping::new(APP_ACCOUNT));
    let closed = queues
        .close_connection(&format!("{server}/{cid}"))
        .await
        .unwrap();
    assert_eq!(
        (closed[0].server.as_str(), closed[0].cid),
        (server.as_str(), cid)
    );
    disconnected_then_reconnected(&mut events, BACK_WITHIN)
        .await
        .expect("closed by unique name, then back");

    // Close by the client-given name.
    assert!(find_eventually(&sys, "victim", |_| true).await.is_some());
    let closed = queues.close_connection("victim").await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].user_provided_name.as_deref(), Some("victim"));
    disconnected_then_reconnected(&mut events, BACK_WITHIN)
        .await
        .expect("closed by client name, then back");

    // Lame duck: the client is told its server is going away, and moves by itself.
    let (server, cid) = find_eventually(&sys, "victim", |_| true)
        .await
        .expect("victim listed again after the close");
    sys.lame_duck(&server, cid).await.unwrap();
    let lame = tokio::time::timeout(BACK_WITHIN, async {
        loop {
            match events.recv().await {
                Ok(nats_client::Event::LameDuck { .. }) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(lame, Ok(true), "the client saw the lame-duck INFO");
    assert!(
        find_eventually(&sys, "victim", |s| s != server)
            .await
            .is_some(),
        "the client moved off {server}"
    );

    // Wrong names and ids are typed errors.
    match queues.close_connection("nobody").await {
        Err(AdminError::ConnectionNotFound { name }) => assert_eq!(name, "nobody"),
        other => panic!("{other:?}"),
    }
    match sys.kick("n1", 999_999).await {
        Err(AdminError::Server {
            server,
            description,
            ..
        }) => {
            assert_eq!(server, "n1");
            assert!(description.contains("no such client"), "{description}");
        }
        other => panic!("{other:?}"),
    }
}
