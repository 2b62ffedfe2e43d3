//! What the server's messages mean to the ordered consumer: status classification and the
//! delivery [`Cursor`] that finds sequence gaps. Pure values, tested without a server.

use nats_client::{Message, StatusCode};

use crate::message::MessageInfo;

/// What one status message means to the ordered consumer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Heartbeat,
    /// The pull request ended; `pending` is what it still had open, when the server said.
    Ended(Option<usize>),
    /// Forget open requests and pull again (leader change, server shutdown).
    Repull,
    /// The consumer is gone: start a new one.
    Lost,
    /// A refusal the caller should hear about; pull again after a pause.
    Report(Option<usize>),
    /// Pulling again cannot help.
    Fatal,
}

pub(crate) fn classify(msg: &Message) -> Option<Status> {
    let code = msg.status?;
    let pending = || {
        msg.headers
            .as_ref()?
            .get("Nats-Pending-Messages")?
            .trim()
            .parse()
            .ok()
    };
    let desc = msg
        .description
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(match code {
        StatusCode::IDLE_HEARTBEAT => Status::Heartbeat,
        StatusCode::NOT_FOUND | StatusCode::TIMEOUT => Status::Ended(pending()),
        StatusCode::NO_RESPONDERS => Status::Lost,
        StatusCode::CONFLICT if desc.contains("consumer deleted") => Status::Lost,
        StatusCode::CONFLICT
            if desc.contains("leadership change") || desc.contains("server shutdown") =>
        {
            Status::Repull
        }
        StatusCode::CONFLICT if desc.contains("batch completed") || desc.contains("maxbytes") => {
            Status::Ended(pending())
        }
        StatusCode::BAD_REQUEST => Status::Fatal,
        _ => Status::Report(pending()),
    })
}

/// Where delivery stands: the last stream and consumer sequences delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) stream_seq: u64,
    pub(crate) consumer_seq: u64,
}

/// What to do with one delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next one: hand it out.
    Deliver,
    /// From a consumer replaced since: drop it.
    Stale,
    /// The consumer sequence jumped: something was lost; start a new consumer.
    Gap,
}

impl Cursor {
    /// Checks a message from consumer `info.consumer` against the current consumer `name`,
    /// and moves on when it is the next one.
    pub(crate) fn check(&mut self, name: &str, info: &MessageInfo<'_>) -> Verdict {
        if info.consumer != name {
            return Verdict::Stale;
        }
        if info.consumer_sequence != self.consumer_seq + 1 {
            return Verdict::Gap;
        }
        self.consumer_seq = info.consumer_sequence;
        self.stream_seq = info.stream_sequence;
        Verdict::Deliver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn status(code: u16, desc: &str) -> Message {
        Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: Bytes::new(),
            headers: None,
            status: StatusCode::from_u16(code),
            description: Some(desc.into()),
            length: 0,
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            classify(&status(100, "Idle Heartbeat")),
            Some(Status::Heartbeat)
        );
        assert_eq!(
            classify(&status(408, "Request Timeout")),
            Some(Status::Ended(None))
        );
        assert_eq!(
            classify(&status(409, "Consumer Deleted")),
            Some(Status::Lost)
        );
        assert_eq!(classify(&status(503, "")), Some(Status::Lost));
        assert_eq!(
            classify(&status(409, "Leadership Change")),
            Some(Status::Repull)
        );
        assert_eq!(
            classify(&status(409, "Exceeded MaxWaiting")),
            Some(Status::Report(None))
        );
        assert_eq!(classify(&status(400, "Bad Request")), Some(Status::Fatal));
    }

    #[test]
    fn cursor_finds_gaps_and_stale_messages() {
        let info = |consumer, cseq, sseq| MessageInfo {
            domain: None,
            account_hash: None,
            stream: "S",
            consumer,
            delivered: 1,
            stream_sequence: sseq,
            consumer_sequence: cseq,
            timestamp_nanos: 0,
            pending: 0,
        };
        let mut c = Cursor::default();
        assert_eq!(c.check("c_1", &info("c_1", 1, 10)), Verdict::Deliver);
        assert_eq!(c.check("c_1", &info("c_1", 2, 12)), Verdict::Deliver);
        assert_eq!(c.stream_seq, 12);
        // Consumer sequence 3 never came.
        assert_eq!(c.check("c_1", &info("c_1", 4, 15)), Verdict::Gap);
        assert_eq!(
            c,
            Cursor {
                stream_seq: 12,
                consumer_seq: 2
            }
        );
        // The replacement starts over at consumer sequence 1; the old one's are dropped.
        c.consumer_seq = 0;
        assert_eq!(c.check("c_2", &info("c_1", 3, 13)), Verdict::Stale);
        assert_eq!(c.check("c_2", &info("c_2", 1, 13)), Verdict::Deliver);
        assert_eq!(c.check("c_2", &info("c_2", 1, 13)), Verdict::Gap);
    }
}
