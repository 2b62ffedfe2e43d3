//! A bucket written by the first design (the whole topology as one JSON value under key
//! `topology`) is converted to one key per object when a connection opens it.

use amqp_compat::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use amqp_compat::routing::Topology;
use amqp_compat::store::{TopologyStore, bucket_name, exchange_key, queue_key};
use amqp_compat::types::FieldTable;
use amqp_compat::{Connection, ConnectionProperties, ExchangeKind};
use nats_tests::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_value_bucket_is_converted_on_open() {
    let server = NatsServer::jetstream();
    let client = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .unwrap();
    let js = jetstream::Context::new(client);
    let kv = js
        .create_key_value(jetstream::kv::Config {
            history: 1,
            ..jetstream::kv::Config::new(bucket_name(None))
        })
        .await
        .unwrap();

    let none = FieldTable::default();
    let mut old = Topology::new();
    old.declare_exchange(
        "user-notifications",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        &none,
    )
    .unwrap();
    for (q, key) in [("a.q", "u1"), ("b q", "u1"), ("c", "u2")] {
        old.declare_queue(q, QueueDeclareOptions::durable(), &none, "old-conn")
            .unwrap();
        old.bind_queue(q, "user-notifications", key, &none, "old-conn")
            .unwrap();
    }
    kv.put("topology", serde_json::to_vec(&old).unwrap())
        .await
        .unwrap();
    // A tool that does not convert refuses the old form with a clear error.
    let refused = TopologyStore::bind(&js, None).await.unwrap_err();
    assert!(
        refused.to_string().contains("old single-key form"),
        "{refused}"
    );

    // Two processes opening at once: both convert, one deletes the old key, both open.
    let url = server.url();
    let (conn, other) = tokio::join!(
        Connection::connect(&url, ConnectionProperties::default()),
        Connection::connect(&url, ConnectionProperties::default()),
    );
    let conn = conn.expect("opens and converts");
    other.expect("opens too");
    let t = conn.topology();
    assert_eq!(t.queues().count(), 3);
    let route = t.route("user-notifications", "u1", None).unwrap();
    assert_eq!(
        route.queues.into_iter().collect::<Vec<_>>(),
        vec!["a.q".to_owned(), "b q".to_owned()]
    );
    assert!(
        kv.get("topology").await.unwrap().is_none(),
        "the old key is gone"
    );
    assert!(kv.get(&queue_key("b q")).await.unwrap().is_some());
    assert!(
        kv.get(&exchange_key("user-notifications"))
            .await
            .unwrap()
            .is_some()
    );

    // A second open (nothing left to convert) and a tool see the same.
    let again = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .unwrap();
    assert_eq!(again.topology().binding_count(), 3);
    let store = TopologyStore::bind(&js, None).await.unwrap().unwrap();
    let mut names = store.queue_names().await.unwrap();
    names.sort();
    assert_eq!(names, ["a.q", "b q", "c"]);
}
