//! The operations a scenario is written in, what a backend observes, and the backend trait.
//! A scenario is a list of steps; each backend (lapin on RabbitMQ, the pure routing engine,
//! later amqp-compat on nats-server) runs the same steps and records one observation per step.

use amqp_compat::{
    ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::FieldTable,
};

/// One AMQP operation. `conn` picks a connection (each with one channel in confirm mode);
/// connections open on first use.
#[derive(Clone, Debug)]
pub enum Op {
    DeclareExchange {
        conn: usize,
        name: String,
        kind: ExchangeKind,
        opts: ExchangeDeclareOptions,
        args: FieldTable,
    },
    DeleteExchange {
        conn: usize,
        name: String,
        if_unused: bool,
    },
    DeclareQueue {
        conn: usize,
        name: String,
        opts: QueueDeclareOptions,
        args: FieldTable,
    },
    DeleteQueue {
        conn: usize,
        name: String,
        if_unused: bool,
        if_empty: bool,
    },
    PurgeQueue {
        conn: usize,
        name: String,
    },
    Bind {
        conn: usize,
        queue: String,
        exchange: String,
        key: String,
        args: FieldTable,
    },
    Unbind {
        conn: usize,
        queue: String,
        exchange: String,
        key: String,
        args: FieldTable,
    },
    BindExchange {
        conn: usize,
        destination: String,
        source: String,
        key: String,
        args: FieldTable,
    },
    /// Publish and wait for the confirm.
    Publish {
        conn: usize,
        exchange: String,
        key: String,
        body: String,
        headers: Option<FieldTable>,
        /// The `expiration` property (per-message TTL, ms as a decimal string).
        expiration: Option<String>,
        mandatory: bool,
        immediate: bool,
        /// The `priority` property.
        priority: Option<u8>,
    },
    /// `basic_get` (acked at once unless `no_ack`).
    Get {
        conn: usize,
        queue: String,
        no_ack: bool,
    },
    /// `basic_get` then `basic_reject(requeue = false)`: dead-letters the message.
    GetReject {
        conn: usize,
        queue: String,
    },
    /// Like `Drain`, observing each message's exchange and headers too.
    DrainFull {
        conn: usize,
        queue: String,
    },
    /// Waits (up to 10 s) until `queue` holds at least `messages` messages: RabbitMQ
    /// dead-letters asynchronously, so a scenario waits for the copies before looking.
    WaitFor {
        conn: usize,
        queue: String,
        messages: u32,
    },
    /// `basic_get` + ack until the queue is empty.
    Drain {
        conn: usize,
        queue: String,
    },
    Qos {
        conn: usize,
        prefetch: u16,
    },
    Consume {
        conn: usize,
        queue: String,
        tag: String,
        exclusive: bool,
    },
    /// Collect up to `max` deliveries of consumer `tag`, waiting at most `wait_ms` for each.
    Receive {
        tag: String,
        max: usize,
        wait_ms: u64,
    },
    Ack {
        conn: usize,
        delivery_tag: u64,
        multiple: bool,
    },
    Nack {
        conn: usize,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    Reject {
        conn: usize,
        delivery_tag: u64,
        requeue: bool,
    },
    Cancel {
        conn: usize,
        tag: String,
    },
    CloseConnection {
        conn: usize,
    },
    /// `basic_consume` of the direct reply-to pseudo-queue `amq.rabbitmq.reply-to`.
    ConsumeReplies {
        conn: usize,
        tag: String,
        no_ack: bool,
    },
    /// An RPC request: a publish to the default exchange with key `queue`, `reply_to` (`None`:
    /// `amq.rabbitmq.reply-to`) and `correlation_id`; waits for the confirm.
    Request {
        conn: usize,
        queue: String,
        body: String,
        correlation_id: String,
        reply_to: Option<String>,
    },
    /// An RPC server's turn: `basic_get` (no_ack) one request from `queue`, then a reply
    /// `re:<body>` to the default exchange with the request's `reply_to` as routing key and
    /// its `correlation_id`; waits for the reply's confirm. Observes [`Obs::Served`].
    Serve {
        conn: usize,
        queue: String,
        mandatory: bool,
    },
    /// Publishes `body` to the `reply_to` the last `Serve` saw (whose requester may be gone).
    ReplyAgain {
        conn: usize,
        body: String,
    },
    /// Collects up to `max` deliveries of reply consumer `tag`, waiting at most `wait_ms` for
    /// each. Observes [`Obs::Replies`].
    ReceiveReplies {
        tag: String,
        max: usize,
        wait_ms: u64,
    },
}

/// A message as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub routing_key: String,
    pub body: String,
    pub redelivered: bool,
    /// Only from consumers (basic_get tags depend on the channel's history, not compared).
    pub delivery_tag: Option<u64>,
    /// `basic_get`'s count of messages left.
    pub message_count: Option<u32>,
}

/// A message with what `Msg` leaves out: the exchange it was published (or dead-lettered) to,
/// and its headers rendered by [`render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullMsg {
    pub exchange: String,
    pub routing_key: String,
    pub body: String,
    pub headers: String,
}

/// A direct reply as its requester observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub exchange: String,
    /// The routing key, in [`token_form`].
    pub routing_key: String,
    pub body: String,
    pub correlation_id: Option<String>,
    pub redelivered: bool,
    pub delivery_tag: u64,
}

/// `amq.rabbitmq.reply-to.<token>` for any reply name (each broker has its own tokens), the
/// text itself otherwise.
pub fn token_form(name: &str) -> String {
    match name.strip_prefix("amq.rabbitmq.reply-to.") {
        Some(t) if !t.is_empty() => "amq.rabbitmq.reply-to.<token>".into(),
        _ => name.into(),
    }
}

/// A header table as text for comparison: keys in order, integers of every width alike, the
/// `time` of `x-death` entries left out (it is the broker's clock), and `x-last-death-*` left
/// out (RabbitMQ 3.10 does not write them; amqp-compat does, as RabbitMQ 3.13+).
pub fn render(table: &FieldTable) -> String {
    use amqp_compat::types::AMQPValue as V;
    fn value(v: &V) -> String {
        match v {
            V::LongString(s) => format!("{:?}", String::from_utf8_lossy(s.as_bytes())),
            V::ShortString(s) => format!("{:?}", s.as_str()),
            V::ShortShortInt(i) => i.to_string(),
            V::ShortShortUInt(i) => i.to_string(),
            V::ShortInt(i) => i.to_string(),
            V::ShortUInt(i) => i.to_string(),
            V::LongInt(i) => i.to_string(),
            V::LongUInt(i) => i.to_string(),
            V::LongLongInt(i) => i.to_string(),
            V::Timestamp(_) => "<timestamp>".into(),
            V::FieldArray(a) => format!(
                "[{}]",
                a.as_slice()
                    .iter()
                    .map(value)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            V::FieldTable(t) => render(t),
            other => format!("{other:?}"),
        }
    }
    let fields: Vec<String> = table
        .inner()
        .iter()
        .filter(|(k, _)| k.as_str() != "time" && !k.as_str().starts_with("x-last-death-"))
        .map(|(k, v)| format!("{}: {}", k.as_str(), value(v)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// What a backend observed for one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obs {
    Ok,
    /// queue.declare-ok: whether the name was server-generated (`amq.gen-…`), and the counts.
    Queue {
        generated: bool,
        message_count: u32,
        consumer_count: u32,
    },
    /// An AMQP error: reply code, and whether it closed the connection (hard) or the channel.
    Error {
        code: u16,
        hard: bool,
    },
    /// Any other error (e.g. lapin's InvalidChannelState).
    Failure(String),
    /// A confirmed publish: acked or nacked, and the reply code of a returned message.
    Published {
        ack: bool,
        returned: Option<u16>,
    },
    Got(Option<Msg>),
    Drained(Vec<Msg>),
    Received(Vec<Msg>),
    /// Messages with their exchange and headers ([`render`]ed).
    DrainedFull(Vec<FullMsg>),
    Count(u32),
    /// An RPC server's turn: the request's body, `correlation_id` and `reply_to` (in
    /// [`token_form`]), and what its reply's publish observed.
    Served {
        body: String,
        correlation_id: Option<String>,
        reply_to: Option<String>,
        reply: Box<Obs>,
    },
    Replies(Vec<Reply>),
    /// This backend cannot run this operation (yet).
    NotApplicable,
}

/// A backend runs operations and observes.
#[allow(async_fn_in_trait)]
pub trait Backend {
    fn name(&self) -> &'static str;
    async fn run(&mut self, op: &Op) -> Obs;
    /// Ends the scenario: closes every connection.
    async fn finish(&mut self);
}

/// What RabbitMQ must observe for a step (checked on the lapin backend: it pins down the
/// behaviour amqp-compat must reproduce).
#[derive(Clone, Debug)]
pub enum Expect {
    Any,
    Is(Obs),
    /// An AMQP error with this code.
    Code(u16),
}

pub struct Step {
    pub op: Op,
    pub expect: Expect,
}

pub struct Scenario {
    pub name: &'static str,
    pub steps: Vec<Step>,
}
