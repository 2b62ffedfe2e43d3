//! Go's `time.Duration` text form, as the server writes RTTs, uptimes and idle times.

use std::time::Duration;

/// Reads a Go duration string (`"1.5ms"`, `"2h3m4s"`, `"350µs"`, `"0s"`, `"1d2h"` as the server
/// writes uptimes). Returns `None` for text that is not one.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(admin::models::go_duration("1m30s"), Some(Duration::from_secs(90)));
/// assert_eq!(admin::models::go_duration("250µs"), Some(Duration::from_micros(250)));
/// assert_eq!(admin::models::go_duration("fast"), None);
/// ```
pub fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_server_writes() {
        assert_eq!(go_duration("0s"), Some(Duration::ZERO));
        assert_eq!(go_duration("1.5ms"), Some(Duration::from_micros(1500)));
        assert_eq!(go_duration("1d2h3m4s"), Some(Duration::from_secs(93784)));
        assert_eq!(go_duration("12ns"), Some(Duration::from_nanos(12)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "ms", "1x", "1.2.3s", "-1s", "s1"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
