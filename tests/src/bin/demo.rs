//! The demo: starts a local `nats-server` through the test harness and prints what it says
//! (`bash scripts/demo`).

use nats_tests::NatsServer;

fn main() {
    let server = NatsServer::single();
    let conn = server.raw_connection();
    println!("nats-server running at {}", server.url());
    println!(
        "monitoring at http://127.0.0.1:{}/varz",
        server.monitor_port()
    );
    let info =
        serde_json::to_string_pretty(conn.info()).unwrap_or_else(|_| conn.info().to_string());
    println!("INFO {info}");
    println!("(stopping the server)");
}
