//! Parser throughput: 1M MSG frames and 1M HMSG frames with 16 B payloads, against the floor of
//! merely finding every newline in the MSG buffer with memchr.
//!
//! `cargo bench -p nats-proto --bench parse -- --measurement-time 5`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nats_proto::{Parser, ServerOp};

const FRAMES: usize = 1_000_000;
const PAYLOAD: &[u8; 16] = b"0123456789abcdef";
const HEADERS: &[u8] = b"NATS/1.0\r\nNats-Msg-Id: 5f2c1e\r\nX-Trace: abc123\r\n\r\n";

fn msg_buffer() -> BytesMut {
    let frame = [&b"MSG bench.subject.x 7 16\r\n"[..], PAYLOAD, b"\r\n"].concat();
    let mut buf = BytesMut::with_capacity(frame.len() * FRAMES);
    for _ in 0..FRAMES {
        buf.extend_from_slice(&frame);
    }
    buf
}

fn hmsg_buffer() -> BytesMut {
    let line = format!(
        "HMSG bench.subject.x 7 {} {}\r\n",
        HEADERS.len(),
        HEADERS.len() + PAYLOAD.len()
    );
    let frame = [line.as_bytes(), HEADERS, PAYLOAD, b"\r\n"].concat();
    let mut buf = BytesMut::with_capacity(frame.len() * FRAMES);
    for _ in 0..FRAMES {
        buf.extend_from_slice(&frame);
    }
    buf
}

/// Parses every frame, dropping each message as the client would after delivering it. Returns
/// the (empty) buffer so that freeing its memory happens outside the timed part.
///
/// The result is matched by reference: moving a 176-byte `ServerOp` out of the `Result` is a
/// `memcpy` on the consumer's side, not parsing work.
fn parse_all(mut buf: BytesMut) -> BytesMut {
    let mut parser = Parser::new();
    let mut n = 0;
    loop {
        match &parser.parse(&mut buf) {
            Ok(Some(ServerOp::Msg(m))) => {
                black_box(m);
                n += 1;
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(n, FRAMES);
    buf
}

fn parse(c: &mut Criterion) {
    let msgs = msg_buffer();
    let hmsgs = hmsg_buffer();
    let mut group = c.benchmark_group("parse_1M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("memchr_floor_msg_16B", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&msgs[..])).count())
    });
    group.bench_function("msg_16B", |b| {
        b.iter_batched(|| msgs.clone(), parse_all, BatchSize::PerIteration)
    });
    group.bench_function("hmsg_16B_2_headers", |b| {
        b.iter_batched(|| hmsgs.clone(), parse_all, BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
