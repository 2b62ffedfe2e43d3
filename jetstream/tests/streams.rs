//! Stream administration against a real server: create, update, info, names/list with paging,
//! purge (filter, keep), delete, account info, typed API errors.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{ErrorCode, JetStreamError, Purge, RetentionPolicy, StreamConfig};

#[tokio::test]
async fn create_info_update_delete() {
    let (_server, js) = setup().await;
    let name = unique("S");
    let mut config = memory_stream(&name);
    config.max_age = Duration::from_secs(3600);
    config.max_msgs = 1000;
    config.duplicate_window = Duration::from_secs(30);
    config.description = Some("orders".into());
    config.deny_delete = false;
    let mut stream = js.create_stream(config.clone()).await.unwrap();
    assert_eq!(stream.name(), name);
    let info = stream.cached_info();
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.max_msgs, 1000);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(30));
    assert_eq!(info.config.retention, RetentionPolicy::Limits);
    assert!(info.created.is_some());

    // Same config again: idempotent. Different config: typed error.
    js.create_stream(config.clone()).await.unwrap();
    let mut other = config.clone();
    other.max_msgs = 5;
    let err = js.create_stream(other).await.unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_NAME_EXISTS), "{err:?}");

    config.max_msgs = 2000;
    config.allow_direct = true;
    let updated = js.update_stream(config.clone()).await.unwrap();
    assert_eq!(updated.config.max_msgs, 2000);
    assert!(updated.config.allow_direct);

    js.publish(&format!("{}.a", name.to_lowercase()), "x")
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);

    assert!(js.delete_stream(&name).await.unwrap());
    let err = js.stream_info(&name).await.unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_NOT_FOUND), "{err:?}");
    let api = err.api_error().unwrap();
    assert_eq!(api.code, 404);
    assert!(!api.description.is_empty());
}

#[tokio::test]
async fn create_or_update_and_work_queue() {
    let (_server, js) = setup().await;
    let name = unique("WQ");
    let config = StreamConfig {
        retention: RetentionPolicy::WorkQueue,
        ..memory_stream(&name)
    };
    js.create_or_update_stream(config.clone()).await.unwrap();
    let mut changed = config.clone();
    changed.max_msgs = 10;
    let s = js.create_or_update_stream(changed).await.unwrap();
    assert_eq!(s.cached_info().config.max_msgs, 10);
    assert_eq!(s.cached_info().config.retention, RetentionPolicy::WorkQueue);
}

#[tokio::test]
async fn names_and_list_are_paged() {
    let (_server, js) = setup().await;
    // More than one page of names would take 1025 streams; check the paging fields and the
    // subject filter instead, and that collecting pages returns everything.
    let mut made = Vec::new();
    for _ in 0..5 {
        let name = unique("L");
        js.create_stream(memory_stream(&name)).await.unwrap();
        made.push(name);
    }
    let names = js.stream_names(None).await.unwrap();
    for n in &made {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }
    let page = js.stream_names_page(0, None).await.unwrap();
    assert_eq!(page.total, names.len());
    assert!(page.limit >= page.items.len());
    let page2 = js.stream_names_page(2, None).await.unwrap();
    assert_eq!(page2.offset, 2);
    assert_eq!(page2.items.len(), names.len() - 2);

    let filtered = js
        .stream_names(Some(&format!("{}.x", made[0].to_lowercase())))
        .await
        .unwrap();
    assert_eq!(filtered, vec![made[0].clone()]);

    let infos = js.list_streams(None).await.unwrap();
    assert_eq!(infos.len(), names.len());
    assert!(infos.iter().any(|i| i.config.name == made[4]));
}

#[tokio::test]
async fn purge_with_filter_and_keep() {
    let (_server, js) = setup().await;
    let name = unique("P");
    let prefix = name.to_lowercase();
    let mut stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 0..10 {
        js.publish(&format!("{prefix}.a"), format!("a{i}"))
            .await
            .unwrap();
        js.publish(&format!("{prefix}.b"), format!("b{i}"))
            .await
            .unwrap();
    }
    let purged = stream
        .purge_with(&Purge::default().filter(format!("{prefix}.a")).keep(3))
        .await
        .unwrap();
    assert_eq!(purged, 7);
    assert_eq!(stream.info().await.unwrap().state.messages, 13);
    let last_a = stream
        .get_last_message(&format!("{prefix}.a"))
        .await
        .unwrap();
    assert_eq!(&last_a.payload[..], b"a9");

    let purged = stream
        .purge_with(&Purge::default().sequence(15))
        .await
        .unwrap();
    assert!(purged > 0);
    assert!(stream.info().await.unwrap().state.first_seq >= 15);
    let rest = stream.purge().await.unwrap();
    assert_eq!(rest + purged + 7, 20);
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn account_info_and_domain_prefix() {
    let (server, js) = setup().await;
    js.create_stream(memory_stream(&unique("A"))).await.unwrap();
    let info = js.account_info().await.unwrap();
    assert!(info.usage.streams >= 1);
    assert!(info.api.total >= 1);

    // A domain nobody serves: the request has no responders.
    let other = jetstream::Context::with_domain(js.client().clone(), "nowhere")
        .with_timeout(Duration::from_millis(500));
    assert_eq!(other.prefix(), "$JS.nowhere.API");
    let err = other.account_info().await.unwrap_err();
    assert!(
        matches!(
            err,
            JetStreamError::Request(nats_client::RequestError::NoResponders { .. })
        ),
        "{err:?}"
    );
    let custom = jetstream::Context::with_prefix(js.client().clone(), "$JS.API.");
    assert_eq!(custom.prefix(), "$JS.API");
    assert!(custom.account_info().await.is_ok());
    drop(server);
}

#[tokio::test]
async fn invalid_names_never_reach_the_server() {
    let (_server, js) = setup().await;
    for bad in ["", "a.b", "a b", "a*", "a>"] {
        let err = js.stream_info(bad).await.unwrap_err();
        assert!(
            matches!(err, JetStreamError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
    }
}
