//! Replays the fuzz corpora and every kept crash input through the fuzz entry points, so a
//! plain `cargo test` (no cargo-fuzz, no nightly) keeps fixed crashes fixed.

use std::path::{Path, PathBuf};

use nats_proto::fuzzing;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for path in files {
        let data = std::fs::read(&path).expect("readable corpus file");
        // Name the file before running it, so a panic says which input failed.
        eprintln!("replaying {}", path.display());
        run(&data);
    }
}

#[test]
fn parse_server_ops_corpus() {
    replay("parse_server_ops", fuzzing::parse_server_ops);
}

#[test]
fn roundtrip_corpus() {
    replay("roundtrip", fuzzing::roundtrip);
}
