//! The read APIs the key-value store and queue depths rest on: stream info with per-subject
//! counts and deleted sequences, direct get of the next message on a subject, and batches.

mod common;

use common::{setup, unique};
use jetstream::{DirectGet, ErrorCode, StreamConfig, StreamInfoOptions};

#[tokio::test]
async fn subject_counts_deleted_details_and_direct_batches() {
    let (_server, js) = setup().await;
    let name = unique("RD");
    let p = name.to_lowercase();
    js.create_stream(StreamConfig {
        allow_direct: true,
        ..common::memory_stream(&name)
    })
    .await
    .unwrap();
    // seq: 1 a, 2 b, 3 a, 4 c.x, 5 a, 6 b
    for s in ["a", "b", "a", "c.x", "a", "b"] {
        js.publish(&format!("{p}.{s}"), s).await.unwrap();
    }
    js.delete_message(&name, 2).await.unwrap();

    let counts = js.stream_subjects(&name, &format!("{p}.>")).await.unwrap();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[&format!("{p}.a")], 3);
    assert_eq!(counts[&format!("{p}.b")], 1);
    assert_eq!(counts[&format!("{p}.c.x")], 1);
    let only_c = js
        .stream_subjects(&name, &format!("{p}.c.*"))
        .await
        .unwrap();
    assert_eq!(only_c.keys().collect::<Vec<_>>(), [&format!("{p}.c.x")]);
    assert!(
        js.stream_subjects(&name, "nothing.>")
            .await
            .unwrap()
            .is_empty()
    );

    let info = js
        .stream_info_with(
            &name,
            &StreamInfoOptions::subjects(format!("{p}.a")).deleted_details(),
        )
        .await
        .unwrap();
    assert_eq!(info.state.deleted, [2]);
    assert_eq!(info.state.subjects.len(), 1);
    // Plain info carries neither.
    let plain = js.stream_info(&name).await.unwrap();
    assert!(plain.state.subjects.is_empty() && plain.state.deleted.is_empty());

    // next_by_subj: the first message on the subject at or after a sequence.
    let m = js
        .direct_get_next(&name, &format!("{p}.a"), 2)
        .await
        .unwrap();
    assert_eq!(m.sequence, 3);
    let m = js
        .direct_get_next(&name, &format!("{p}.*"), 2)
        .await
        .unwrap();
    assert_eq!(m.sequence, 3);
    let none = js.direct_get_next(&name, &format!("{p}.a"), 6).await;
    assert!(none.unwrap_err().is_api(ErrorCode::NO_MESSAGE_FOUND));

    // Batches.
    let batch = js
        .direct_get_batch(&name, &DirectGet::next(format!("{p}.a"), 1).batch(10))
        .await
        .unwrap();
    let seqs: Vec<u64> = batch.iter().map(|m| m.sequence).collect();
    assert_eq!(seqs, [1, 3, 5]);
    assert_eq!(&batch[1].payload[..], b"a");
    let two = js
        .direct_get_batch(&name, &DirectGet::next(format!("{p}.>"), 1).batch(2))
        .await
        .unwrap();
    assert_eq!(two.iter().map(|m| m.sequence).collect::<Vec<_>>(), [1, 3]);
    let last = js
        .direct_get_batch(
            &name,
            &DirectGet::multi_last([format!("{p}.a"), format!("{p}.b"), format!("{p}.c.>")]),
        )
        .await
        .unwrap();
    let mut seqs: Vec<u64> = last.iter().map(|m| m.sequence).collect();
    seqs.sort();
    assert_eq!(seqs, [4, 5, 6]);
    let empty = js
        .direct_get_batch(&name, &DirectGet::next("nothing.here", 1).batch(5))
        .await
        .unwrap();
    assert!(empty.is_empty());
}
