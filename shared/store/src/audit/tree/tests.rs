use super::*;
use crate::audit::{Actor, Change, record};
use crate::memory::MemoryStore;
use chrono::TimeZone;

fn signer() -> LogSigner {
    LogSigner::from_secret(&"11".repeat(32), "audit.example/log", "example-audit").unwrap()
}

fn change(n: u64) -> Change {
    Change {
        actor: Actor {
            sub: "officer-1".into(),
            role: "district_officer".into(),
        },
        action: "test".into(),
        entity: format!("thing:{n}"),
        before: None,
        after: Some(format!("{n}")),
        note: None,
    }
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

/// RFC 6962's MTH straight from its definition.
fn naive(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => tlog::empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            tlog::node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
        }
    }
}

fn stored_leaves(kv: &MemoryStore, size: u64) -> Vec<Hash> {
    (0..size)
        .map(|i| tlog::leaf_hash(&leaf_data(kv, i).unwrap().unwrap()))
        .collect()
}

const TIMEOUT: i64 = 60;

fn run(kv: &MemoryStore, at: DateTime<Utc>, max: u64) -> Integrated {
    integrate(kv, &signer(), at, max, chrono::Duration::seconds(TIMEOUT)).unwrap()
}

#[test]
fn integrating_in_pages_of_any_size_gives_the_rfc_6962_root_and_a_checkpoint_the_public_key_opens()
{
    for page in [1u64, 3, 7, 64, 1000] {
        let kv = MemoryStore::new();
        let first = run(&kv, t(0), page);
        assert_eq!((first.size, first.added), (0, 0));
        for n in 0..70 {
            record(&kv, change(n), t(1)).unwrap();
        }
        let mut size = 0;
        while size < 70 {
            size = run(&kv, t(2), page).size;
        }
        let s = state(&kv).unwrap().unwrap();
        let root = naive(&stored_leaves(&kv, 70));
        assert_eq!(s.root().unwrap(), root, "page {page}");
        assert_eq!(root_at(&kv, 70).unwrap(), root);
        for m in [1u64, 2, 5, 33, 64, 69] {
            assert_eq!(root_at(&kv, m).unwrap(), naive(&stored_leaves(&kv, m)));
        }
        let key = signer().public();
        let cp = checkpoint::open(&s.checkpoint, &key.name, &key.public).unwrap();
        assert_eq!(
            (cp.size, cp.root, cp.origin.as_str()),
            (70, root, "audit.example/log")
        );
        // Nothing new: no write at all.
        let writes = kv.writes_to(&keys::audit_tree());
        let again = run(&kv, t(3), page);
        assert_eq!((again.added, again.size), (0, 70));
        assert_eq!(kv.writes_to(&keys::audit_tree()), writes);
    }
}

#[test]
fn proofs_from_the_store_verify_for_every_leaf_and_every_earlier_size() {
    let kv = MemoryStore::new();
    for n in 0..37 {
        record(&kv, change(n), t(1)).unwrap();
    }
    run(&kv, t(2), 1000);
    let leaves = stored_leaves(&kv, 37);
    let root = naive(&leaves);
    for i in 0..37 {
        let p = inclusion_proof(&kv, i, 37).unwrap();
        assert!(tlog::verify_inclusion(
            &leaves[i as usize],
            i,
            37,
            &p,
            &root
        ));
    }
    for m in 1..=37u64 {
        let p = consistency_proof(&kv, m, 37).unwrap();
        let old = naive(&leaves[..m as usize]);
        assert!(tlog::verify_consistency(m, 37, &old, &root, &p), "{m}");
    }
}

#[test]
fn a_writer_that_takes_a_number_and_dies_neither_stalls_others_nor_disappears_from_the_log() {
    let kv = MemoryStore::new();
    record(&kv, change(1), t(0)).unwrap();
    // The dead writer: number 2 taken, its event never written.
    kv.increment(&keys::audit_next(), 1).unwrap();
    // Later writers never wait for number 2: a handful of calls each (the
    // counter, the event, the entity index's append), where the hash chain
    // polled the event before theirs up to 2,000 times.
    for n in 3..=6 {
        let before = kv.calls();
        assert_eq!(record(&kv, change(n), t(1)).unwrap(), n);
        assert!(kv.calls() - before <= 8, "{} calls", kv.calls() - before);
    }
    let first = run(&kv, t(10), 1000);
    assert_eq!(
        (first.size, first.waiting_for, first.pending),
        (1, Some(2), 5)
    );
    // Before the timeout: still waiting, nothing skipped.
    let early = run(&kv, t(10 + TIMEOUT - 1), 1000);
    assert_eq!((early.size, early.waiting_for), (1, Some(2)));
    assert!(early.gaps.is_empty());
    // At the timeout: the gap is integrated, signed, and the rest follows.
    let late = run(&kv, t(10 + TIMEOUT), 1000);
    assert_eq!(
        (late.size, late.gaps.clone(), late.waiting_for),
        (6, vec![2], None)
    );
    let gap: Gap = crate::records::get_json(&kv, &keys::audit_gap(2), "gap")
        .unwrap()
        .unwrap();
    assert!(gap.gap && gap.signed_by(&signer().public()));
    assert_eq!(
        (gap.noticed_at, gap.integrated_at),
        (t(10), t(10 + TIMEOUT))
    );
    let other = LogSigner::from_secret(&"22".repeat(32), "audit.example/log", "example-audit")
        .unwrap()
        .public();
    assert!(!gap.signed_by(&other), "another key's check refuses it");
    // The gap's leaf is the gap record: proofs show it like any event.
    let leaves = stored_leaves(&kv, 6);
    assert_eq!(leaves[1], tlog::leaf_hash(&crate::records::encode(&gap)));
    assert_eq!(state(&kv).unwrap().unwrap().root().unwrap(), naive(&leaves));
}

#[test]
fn a_crash_after_the_swap_leaves_subtrees_that_the_next_reader_writes_again() {
    let kv = MemoryStore::new();
    for n in 0..9 {
        record(&kv, change(n), t(0)).unwrap();
    }
    run(&kv, t(1), 1000);
    let dump = kv.dump();
    for k in dump.keys().filter(|k| k.contains("audit:node:")) {
        kv.delete(k).unwrap();
    }
    let s = settled_state(&kv).unwrap().unwrap();
    assert_eq!(root_at(&kv, 9).unwrap(), s.root().unwrap());
    assert_eq!(kv.dump(), dump, "the same hashes, written again");
}

#[test]
fn a_counter_reset_behind_the_log_is_moved_past_it_so_no_event_is_overwritten() {
    let kv = MemoryStore::new();
    for n in 0..5 {
        record(&kv, change(n), t(0)).unwrap();
    }
    run(&kv, t(1), 1000);
    kv.increment(&keys::audit_next(), -3).unwrap();
    run(&kv, t(2), 1000);
    assert_eq!(record(&kv, change(9), t(3)).unwrap(), 6);
    assert_eq!(run(&kv, t(4), 1000).size, 6);
}

#[test]
fn concurrent_writers_and_integrators_build_one_tree_of_every_event() {
    let kv = MemoryStore::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    record(&kv, change(w * 100 + i), t(0)).unwrap();
                }
            })
        })
        .collect();
    let integrators: Vec<_> = (0..2)
        .map(|_| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for _ in 0..30 {
                    integrate(&kv, &signer(), t(0), 7, chrono::Duration::seconds(TIMEOUT)).unwrap();
                }
            })
        })
        .collect();
    for h in writers.into_iter().chain(integrators) {
        h.join().unwrap();
    }
    while run(&kv, t(1), 1000).size < 160 {}
    let s = settled_state(&kv).unwrap().unwrap();
    assert_eq!(s.size, 160);
    assert_eq!(s.root().unwrap(), naive(&stored_leaves(&kv, 160)));
    assert_eq!(root_at(&kv, 160).unwrap(), s.root().unwrap());
    assert!(
        kv.dump().keys().all(|k| !k.contains("audit:gap:")),
        "no gaps"
    );
}

#[test]
fn a_signing_key_is_read_from_go_s_note_format_or_hex_and_nothing_else() {
    use base64::Engine;
    let seed = [7u8; 32];
    let mut blob = vec![1u8];
    blob.extend_from_slice(&seed);
    let go = format!(
        "PRIVATE+KEY+city-audit+0badc0de+{}",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let from_go = LogSigner::from_secret(&go, "audit.example/log", "ignored").unwrap();
    let from_hex =
        LogSigner::from_secret(&"07".repeat(32), "audit.example/log", "city-audit").unwrap();
    assert_eq!(from_go.public().name, "city-audit");
    assert_eq!(from_go.public().public, from_hex.public().public);
    assert!(LogSigner::from_secret("short", "audit.example/log", "x").is_err());
    assert!(LogSigner::from_secret(&"07".repeat(32), "", "x").is_err());
    assert!(LogSigner::from_secret(&"07".repeat(32), "o", "a+b").is_err());
}
