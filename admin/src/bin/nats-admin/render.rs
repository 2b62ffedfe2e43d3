//! Output: tables that fit the terminal, or JSON.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use time::OffsetDateTime;

/// A table with a header row, wrapping to the terminal's width when there is one.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints `value` as pretty JSON.
pub fn json(value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// The lines that say who did not answer, printed under a table.
pub fn absent(missing: &[String], unnamed: usize, failed: &[String]) {
    if !missing.is_empty() {
        println!("missing (known, did not answer): {}", missing.join(", "));
    }
    if unnamed > 0 {
        println!("missing: {unnamed} more server(s) the JetStream meta group counts");
    }
    for f in failed {
        println!("failed: {f}");
    }
}

/// 1536 -> "1.5 KiB".
pub fn bytes(n: impl Into<f64>) -> String {
    let mut v: f64 = n.into();
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if v.abs() < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    unreachable!("the loop returns at TiB")
}

/// A time as `YYYY-MM-DD HH:MM:SS`, or `-`.
pub fn when(t: Option<OffsetDateTime>) -> String {
    match t {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => "-".to_string(),
    }
}

/// `Some(x)` as text, `None` as `-`.
pub fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string())
}
