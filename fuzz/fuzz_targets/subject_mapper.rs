//! Exchange, routing key and binding pattern through the AMQP subject mapper; see
//! `amqp_compat::fuzzing::check` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| amqp_compat::fuzzing::subject_mapper(data));
