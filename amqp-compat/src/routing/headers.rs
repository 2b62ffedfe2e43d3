//! Headers exchange matching: binding arguments against message headers, RabbitMQ's rules.
//!
//! `x-match` is `all` (default), `any`, `all-with-x` or `any-with-x`. With `all`/`any`, binding
//! arguments whose names start with `x-` are not criteria. A criterion with a void value only
//! needs the header to be present; otherwise the values must be equal (integers of any width by
//! value, short and long strings by content).

use super::args::ArgValue;
use crate::{
    error::{Error, Result},
    types::{AMQPValue, FieldTable},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    All,
    Any,
}

/// Checks a headers binding's `x-match` (406 when it is not one of RabbitMQ's four values).
pub fn validate_binding(args: &FieldTable) -> Result<()> {
    mode(args).map(|_| ())
}

fn mode(args: &FieldTable) -> Result<(Mode, bool)> {
    let Some(v) = args.inner().get("x-match") else {
        return Ok((Mode::All, false));
    };
    let text = match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => {
            return Err(Error::precondition_failed(format!(
                "Invalid x-match field type {other:?}; expected longstr"
            )));
        }
    };
    match text.as_str() {
        "all" => Ok((Mode::All, false)),
        "any" => Ok((Mode::Any, false)),
        "all-with-x" => Ok((Mode::All, true)),
        "any-with-x" => Ok((Mode::Any, true)),
        other => Err(Error::precondition_failed(format!(
            "Invalid x-match field value {other:?}; expected all, any, all-with-x, or any-with-x"
        ))),
    }
}

/// True when a message with `headers` matches a binding with `args`. An invalid `x-match`
/// never matches (such a binding cannot be created).
pub fn headers_match(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let Ok((mode, with_x)) = mode(args) else {
        return false;
    };
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty).inner();
    let mut criteria = args
        .inner()
        .iter()
        .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.as_str().starts_with("x-")))
        .map(|(k, want)| match headers.get(k) {
            None => false,
            Some(_) if matches!(want, AMQPValue::Void) => true,
            Some(got) => ArgValue::from_amqp_value(got) == ArgValue::from_amqp_value(want),
        });
    match mode {
        Mode::All => criteria.all(|m| m),
        Mode::Any => criteria.any(|m| m),
    }
}
