//! The retirement of a connection after a lame-duck move, as a plain value: its phases, the
//! inputs that move it on, and what it asks its driver (`lame_duck.rs`) to write and when to
//! wake it. No I/O and no clock of its own: the driver passes the time in.
//!
//! ```text
//!  AwaitNewServer --new server proven--> Probing --probe back / deadline--> Grace --timer-->
//!       |   (stream not clean: Stranded, nothing more written)                 Draining
//!       '-- no probe ---------------------------------------------------------> Grace
//!  Draining --the PONG answering our PING--> Done        any phase --old connection lost--> Done
//! ```

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nats_proto::{Encoder, ServerOp};

/// Time given to the other nodes of the cluster to learn our new subscriptions, once the old
/// server is known to have them.
pub(crate) const PROPAGATION_GRACE: Duration = Duration::from_millis(100);

/// Longest wait for the old server to learn our new subscriptions before going ahead anyway.
pub(crate) const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the probe is published to the old server while waiting.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Where the retirement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the new server's PONG after our re-sent SUBs (it then holds them all).
    AwaitNewServer,
    /// Publishing the probe to the old server until it comes back through the new one (the
    /// old server then routes our interest to the new server).
    Probing { deadline: Instant, next: Instant },
    /// A grace for the other nodes of the cluster.
    Grace { until: Instant },
    /// Every subscription unsubscribed there, and a PING sent: reading up to its PONG.
    Draining,
    /// An op is cut short on the old connection: nothing more may be written to it, so it
    /// delivers until the server closes it.
    Stranded,
    /// Close the old connection.
    Done,
}

/// What the driver must do for the old connection, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write these bytes to the old connection.
    Write(Bytes),
    /// The probe is over (came back, or the wait gave up): unsubscribe it.
    EndProbe,
    /// Nothing came of the probe in time; going ahead anyway.
    ProbeTimedOut,
    /// Close the old connection: the retirement is over.
    Close,
}

/// The bookkeeping of a connection being retired after a lame-duck move (see `lame_duck`):
/// its phase, which of its PONGs answers the retirement's own PING, and the PONGs owed to
/// its server.
#[derive(Debug)]
pub(crate) struct Retirement {
    phase: Phase,
    /// Every op written to it is whole: more may be written (UNSUBs, PING).
    clean: bool,
    /// PINGs sent to it before the handoff whose PONGs are still to come: not the
    /// retirement's (their flush calls ride the new connection's PING).
    stray_pongs: usize,
    /// PINGs from the old server not answered yet.
    owed_pongs: usize,
    /// The probe's PUB, when there is a probe.
    probe: Option<Bytes>,
    encoder: Encoder,
}

impl Retirement {
    /// `pings_unanswered`: PINGs written to the old connection whose PONG has not come;
    /// `owed_pongs`: PINGs its server sent that were not answered before the handoff.
    pub fn new(clean: bool, pings_unanswered: usize, owed_pongs: usize) -> Self {
        Retirement {
            phase: Phase::AwaitNewServer,
            clean,
            stray_pongs: pings_unanswered,
            owed_pongs,
            probe: None,
            encoder: Encoder::default(),
        }
    }

    /// The retirement begins, with `probe` the subject to publish to on the old connection
    /// (its subscription is on the new one only); without one, it goes from the new server's
    /// PONG straight to the grace. The PONGs owed since before the handoff go out now.
    pub fn begin(&mut self, probe: Option<&str>) -> Vec<Step> {
        let mut frame = BytesMut::new();
        if let Some(subject) = probe
            && self
                .encoder
                .publish(&mut frame, subject, None, None, &[])
                .is_ok()
        {
            self.probe = Some(frame.freeze());
        }
        self.answer_pings()
    }

    /// Writes the PONGs owed, when anything may be written.
    fn answer_pings(&mut self) -> Vec<Step> {
        let writable = self.clean && !matches!(self.phase, Phase::Stranded | Phase::Done);
        if writable && self.owed_pongs > 0 {
            vec![self.write(&[])]
        } else {
            Vec::new()
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the driver must feed [`Retirement::timer`], if at all.
    pub fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Probing { deadline, next } => Some(deadline.min(next)),
            Phase::Grace { until } => Some(until),
            _ => None,
        }
    }

    /// The new server's PONG came after our re-sent SUBs and the probe's.
    pub fn new_server_proven(&mut self, now: Instant) -> Vec<Step> {
        if self.phase != Phase::AwaitNewServer {
            return Vec::new();
        }
        if !self.clean {
            self.phase = Phase::Stranded;
            return Vec::new();
        }
        match self.probe.clone() {
            Some(probe) => {
                self.phase = Phase::Probing {
                    deadline: now + PROPAGATION_TIMEOUT,
                    next: now + PROBE_INTERVAL,
                };
                vec![self.write(&probe)]
            }
            None => {
                self.phase = Phase::Grace {
                    until: now + PROPAGATION_GRACE,
                };
                Vec::new()
            }
        }
    }

    /// The probe came back through the new connection.
    pub fn probe_arrived(&mut self, now: Instant) -> Vec<Step> {
        if !matches!(self.phase, Phase::Probing { .. }) {
            return Vec::new();
        }
        self.phase = Phase::Grace {
            until: now + PROPAGATION_GRACE,
        };
        vec![Step::EndProbe]
    }

    /// The driver's timer fired (at [`Retirement::wake_at`] or later). `live`: the client's
    /// live connection is up; while it is down (the new connection was lost mid-move) the
    /// wait for the probe does not run out and the grace does not end: unsubscribing here
    /// then would leave no connection delivering. `sids` gives every live subscription, asked
    /// only when the grace ends.
    pub fn timer(
        &mut self,
        now: Instant,
        live: bool,
        sids: impl FnOnce() -> Vec<u64>,
    ) -> Vec<Step> {
        match self.phase {
            Phase::Probing { next, .. } if !live => {
                self.phase = Phase::Probing {
                    deadline: now + PROPAGATION_TIMEOUT,
                    next: next.max(now + PROBE_INTERVAL),
                };
                Vec::new()
            }
            Phase::Grace { .. } if !live => {
                self.phase = Phase::Grace {
                    until: now + PROPAGATION_GRACE,
                };
                Vec::new()
            }
            Phase::Probing { deadline, .. } if now >= deadline => {
                self.phase = Phase::Grace {
                    until: now + PROPAGATION_GRACE,
                };
                vec![Step::ProbeTimedOut, Step::EndProbe]
            }
            Phase::Probing { deadline, next } if now >= next => {
                self.phase = Phase::Probing {
                    deadline,
                    next: now + PROBE_INTERVAL,
                };
                match self.probe.clone() {
                    Some(probe) => vec![self.write(&probe)],
                    None => Vec::new(),
                }
            }
            Phase::Grace { until } if now >= until => {
                let mut out = BytesMut::new();
                for sid in sids() {
                    self.encoder.unsubscribe(&mut out, sid, None);
                }
                self.encoder.ping(&mut out);
                self.phase = Phase::Draining;
                vec![self.write(&out)]
            }
            _ => Vec::new(),
        }
    }

    /// An op from the old server other than a message (messages are delivered as on the
    /// live connection).
    pub fn old_op(&mut self, op: &ServerOp) -> Vec<Step> {
        match op {
            // Answered by a write of its own (the driver writes outside its cancellable read),
            // unless nothing may be written there any more.
            ServerOp::Ping => {
                self.owed_pongs += 1;
                return self.answer_pings();
            }
            ServerOp::Pong => {
                if self.stray_pongs > 0 {
                    // The answer to a PING of before the handoff (ours is sent after them
                    // all, so answered after them).
                    self.stray_pongs -= 1;
                } else if self.phase == Phase::Draining {
                    self.phase = Phase::Done;
                    return vec![Step::Close];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// The old connection ended (the server closed it, or it failed).
    pub fn old_lost(&mut self) {
        self.phase = Phase::Done;
    }

    /// `bytes` for the old connection, after the PONGs owed to its PINGs.
    fn write(&mut self, bytes: &[u8]) -> Step {
        let mut out = BytesMut::with_capacity(bytes.len() + 6 * self.owed_pongs);
        for _ in 0..std::mem::take(&mut self.owed_pongs) {
            self.encoder.pong(&mut out);
        }
        out.extend_from_slice(bytes);
        Step::Write(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(steps: &[Step]) -> Vec<&[u8]> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Write(b) => Some(&b[..]),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_whole_move_in_order() {
        let t0 = Instant::now();
        let mut r = Retirement::new(true, 0, 0);
        assert!(r.begin(Some("_INBOX.x.ldm")).is_empty());
        assert_eq!(
            r.wake_at(),
            None,
            "nothing to time before the new server's PONG"
        );
        assert!(r.timer(t0, true, Vec::new).is_empty());
        let steps = r.new_server_proven(t0);
        assert_eq!(writes(&steps), vec![&b"PUB _INBOX.x.ldm 0\r\n\r\n"[..]]);
        assert_eq!(r.wake_at(), Some(t0 + PROBE_INTERVAL));
        let steps = r.timer(t0 + PROBE_INTERVAL, true, || panic!("not yet"));
        assert_eq!(writes(&steps).len(), 1, "the probe again");
        assert_eq!(
            r.probe_arrived(t0 + PROBE_INTERVAL * 2),
            vec![Step::EndProbe]
        );
        let until = t0 + PROBE_INTERVAL * 2 + PROPAGATION_GRACE;
        assert_eq!(r.wake_at(), Some(until));
        assert!(
            r.timer(until - Duration::from_millis(1), true, Vec::new)
                .is_empty()
        );
        let steps = r.timer(until, true, || vec![3, 5]);
        let mut unsubs = writes(&steps).concat();
        unsubs.sort_unstable();
        let mut expected = b"UNSUB 3\r\nUNSUB 5\r\nPING\r\n".to_vec();
        expected.sort_unstable();
        assert_eq!(unsubs, expected);
        assert_eq!(r.phase(), Phase::Draining);
        assert_eq!(r.old_op(&ServerOp::Pong), vec![Step::Close]);
        assert_eq!(r.phase(), Phase::Done);
    }

    #[test]
    fn skips_the_pongs_of_earlier_pings_and_answers_pings_first() {
        let t0 = Instant::now();
        let mut r = Retirement::new(true, 2, 1);
        assert_eq!(
            writes(&r.begin(None)),
            vec![&b"PONG\r\n"[..]],
            "the PONG owed since before the handoff"
        );
        assert!(r.old_op(&ServerOp::Pong).is_empty());
        assert_eq!(writes(&r.old_op(&ServerOp::Ping)), vec![&b"PONG\r\n"[..]]);
        assert!(r.new_server_proven(t0).is_empty(), "no probe: the grace");
        let steps = r.timer(t0 + PROPAGATION_GRACE, true, || vec![1]);
        assert_eq!(writes(&steps), vec![&b"UNSUB 1\r\nPING\r\n"[..]]);
        assert!(r.old_op(&ServerOp::Pong).is_empty(), "a stray PONG");
        assert_eq!(r.old_op(&ServerOp::Pong), vec![Step::Close]);
    }

    #[test]
    fn a_probe_that_never_comes_back_gives_up_at_the_deadline() {
        let t0 = Instant::now();
        let mut r = Retirement::new(true, 0, 0);
        let _ = r.begin(Some("p"));
        let _ = r.new_server_proven(t0);
        let mut probes = 1;
        let now = loop {
            let now = r.wake_at().expect("a timer while probing");
            let steps = r.timer(now, true, Vec::new);
            if steps.contains(&Step::ProbeTimedOut) {
                assert!(steps.contains(&Step::EndProbe));
                break now;
            }
            probes += writes(&steps).len();
        };
        assert_eq!(now, t0 + PROPAGATION_TIMEOUT);
        assert!(probes >= 100, "{probes}");
        assert!(matches!(r.phase(), Phase::Grace { .. }));
    }

    #[test]
    fn while_the_live_link_is_down_the_probe_never_gives_up_and_the_grace_never_ends() {
        let t0 = Instant::now();
        let mut r = Retirement::new(true, 0, 0);
        let _ = r.begin(Some("p"));
        let _ = r.new_server_proven(t0);
        let later = t0 + PROPAGATION_TIMEOUT * 10;
        assert!(r.timer(later, false, || panic!("no UNSUB")).is_empty());
        assert!(matches!(r.phase(), Phase::Probing { deadline, .. } if deadline > later));
        assert_eq!(r.probe_arrived(later), vec![Step::EndProbe]);
        let much_later = later + PROPAGATION_GRACE * 50;
        assert!(r.timer(much_later, false, || panic!("no UNSUB")).is_empty());
        assert!(matches!(r.phase(), Phase::Grace { until } if until > much_later));
        let until = r.wake_at().expect("the grace");
        let steps = r.timer(until, true, || vec![1]);
        assert_eq!(writes(&steps), vec![&b"UNSUB 1\r\nPING\r\n"[..]]);
    }

    #[test]
    fn a_cut_stream_is_never_written_to() {
        let t0 = Instant::now();
        let mut r = Retirement::new(false, 0, 1);
        assert!(r.begin(Some("p")).is_empty());
        assert!(r.old_op(&ServerOp::Ping).is_empty());
        assert!(r.new_server_proven(t0).is_empty());
        assert_eq!(r.phase(), Phase::Stranded);
        assert_eq!(r.wake_at(), None);
        assert!(r.probe_arrived(t0).is_empty());
        assert!(
            r.old_op(&ServerOp::Pong).is_empty(),
            "delivers until the server closes"
        );
        r.old_lost();
        assert_eq!(r.phase(), Phase::Done);
    }
}
