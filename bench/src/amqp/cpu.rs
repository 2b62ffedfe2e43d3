//! CPU time of this process and of the brokers, from `/proc/<pid>/stat` (utime + stime, all
//! threads), and the timer every case starts when its timed part starts.

use std::time::{Duration, Instant};

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every architecture we run on.
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of process `pid` (`None`: this process); zero when unreadable.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| parse_stat(&s))
        .unwrap_or_default()
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name (field 2) may hold
/// spaces and parentheses, so the fields are counted from the last `)`: utime and stime are
/// fields 14 and 15, i.e. the 12th and 13th after it.
fn parse_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The pid of the Erlang VM running RabbitMQ node `node`: a `beam.smp` whose environment
/// names the node (3.10 takes the node name from `RABBITMQ_NODENAME`, not its command line).
pub fn erlang_vm_pid(node: &str) -> Option<u32> {
    let wanted = format!("RABBITMQ_NODENAME={node}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let program = cmdline.split(|b| *b == 0).next()?;
        if !program.ends_with(b"beam.smp") {
            return None;
        }
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|v| v == wanted.as_bytes())
            .then_some(pid)
    })
}

/// What one timed part cost: wall time, this process's CPU, the broker's CPU.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub elapsed: Duration,
    pub client_cpu: Duration,
    pub broker_cpu: Duration,
}

/// Started when a case's timed part starts.
#[derive(Debug)]
pub struct Meter {
    start: Instant,
    client: Duration,
    broker: Duration,
    broker_pids: Vec<u32>,
}

impl Meter {
    pub fn start(broker_pids: &[u32]) -> Self {
        Meter {
            client: cpu_time(None),
            broker: broker_cpu(broker_pids),
            broker_pids: broker_pids.to_vec(),
            start: Instant::now(),
        }
    }

    /// The cost so far, with `end` as the end of the timed part.
    pub fn stop_at(&self, end: Instant) -> Cost {
        Cost {
            elapsed: end.saturating_duration_since(self.start),
            client_cpu: cpu_time(None).saturating_sub(self.client),
            broker_cpu: broker_cpu(&self.broker_pids).saturating_sub(self.broker),
        }
    }

    pub fn stop(&self) -> Cost {
        self.stop_at(Instant::now())
    }
}

fn broker_cpu(pids: &[u32]) -> Duration {
    pids.iter().map(|p| cpu_time(Some(*p))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9";
        assert_eq!(parse_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert!(cpu_time(None) < Duration::from_secs(3600));
    }
}
