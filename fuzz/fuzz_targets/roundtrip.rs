//! Structured ops encoded and parsed back; see `nats_proto::fuzzing::check_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_proto::fuzzing::{RoundtripInput, check_roundtrip};

fuzz_target!(|input: RoundtripInput| check_roundtrip(&input));
