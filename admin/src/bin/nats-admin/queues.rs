//! `queues` and `queue delete`: amqp-compat's queues, over the services' account's JetStream.

use admin::QueueAdmin;

use crate::args::{Command, QueueCommand};
use crate::commands::Outcome;
use crate::connect::admin_error;
use crate::render::{self, opt, table};

/// Runs a queue command over `js`.
pub async fn run(js: jetstream::Context, command: &Command, json: bool) -> Result<Outcome, String> {
    let admin = QueueAdmin::over_jetstream(js);
    let e = |e: admin::AdminError| match e {
        admin::AdminError::JetStream(_) => format!(
            "{} (the queue commands need a user of the services' account, with JetStream)",
            admin_error(&e)
        ),
        e => admin_error(&e),
    };
    match command {
        Command::Queues {
            vhost,
            name_regex,
            page,
            page_size,
        } => {
            let p = admin
                .list_queues(vhost, name_regex.as_deref(), *page, *page_size)
                .await
                .map_err(e)?;
            if json {
                return render::json(&p).map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "NAME",
                "MESSAGES",
                "READY",
                "UNACKED",
                "CONSUMERS",
                "DURABLE",
                "EXCLUSIVE",
                "STORAGE",
            ]);
            for q in &p.items {
                let storage = match q.storage.design {
                    admin::QueueDesign::Stream => opt(q.storage.stream.as_deref()),
                    admin::QueueDesign::Local => format!("memory of {}", q.storage.consumer),
                    admin::QueueDesign::Consumer => format!(
                        "{} > {}",
                        q.storage.stream.as_deref().unwrap_or("(unbound)"),
                        q.storage.consumer
                    ),
                };
                // A design-E queue whose owner did not answer: counts unknown.
                let count = |n: u64| match q.storage.counted {
                    true => n.to_string(),
                    false => "?".to_string(),
                };
                t.add_row(vec![
                    q.name.clone(),
                    count(q.messages),
                    count(q.messages_ready),
                    count(q.messages_unacknowledged),
                    q.consumers.to_string(),
                    yes(q.durable),
                    yes(q.exclusive),
                    storage,
                ]);
            }
            println!("{t}");
            println!(
                "page {} of {}: {} of {} matching queue(s), {} in vhost {}",
                p.page, p.page_count, p.item_count, p.filtered_count, p.total_count, vhost
            );
            Ok(Outcome::Ok)
        }
        Command::Queue(QueueCommand::Delete { name, vhost }) => {
            let gone = admin.delete_queue(vhost, name).await.map_err(e)?;
            if json {
                return render::json(&gone).map(|_| Outcome::Ok);
            }
            println!(
                "deleted queue {} in vhost {} ({} message(s))",
                gone.name, gone.vhost, gone.messages
            );
            Ok(Outcome::Ok)
        }
        _ => Err("not a queue command".to_string()),
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
