//! Replays the `subject_mapper` fuzz corpus (and kept crash inputs) through the fuzz entry
//! point, so a plain `cargo test` keeps fixed crashes fixed without cargo-fuzz.

use std::path::Path;

#[test]
fn subject_mapper_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("subject_mapper")) else {
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
    assert!(!files.is_empty(), "no corpus for subject_mapper");
    for path in files {
        let data = std::fs::read(&path).expect("readable corpus file");
        eprintln!("replaying {}", path.display());
        amqp_compat::fuzzing::subject_mapper(&data);
    }
}
