//! Arbitrary bytes into the server-op parser, whole and chunked; see
//! `nats_proto::fuzzing::parse_server_ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nats_proto::fuzzing::parse_server_ops(data));
