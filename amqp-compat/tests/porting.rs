//! Porting friction, measured: one source file written for lapin (`tests/porting/program.rs`)
//! compiles unchanged under `use lapin as amqp;` and `use amqp_compat as amqp;`, and both
//! builds compute the same values.

mod with_lapin {
    use lapin as amqp;
    include!("porting/program.rs");
}

mod with_amqp_compat {
    use amqp_compat as amqp;
    include!("porting/program.rs");
}

use amqp_compat::types::AMQPValue;

#[test]
fn options_are_field_for_field_lapins() {
    assert_eq!(with_lapin::every_option(), with_amqp_compat::every_option());
}

#[test]
fn data_types_are_lapins_own() {
    // Same types (amq-protocol), so the values compare directly.
    assert_eq!(
        with_lapin::client_queue_arguments("dlx"),
        with_amqp_compat::client_queue_arguments("dlx")
    );
    assert_eq!(
        with_lapin::notification(Some(5000)),
        with_amqp_compat::notification(Some(5000))
    );
    assert_eq!(
        with_lapin::notification(None),
        with_amqp_compat::notification(None)
    );
    let lapin_kinds: Vec<String> = with_lapin::kinds()
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
    let our_kinds: Vec<String> = with_amqp_compat::kinds()
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
    assert_eq!(lapin_kinds, our_kinds);
}

#[test]
fn errors_and_connection_properties_behave_alike() {
    let theirs = lapin::Error::from(lapin::ErrorKind::ProtocolError(
        amqp_compat::AMQPError::from_id(406, "x".into()).unwrap(),
    ));
    assert!(with_lapin::is_precondition_failed(&theirs));
    assert!(with_amqp_compat::is_precondition_failed(
        &amqp_compat::Error::precondition_failed("x")
    ));
    assert!(!with_amqp_compat::is_precondition_failed(
        &amqp_compat::Error::not_found("x")
    ));
    // lapin keeps its client properties private: compare through Debug.
    let theirs = format!("{:?}", with_lapin::cannon_properties());
    let ours = with_amqp_compat::cannon_properties();
    let table = format!("client_properties: {:?}", ours.client_properties);
    assert!(theirs.contains(&table), "{theirs}\n{table}");
    assert_eq!(ours.connection_name().as_deref(), Some("cannon-1"));
    assert_eq!(
        ours.client_properties.inner().get("product"),
        Some(&AMQPValue::LongString("wire".into()))
    );
}

#[tokio::test]
async fn confirmations_and_deliveries_behave_alike() {
    let ret = |d| amqp_compat::message::BasicReturnMessage {
        delivery: d,
        reply_code: 312,
        reply_text: "NO_ROUTE".into(),
    };
    let ours = amqp_compat::Confirmation::Ack(Some(ret(with_amqp_compat::mock(0))));
    assert_eq!(
        with_amqp_compat::returned_payload(ours),
        Some(b"{}".to_vec())
    );
    assert_eq!(
        with_lapin::returned_payload(lapin::Confirmation::NotRequested),
        None
    );
    let (d1, d2) = (with_lapin::mock(7), with_amqp_compat::mock(7));
    assert_eq!(
        (d1.delivery_tag, d1.routing_key.as_str()),
        (d2.delivery_tag, d2.routing_key.as_str())
    );
    assert!(
        d1.ack(lapin::options::BasicAckOptions::default())
            .await
            .unwrap()
    );
    assert!(
        d2.ack(amqp_compat::options::BasicAckOptions::default())
            .await
            .unwrap()
    );
    assert!(!d1.usable() && !d2.usable());
}
