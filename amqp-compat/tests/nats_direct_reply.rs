//! Direct reply-to (`amq.rabbitmq.reply-to`, docs/amqp-mapping.md §8) on a real nats-server:
//! an RPC round trip whose reply travels over core NATS, the reply-to rewrite, RabbitMQ's
//! errors (406 without `no_ack`, a second reply consumer, a request without one), replies to
//! a gone requester or with a forged token dropped, delivery tags as RabbitMQ 3.10 gives them.

use std::time::Duration;

use amqp_compat::direct_reply::{QUEUE, decode_token, encode_token};
use amqp_compat::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable, ShortString};
use amqp_compat::{
    BasicProperties, Channel, ChannelState, Confirmation, Connection, ConnectionProperties,
    Consumer, Delivery, Error, ErrorKind,
};
use futures_util::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "amq.rabbitmq.reply-to.";

async fn connect(server: &NatsServer) -> Connection {
    Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect")
}

async fn confirming(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    ch
}

fn no_ack() -> BasicConsumeOptions {
    BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    }
}

async fn consume_replies(ch: &Channel) -> Consumer {
    ch.basic_consume(QUEUE.into(), "".into(), no_ack(), FieldTable::default())
        .await
        .expect("consume amq.rabbitmq.reply-to")
}

async fn publish(
    ch: &Channel,
    key: &str,
    mandatory: bool,
    body: &str,
    props: BasicProperties,
) -> amqp_compat::Result<Confirmation> {
    let options = BasicPublishOptions {
        mandatory,
        ..BasicPublishOptions::default()
    };
    ch.basic_publish("".into(), key.into(), options, body.as_bytes(), props)
        .await?
        .await
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
        .expect("a delivery, not an error")
}

async fn nothing_for(consumer: &mut Consumer, d: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(d, consumer.next()).await {
        panic!("unexpected {item:?}");
    }
}

fn code(e: &Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(a) => Some(a.get_id()),
        _ => None,
    }
}

/// Publishes request "1" on `from` to `queue` and takes it on `to` (`basic_get`, no ack):
/// its delivery tag and the rewritten `reply_to` the service sees.
async fn take_request(from: &Channel, to: &Channel, queue: &str) -> (u64, ShortString) {
    publish(from, queue, false, "q", request("1"))
        .await
        .unwrap();
    let got = to
        .basic_get(
            queue.into(),
            amqp_compat::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the request");
    (got.delivery_tag, got.properties.reply_to().clone().unwrap())
}

fn request(id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_reply_to(QUEUE.into())
        .with_correlation_id(id.into())
}

async fn declare(ch: &Channel, q: &str) {
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue_declare");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_round_trip_goes_back_over_core_nats_with_its_properties() {
    let server = NatsServer::jetstream();
    let (client, service) = (connect(&server).await, connect(&server).await);
    let sch = confirming(&service).await;
    declare(&sch, "rpc").await;
    let mut requests = sch
        .basic_consume(
            "rpc".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let cch = confirming(&client).await;
    let mut replies = consume_replies(&cch).await;
    assert_eq!(replies.queue().as_str(), QUEUE);
    assert!(replies.tag().as_str().starts_with("amq.ctag-"));
    // Whoever listens on the inboxes sees each reply as one plain NATS message.
    let snoop = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .unwrap();
    let mut inboxes = snoop.subscribe("_INBOX.>").await.unwrap();
    snoop.flush().await.unwrap();

    let mut headers = FieldTable::default();
    headers.insert("attempt".into(), AMQPValue::LongInt(2));
    let mut seen_reply_to = None;
    for i in 0..3 {
        let id = format!("req-{i}");
        let sent = publish(&cch, "rpc", false, &format!("q{i}"), request(&id)).await;
        assert_eq!(sent.unwrap(), Confirmation::Ack(None));

        let req = next(&mut requests).await;
        let reply_to = req.properties.reply_to().clone().expect("reply_to");
        let token = reply_to.as_str().strip_prefix(PREFIX).expect("rewritten");
        let inbox = decode_token(token).expect("a token of ours");
        assert!(inbox.starts_with("_INBOX."), "{inbox}");
        // One reply consumer, one token for every request of the channel.
        assert_eq!(*seen_reply_to.get_or_insert(reply_to.clone()), reply_to);
        assert_eq!(
            req.properties.correlation_id().as_ref().unwrap().as_str(),
            id
        );

        let props = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_content_type("application/json".into())
            .with_headers(headers.clone());
        let answered = publish(&sch, reply_to.as_str(), false, &format!("a{i}"), props).await;
        assert_eq!(
            answered.unwrap(),
            Confirmation::Ack(None),
            "confirmed at once"
        );
        sch.basic_ack(req.delivery_tag, BasicAckOptions::default())
            .await
            .unwrap();

        let d = next(&mut replies).await;
        assert_eq!(d.data, format!("a{i}").as_bytes());
        assert_eq!(d.exchange.as_str(), "");
        assert_eq!(d.routing_key, reply_to);
        assert!(!d.redelivered);
        assert_eq!(d.properties.correlation_id().as_ref().unwrap().as_str(), id);
        assert_eq!(
            d.properties.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        assert_eq!(d.properties.headers().as_ref(), Some(&headers));
        assert_eq!(d.properties.reply_to(), &None);
        // RabbitMQ 3.10 gives a reply the channel's next tag without using it up.
        assert_eq!(d.delivery_tag, 1);

        // (Other inboxes carry the JetStream API's and the pulls' answers.)
        let raw = tokio::time::timeout(WAIT, async {
            loop {
                let m = inboxes.next().await.expect("the snoop goes on");
                if *m.subject == *inbox {
                    return m;
                }
            }
        })
        .await
        .expect("the reply on the inbox");
        assert_eq!(raw.reply, None, "a core publish, not a JetStream one");
    }
    client.close(200, "bye".into()).await.unwrap();
    service.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_consumer_needs_no_ack_and_is_one_per_channel() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;

    // RabbitMQ: 406 "reply consumer cannot acknowledge", closing the channel.
    let ch = conn.create_channel().await.unwrap();
    let err = ch
        .basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(406));
    assert!(
        err.to_string()
            .contains("reply consumer cannot acknowledge")
    );
    assert!(err.is_amqp_soft_error());
    assert_eq!(ch.status(), ChannelState::Error);

    // A second one on the same channel: 406 "reply consumer already set".
    let ch = conn.create_channel().await.unwrap();
    let _replies = consume_replies(&ch).await;
    let err = ch
        .basic_consume(QUEUE.into(), "".into(), no_ack(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(406));
    assert!(err.to_string().contains("reply consumer already set"));

    // Other channels each have their own.
    let (a, b) = (
        conn.create_channel().await.unwrap(),
        conn.create_channel().await.unwrap(),
    );
    let _ra = consume_replies(&a).await;
    let _rb = consume_replies(&b).await;

    // The pseudo-queue needs no declare; a declare of it answers as RabbitMQ's (passive,
    // no messages, one consumer); a reply name that is not one of ours is 404.
    let q = a
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!((q.message_count(), q.consumer_count()), (0, 1));
    let err = a
        .queue_declare(
            format!("{PREFIX}forged").into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(404));
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_reply_needs_the_reply_consumer_on_its_channel() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    declare(&ch, "rpc").await;
    // The consumer is on another channel: as RabbitMQ, 406 "fast reply consumer does not
    // exist", reported asynchronously (on the confirm, then the channel is closed).
    let other = conn.create_channel().await.unwrap();
    let _replies = consume_replies(&other).await;
    let err = publish(&ch, "rpc", false, "q", request("1"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(406));
    assert!(
        err.to_string()
            .contains("fast reply consumer does not exist")
    );
    // As lapin reports it: the next call gets the error, later ones the closed channel.
    for _ in 0..2 {
        let later = ch
            .queue_declare(
                "rpc".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert!(
            code(&later) == Some(406) || matches!(later.kind(), ErrorKind::InvalidChannelState(..))
        );
    }
    assert_eq!(ch.status(), ChannelState::Error);
    // Nothing was stored.
    let q = other
        .queue_declare(
            "rpc".into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.message_count(), 0);
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_a_gone_requester_or_a_forged_token_are_dropped() {
    let server = NatsServer::jetstream();
    let (client, service) = (connect(&server).await, connect(&server).await);
    let cch = confirming(&client).await;
    let sch = confirming(&service).await;
    declare(&sch, "rpc").await;
    let mut replies = consume_replies(&cch).await;
    let old = take_request(&cch, &sch, "rpc").await.1;

    // A token naming any other subject is refused before a subject is built.
    let raw = nats_client::ConnectOptions::new()
        .request_timeout(Duration::from_millis(250))
        .connect(&server.url())
        .await
        .unwrap();
    let mut elsewhere = raw.subscribe("orders.>").await.unwrap();
    raw.flush().await.unwrap();
    for forged in [
        format!("{PREFIX}garbage"),
        format!("{PREFIX}{}", encode_token("orders.created")),
        format!("{PREFIX}{}", encode_token("_INBOX.x.>")),
        format!("{PREFIX}{}", encode_token("_INBOX.a\r\nPUB orders.x 1")),
        PREFIX.to_owned(),
    ] {
        let sent = publish(&sch, &forged, false, "x", BasicProperties::default()).await;
        assert_eq!(sent.unwrap(), Confirmation::Ack(None), "{forged}");
    }
    // Mandatory: a reply routes to no queue, so RabbitMQ 3.10 returns it (312) and acks.
    let sent = publish(&sch, old.as_str(), true, "m", BasicProperties::default()).await;
    let Confirmation::Ack(Some(ret)) = sent.unwrap() else {
        panic!("a returned message");
    };
    assert_eq!(ret.reply_code, 312);
    assert_eq!(next(&mut replies).await.data, b"m", "and delivers it too");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), elsewhere.next())
            .await
            .is_err(),
        "no forged token reached another subject"
    );

    // The requester cancels: its inbox goes at once (the stream not polled yet), its stream
    // ends, a late reply is dropped without an error.
    cch.basic_cancel(replies.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let inbox = decode_token(old.as_str().strip_prefix(PREFIX).unwrap()).unwrap();
    client.nats_client().flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match raw.request(&inbox, "anyone?").await {
            Err(nats_client::RequestError::NoResponders { .. }) => break,
            other => assert!(tokio::time::Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tokio::time::timeout(WAIT, replies.next())
            .await
            .unwrap()
            .is_none()
    );
    let late = publish(
        &sch,
        old.as_str(),
        false,
        "late",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(late.unwrap(), Confirmation::Ack(None));
    // A new reply consumer gets a new token; the old one does not reach it.
    let mut again = consume_replies(&cch).await;
    publish(
        &sch,
        old.as_str(),
        false,
        "stale",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    nothing_for(&mut again, Duration::from_millis(300)).await;
    assert_eq!(sch.status(), ChannelState::Connected);
    assert_eq!(cch.status(), ChannelState::Connected);
    client.close(200, "bye".into()).await.unwrap();
    service.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_share_the_next_delivery_tag_and_end_with_their_channel() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    declare(&ch, "work").await;
    let mut replies = consume_replies(&ch).await;
    let me = {
        let (tag, reply_to) = take_request(&ch, &ch, "work").await;
        assert_eq!(tag, 1);
        reply_to
    };
    for body in ["r1", "r2"] {
        publish(&ch, me.as_str(), false, body, BasicProperties::default())
            .await
            .unwrap();
        // Tag 1 went to the basic_get: replies carry 2 and do not use it up.
        assert_eq!(next(&mut replies).await.delivery_tag, 2);
    }
    publish(&ch, "work", false, "w2", BasicProperties::default())
        .await
        .unwrap();
    let mut work = ch
        .basic_consume("work".into(), "".into(), no_ack(), FieldTable::default())
        .await
        .unwrap();
    assert_eq!(next(&mut work).await.delivery_tag, 2);

    // Acking a reply (there is nothing to ack) fails the channel, as an unknown tag does;
    // the reply consumer's stream gets the error and ends.
    let r = {
        publish(&ch, me.as_str(), false, "r3", BasicProperties::default())
            .await
            .unwrap();
        next(&mut replies).await
    };
    ch.basic_ack(r.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    let item = tokio::time::timeout(WAIT, replies.next()).await.unwrap();
    let err = item.expect("an error first").unwrap_err();
    assert_eq!(code(&err), Some(406));
    assert!(
        tokio::time::timeout(WAIT, replies.next())
            .await
            .unwrap()
            .is_none()
    );

    // A channel closed by the application ends its reply consumer's stream.
    let ch = conn.create_channel().await.unwrap();
    let mut replies = consume_replies(&ch).await;
    ch.close(200, "bye".into()).await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, replies.next())
            .await
            .unwrap()
            .is_none()
    );
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_client_without_confirms_is_served_in_order_without_pub_acks() {
    let server = NatsServer::jetstream();
    let (client, service) = (connect(&server).await, connect(&server).await);
    let sch = service.create_channel().await.unwrap();
    declare(&sch, "rpc").await;
    let mut requests = sch
        .basic_consume("rpc".into(), "".into(), no_ack(), FieldTable::default())
        .await
        .unwrap();
    // RabbitMQ's tutorial client: no confirm_select.
    let cch = client.create_channel().await.unwrap();
    let mut replies = consume_replies(&cch).await;
    let snoop = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .unwrap();
    let mut inboxes = snoop.subscribe("_INBOX.>").await.unwrap();
    snoop.flush().await.unwrap();
    let n = 50;
    for i in 0..n {
        let sent = publish(
            &cch,
            "rpc",
            false,
            &format!("q{i}"),
            request(&i.to_string()),
        )
        .await;
        assert_eq!(sent.unwrap(), Confirmation::NotRequested);
    }
    for i in 0..n {
        let req = next(&mut requests).await;
        assert_eq!(req.data, format!("q{i}").as_bytes(), "in order");
        let reply_to = req.properties.reply_to().clone().unwrap();
        let props = BasicProperties::default()
            .with_correlation_id(req.properties.correlation_id().clone().unwrap());
        let sent = publish(&sch, reply_to.as_str(), false, "a", props).await;
        assert_eq!(sent.unwrap(), Confirmation::NotRequested);
    }
    for i in 0..n {
        let d = next(&mut replies).await;
        assert_eq!(
            d.properties.correlation_id().as_ref().unwrap().as_str(),
            i.to_string()
        );
    }
    // An unconfirmed publish asks for no PubAck: none comes back for the request queue (the
    // topology bucket's own writes, `KV_…`, have theirs).
    snoop.flush().await.unwrap();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), inboxes.next()).await {
        let text = String::from_utf8_lossy(&m.payload);
        assert!(
            !text.starts_with("{\"stream\"") || text.contains("\"KV_"),
            "a PubAck: {text}"
        );
    }
    client.close(200, "bye".into()).await.unwrap();
    service.close(200, "bye".into()).await.unwrap();
}
