//! Encoder throughput: PUB with a 16 B payload into a reused buffer, cleared periodically as the
//! client's writer would after a flush.
//!
//! `cargo bench -p nats-proto --bench encode -- --measurement-time 5`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nats_proto::{Encoder, HeaderMap};

const BATCH: u64 = 1000;

fn encode(c: &mut Criterion) {
    let encoder = Encoder::default();
    let payload = b"0123456789abcdef";
    let mut headers = HeaderMap::new();
    headers.append("Nats-Msg-Id", "5f2c1e");
    headers.append("X-Trace", "abc123");
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("pub_16B", |b| {
        b.iter(|| {
            // 1000 frames of ~40 B fit the buffer, so clearing per batch never reallocates.
            buf.clear();
            for _ in 0..BATCH {
                encoder
                    .publish(&mut buf, black_box("bench.subject.x"), None, None, payload)
                    .expect("valid publish");
            }
            black_box(buf.len())
        })
    });
    group.bench_function("hpub_16B_2_headers", |b| {
        b.iter(|| {
            buf.clear();
            for _ in 0..BATCH {
                encoder
                    .publish(
                        &mut buf,
                        black_box("bench.subject.x"),
                        Some("_INBOX.abc.1"),
                        Some(&headers),
                        payload,
                    )
                    .expect("valid publish");
            }
            black_box(buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
