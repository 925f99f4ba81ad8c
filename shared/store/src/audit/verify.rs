//! Verification of the audit log, page by page: the stored tree against a
//! checkpoint the caller kept elsewhere, every event and subtree hash
//! against the tree, and the live records (vouchers, classes and their
//! holds) against the events that last described them.
//!
//! Each call checks a bounded amount and returns a [`Cursor`] for the next,
//! so a city-sized log is verified by many short requests. The cursor is
//! the caller's: a verification can be resumed at any time, and each page
//! re-checks the tree's head against the caller's checkpoint first.

use super::tree::{self, Gap, LogKey};
use super::{Event, length};
use crate::checkpoint::{self, Checkpoint};
use crate::index::{self, Position};
use crate::keys;
use crate::kv::KeyValue;
use crate::records::{StoreError, decode};
use crate::tlog::{self, Hash};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Leaves checked together: a complete subtree of this level.
pub const CHUNK_LEVEL: u32 = 8;
/// Leaves in a chunk.
pub const CHUNK: u64 = 1 << CHUNK_LEVEL;
/// Live records checked together.
pub const RECORDS_PER_BATCH: usize = 100;

/// Where a verification goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Cursor {
    /// The log, from this chunk.
    Log {
        /// Chunk number (leaves `chunk · 256 …`).
        chunk: u64,
    },
    /// The vouchers, from this position of the list of every voucher.
    Vouchers {
        /// Position.
        at: Position,
    },
    /// The classes, from this position of the list of every class.
    Classes {
        /// Position.
        at: Position,
    },
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor::Log { chunk: 0 }
    }
}

/// One thing found wrong. Names the key and, where there is one, the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    /// Stable code: `truncated`, `rewritten`, `event_missing`,
    /// `event_changed`, `gap_not_signed`, `late_event`, `node_changed`,
    /// `counter_behind`, `checkpoint_invalid`, `record_missing`,
    /// `record_not_as_logged`, `hold_missing`, `unaudited_change`.
    pub kind: &'static str,
    /// The store key concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The event concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// In English.
    pub message_en: String,
    /// In Chinese.
    pub message_zh: String,
}

fn found(
    kind: &'static str,
    key: Option<String>,
    seq: Option<u64>,
    en: String,
    zh: String,
) -> Discrepancy {
    Discrepancy {
        kind,
        key,
        seq,
        message_en: en,
        message_zh: zh,
    }
}

/// What one verification call found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Leaves in the stored tree.
    pub log_size: u64,
    /// Sequence numbers taken (integrated or not).
    pub taken: u64,
    /// The size of the caller's checkpoint, if one was given.
    pub checkpoint_size: Option<u64>,
    /// What this call checked, for the record (`log leaves 0–2047`, …).
    pub checked: String,
    /// What is wrong (empty when all checked is intact).
    pub discrepancies: Vec<Discrepancy>,
    /// Where the next call goes on; `None` when everything is checked.
    pub next: Option<Cursor>,
}

/// Checks the head of the log against `trusted` (if given), then the part
/// of the log or the live records at `cursor`, at most `chunks` chunks of
/// 256 leaves or `chunks` batches of 100 records.
pub fn verify(
    kv: &impl KeyValue,
    key: &LogKey,
    trusted: Option<&Checkpoint>,
    cursor: Cursor,
    chunks: u64,
) -> Result<Report, StoreError> {
    let chunks = chunks.max(1);
    let state = tree::settled_state(kv)?.unwrap_or_default();
    let taken = length(kv)?;
    let size = state.size;
    let mut out = Vec::new();
    head(kv, key, &state, trusted, taken, &mut out)?;
    let truncated = out.iter().any(|d| d.kind == "truncated");
    let (checked, next) = match cursor {
        Cursor::Log { chunk } if !truncated => {
            let total = size.div_ceil(CHUNK);
            let end = chunk.saturating_add(chunks).min(total);
            for c in chunk..end {
                check_chunk(kv, key, c, size, &mut out)?;
            }
            let next = if end < total {
                Some(Cursor::Log { chunk: end })
            } else {
                check_upper(kv, size, &mut out)?;
                Some(Cursor::Vouchers {
                    at: Position::default(),
                })
            };
            let hi = (end * CHUNK).min(size);
            (
                format!("log leaves {}–{}", chunk * CHUNK, hi.saturating_sub(1)),
                next,
            )
        }
        Cursor::Log { .. } => ("the log's head".to_string(), None),
        Cursor::Vouchers { at } => {
            let (codes, more) = index::read(
                kv,
                crate::vouchers::ALL_INDEX,
                at,
                RECORDS_PER_BATCH * chunks as usize,
            )?;
            check_vouchers(kv, &codes, &mut out)?;
            let next = Some(match more {
                Some(at) => Cursor::Vouchers { at },
                None => Cursor::Classes {
                    at: Position::default(),
                },
            });
            (format!("{} vouchers", codes.len()), next)
        }
        Cursor::Classes { at } => {
            let (ids, more) =
                index::read(kv, "classes:all", at, RECORDS_PER_BATCH * chunks as usize)?;
            check_classes(kv, &ids, &mut out)?;
            (
                format!("{} classes and their holds", ids.len()),
                more.map(|at| Cursor::Classes { at }),
            )
        }
    };
    Ok(Report {
        log_size: size,
        taken,
        checkpoint_size: trusted.map(|c| c.size),
        checked,
        discrepancies: out,
        next,
    })
}

/// The tree's own checkpoint, its frontier, the counter, and the caller's checkpoint.
fn head(
    kv: &impl KeyValue,
    key: &LogKey,
    state: &tree::TreeState,
    trusted: Option<&Checkpoint>,
    taken: u64,
    out: &mut Vec<Discrepancy>,
) -> Result<(), StoreError> {
    let size = state.size;
    let tree_key = Some(keys::audit_tree());
    if !state.checkpoint.is_empty() {
        match checkpoint::open(&state.checkpoint, &key.name, &key.public) {
            Ok(cp) if cp.size == size && cp.root == state.root()? => {}
            _ => out.push(found(
                "checkpoint_invalid",
                tree_key.clone(),
                None,
                "the log's own checkpoint is not signed by the log key or does not match its tree"
                    .into(),
                "审计日志自身的检查点签名无效或与日志树不符".into(),
            )),
        }
        if tree::root_at(kv, size).ok() != Some(state.root()?) {
            out.push(found(
                "node_changed",
                tree_key.clone(),
                None,
                format!(
                    "the stored subtree hashes do not give the root of the log's {size} leaves"
                ),
                format!("存储的子树哈希与日志 {size} 条记录的根哈希不符"),
            ));
        }
    }
    if taken < size {
        out.push(found(
            "counter_behind",
            Some(keys::audit_next()),
            None,
            format!(
                "the sequence counter ({taken}) is behind the log ({size} events): it was reset"
            ),
            format!("审计序号计数器（{taken}）落后于日志（{size} 条）：计数器被重置"),
        ));
    }
    let Some(cp) = trusted else { return Ok(()) };
    if cp.origin != key.origin {
        out.push(found(
            "checkpoint_invalid",
            None,
            None,
            format!(
                "the checkpoint is of log {}, not of {}",
                cp.origin, key.origin
            ),
            "所给检查点不属于本审计日志".into(),
        ));
    }
    if cp.size > size {
        out.push(found(
            "truncated",
            tree_key,
            Some(size + 1),
            format!(
                "the log has {size} events but your checkpoint signed {}: events {}–{} were removed",
                cp.size,
                size + 1,
                cp.size
            ),
            format!(
                "日志只有 {size} 条记录，而您保存的检查点签署了 {} 条：第 {}–{} 条被删除",
                cp.size,
                size + 1,
                cp.size
            ),
        ));
    } else if tree::root_at(kv, cp.size).ok() != Some(cp.root) {
        out.push(found(
            "rewritten",
            tree_key,
            None,
            format!(
                "the first {} events of the log are not the ones your checkpoint signed",
                cp.size
            ),
            format!(
                "日志的前 {} 条记录与您保存的检查点不一致：历史被改写",
                cp.size
            ),
        ));
    }
    Ok(())
}

/// A value as read: `Err(())` when it does not open (changed at rest).
type Read = Result<Option<Vec<u8>>, ()>;

/// Reads `keys` in one batch; a value that does not open (changed at rest)
/// is `Err(())`, found by reading the batch key by key.
fn read_tolerant(kv: &impl KeyValue, keys: &[String]) -> Result<Vec<Read>, StoreError> {
    match kv.get_many(keys) {
        Ok(v) => Ok(v.into_iter().map(Ok).collect()),
        Err(e) if tree::tampered(&e) => keys
            .iter()
            .map(|k| match kv.get(k) {
                Ok(v) => Ok(Ok(v)),
                Err(e) if tree::tampered(&e) => Ok(Err(())),
                Err(e) => Err(e.into()),
            })
            .collect(),
        Err(e) => Err(e.into()),
    }
}

fn changed(seq: u64, why: &str) -> Discrepancy {
    found(
        "event_changed",
        Some(keys::audit_event(seq)),
        Some(seq),
        format!("event {seq} was changed after it was integrated: {why}"),
        format!("第 {seq} 条审计记录在写入日志后被修改"),
    )
}

/// One chunk of leaves: each event or gap against its leaf hash, and the
/// subtree hashes inside the chunk against the leaves.
fn check_chunk(
    kv: &impl KeyValue,
    key: &LogKey,
    chunk: u64,
    size: u64,
    out: &mut Vec<Discrepancy>,
) -> Result<(), StoreError> {
    let lo = chunk * CHUNK;
    let hi = (lo + CHUNK).min(size);
    let n = (hi - lo) as usize;
    let mut wanted: Vec<String> = (lo + 1..=hi).map(keys::audit_event).collect();
    wanted.extend((lo + 1..=hi).map(keys::audit_gap));
    let values = read_tolerant(kv, &wanted)?;
    let (events, gaps) = values.split_at(n);
    let mut coords = Vec::new();
    for level in 0..=CHUNK_LEVEL {
        for i in (lo >> level)..(hi >> level) {
            coords.push((level, i));
        }
    }
    let stored = tree::nodes(kv, &coords)?;
    let mut level0: Vec<Option<Hash>> = Vec::with_capacity(n);
    for i in 0..n {
        let seq = lo + i as u64 + 1;
        let leaf = match (&gaps[i], &events[i]) {
            (Ok(Some(g)), ev) => {
                match decode::<Gap>(g, "audit gap") {
                    Ok(gap) if gap.seq == seq && gap.gap && gap.signed_by(key) => {}
                    _ => out.push(found(
                        "gap_not_signed",
                        Some(keys::audit_gap(seq)),
                        Some(seq),
                        format!("the gap recorded at {seq} is not signed by the log key"),
                        format!("第 {seq} 条的缺号记录没有日志密钥的有效签名"),
                    )),
                }
                if matches!(ev, Ok(Some(_)) | Err(())) {
                    out.push(found(
                        "late_event",
                        Some(keys::audit_event(seq)),
                        Some(seq),
                        format!("event {seq} was written after its number was integrated as a gap"),
                        format!("第 {seq} 条审计记录在其序号被记为缺号之后才写入"),
                    ));
                }
                Some(tlog::leaf_hash(g))
            }
            (Err(()), _) => {
                out.push(found(
                    "gap_not_signed",
                    Some(keys::audit_gap(seq)),
                    Some(seq),
                    format!("the gap record at {seq} was changed at rest"),
                    format!("第 {seq} 条的缺号记录被篡改"),
                ));
                None
            }
            (Ok(None), Ok(Some(e))) => match decode::<Event>(e, "audit event") {
                Ok(ev) if ev.seq == seq && ev.compute_digest() == ev.digest => {
                    Some(tlog::leaf_hash(e))
                }
                _ => {
                    out.push(changed(seq, "it does not carry its number and digest"));
                    None
                }
            },
            (Ok(None), Err(())) => {
                out.push(changed(seq, "it does not open with the data key"));
                None
            }
            (Ok(None), Ok(None)) => {
                out.push(found(
                    "event_missing",
                    Some(keys::audit_event(seq)),
                    Some(seq),
                    format!("event {seq} is in the log but no longer in the store: it was deleted"),
                    format!("第 {seq} 条审计记录已写入日志，但在存储中被删除"),
                ));
                None
            }
        };
        let index = lo + i as u64;
        if let Some(leaf) = leaf
            && stored.get(&(0, index)) != Some(&leaf)
        {
            out.push(changed(seq, "its hash is not the leaf the log integrated"));
        }
        level0.push(stored.get(&(0, index)).copied());
    }
    // Subtrees inside the chunk, from the stored leaves up.
    let mut below = level0;
    for level in 1..=CHUNK_LEVEL {
        let mut here = Vec::new();
        for (j, pair) in below.chunks(2).enumerate() {
            if pair.len() < 2 {
                break;
            }
            let i = (lo >> level) + j as u64;
            let computed = match (pair[0], pair[1]) {
                (Some(l), Some(r)) => Some(tlog::node_hash(&l, &r)),
                _ => None,
            };
            let have = stored.get(&(level, i)).copied();
            if computed.is_some() && have != computed {
                out.push(node_changed(level, i));
            }
            here.push(have);
        }
        below = here;
    }
    Ok(())
}

fn node_changed(level: u32, index: u64) -> Discrepancy {
    found(
        "node_changed",
        Some(keys::audit_node(level, index)),
        None,
        format!("the hash of subtree {level}/{index} does not follow from its children"),
        format!("子树哈希 {level}/{index} 与其下层不符"),
    )
}

/// The subtrees above the chunks, from the stored chunk roots up.
fn check_upper(
    kv: &impl KeyValue,
    size: u64,
    out: &mut Vec<Discrepancy>,
) -> Result<(), StoreError> {
    let mut coords = Vec::new();
    let mut level = CHUNK_LEVEL;
    while (size >> level) > 0 {
        coords.extend((0..(size >> level)).map(|i| (level, i)));
        level += 1;
    }
    let stored = tree::nodes(kv, &coords)?;
    for &(level, i) in coords.iter().filter(|(l, _)| *l > CHUNK_LEVEL) {
        let computed = match (
            stored.get(&(level - 1, 2 * i)),
            stored.get(&(level - 1, 2 * i + 1)),
        ) {
            (Some(l), Some(r)) => tlog::node_hash(l, r),
            _ => continue,
        };
        if stored.get(&(level, i)) != Some(&computed) {
            out.push(node_changed(level, i));
        }
    }
    Ok(())
}

/// For each entity, its event count and the events on the last page of its
/// index, read in three batches.
fn last_events(
    kv: &impl KeyValue,
    entities: &[String],
) -> Result<Vec<(u64, Vec<Event>)>, StoreError> {
    let names: Vec<String> = entities.iter().map(|e| super::entity_index(e)).collect();
    let tails = index::tails(kv, &names)?;
    let seqs: Vec<Vec<u64>> = tails
        .iter()
        .map(|(_, page)| page.iter().filter_map(|s| s.parse().ok()).collect())
        .collect();
    let all: Vec<String> = seqs
        .iter()
        .flatten()
        .map(|s| keys::audit_event(*s))
        .collect();
    let values = read_tolerant(kv, &all)?;
    let mut by_seq: HashMap<u64, Event> = HashMap::new();
    for v in values.into_iter().flatten().flatten() {
        if let Ok(e) = decode::<Event>(&v, "audit event") {
            by_seq.insert(e.seq, e);
        }
    }
    Ok(tails
        .iter()
        .zip(seqs)
        .map(|((count, _), seqs)| {
            (
                *count,
                seqs.iter().filter_map(|s| by_seq.get(s).cloned()).collect(),
            )
        })
        .collect())
}

fn not_as_logged(key: String, seq: u64, en: String) -> Discrepancy {
    found(
        "record_not_as_logged",
        Some(key.clone()),
        Some(seq),
        en,
        format!("{key} 的当前记录不是第 {seq} 条审计记录所记载的状态：可能被还原为旧值"),
    )
}

fn check_vouchers(
    kv: &impl KeyValue,
    codes: &[String],
    out: &mut Vec<Discrepancy>,
) -> Result<(), StoreError> {
    if codes.is_empty() {
        return Ok(());
    }
    let keys_wanted: Vec<String> = codes
        .iter()
        .map(|c| crate::vouchers::voucher_key(c))
        .collect();
    let records = read_tolerant(kv, &keys_wanted)?;
    let entities: Vec<String> = codes.iter().map(|c| format!("voucher:{c}")).collect();
    let logged = last_events(kv, &entities)?;
    for ((key, record), (count, events)) in keys_wanted.into_iter().zip(records).zip(logged) {
        let last = events.last();
        let record = match record {
            Ok(Some(b)) => decode::<crate::vouchers::VoucherRecord>(&b, "voucher").ok(),
            _ => None,
        };
        let Some(r) = record else {
            out.push(found(
                "record_missing",
                Some(key.clone()),
                last.map(|e| e.seq),
                format!("{key} is listed and audited but missing or unreadable in the store"),
                format!("{key} 有审计记录，但在存储中缺失或无法读取"),
            ));
            continue;
        };
        let moves = 1 + r.history.len() as u64;
        let state = format!("voucher.{}", r.state.id());
        let last_action = last.map(|e| e.change.action.as_str());
        if count > moves || (count == moves && last_action != Some(state.as_str())) {
            let seq = last.map_or(0, |e| e.seq);
            out.push(not_as_logged(
                key.clone(),
                seq,
                format!(
                    "{key} is {} after {} moves, but the log records {count} events, the last #{seq} {}: an older value was put back",
                    r.state.id(),
                    moves - 1,
                    last_action.unwrap_or("-")
                ),
            ));
        } else if count < moves && r.audited as u64 >= moves {
            out.push(found(
                "unaudited_change",
                Some(key.clone()),
                last.map(|e| e.seq),
                format!("{key} says its {moves} events were written, the log has {count}"),
                format!("{key} 的变更多于审计日志所记载的"),
            ));
        }
    }
    Ok(())
}

fn check_classes(
    kv: &impl KeyValue,
    ids: &[String],
    out: &mut Vec<Discrepancy>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut wanted: Vec<String> = ids.iter().map(|i| keys::class(i)).collect();
    wanted.extend(ids.iter().map(|i| crate::findings::hold_key(i)));
    let values = read_tolerant(kv, &wanted)?;
    let (records, holds) = values.split_at(ids.len());
    let entities: Vec<String> = ids.iter().map(|i| format!("class:{i}")).collect();
    let mut logged = last_events(kv, &entities)?;
    for (n, id) in ids.iter().enumerate() {
        let key = keys::class(id);
        let (count, mut events) = std::mem::take(&mut logged[n]);
        if count > events.len() as u64 {
            // More than one index page: read the whole history.
            events = full_history(kv, &entities[n])?;
        }
        let last_class = events
            .iter()
            .rev()
            .find(|e| e.change.action.starts_with("class."));
        match (&records[n], last_class) {
            (Ok(Some(b)), Some(e)) => {
                // The stored bytes are the record as encoded, whose digest the event holds.
                let digest = crate::pii::sha256_hex(b);
                if e.change.after.as_deref() != Some(digest.as_str()) {
                    out.push(not_as_logged(
                        key.clone(),
                        e.seq,
                        format!(
                            "{key} is not the state that event #{} ({}) recorded: an older value was put back or it was changed",
                            e.seq, e.change.action
                        ),
                    ));
                }
            }
            (Ok(None) | Err(()), Some(e)) => out.push(found(
                "record_missing",
                Some(key.clone()),
                Some(e.seq),
                format!(
                    "{key} is audited (last #{}) but missing or unreadable in the store",
                    e.seq
                ),
                format!("{key} 有审计记录，但在存储中缺失或无法读取"),
            )),
            _ => {}
        }
        // The hold: the findings opened and not rectified, by the log.
        let mut open = BTreeSet::new();
        let mut last_finding = None;
        // Finding ids compared in lower case: `finding.opened` notes are
        // `<id>:<kind>` in lower case, `finding.rectified` notes the id.
        for e in &events {
            let id = e.change.note.as_deref().unwrap_or_default().to_lowercase();
            match e.change.action.as_str() {
                "finding.opened" => {
                    open.insert(id.split(':').next().unwrap_or_default().to_string());
                    last_finding = Some(e.seq);
                }
                "finding.rectified" => {
                    open.remove(&id);
                    last_finding = Some(e.seq);
                }
                _ => {}
            }
        }
        let Some(seq) = last_finding else { continue };
        let hold_key = crate::findings::hold_key(id);
        match &holds[n] {
            Ok(Some(b)) => {
                let hold: crate::findings::ClassHold = decode(b, "class hold")?;
                let have: BTreeSet<String> = hold.open.keys().map(|k| k.to_lowercase()).collect();
                if have != open {
                    out.push(not_as_logged(
                        hold_key.clone(),
                        seq,
                        format!(
                            "{hold_key} holds {} open findings, the log {} (last finding event #{seq})",
                            have.len(),
                            open.len()
                        ),
                    ));
                }
            }
            _ => out.push(found(
                "hold_missing",
                Some(hold_key.clone()),
                Some(seq),
                format!("{hold_key} is missing or unreadable, but the log records findings on the class (last #{seq})"),
                format!("{hold_key} 缺失或无法读取，但审计日志记载了该班级的抽查问题（第 {seq} 条）"),
            )),
        }
    }
    Ok(())
}

fn full_history(kv: &impl KeyValue, entity: &str) -> Result<Vec<Event>, StoreError> {
    let mut all = Vec::new();
    let mut from = Position::default();
    loop {
        let (events, next) = super::history(kv, entity, from, 1_000)?;
        all.extend(events);
        match next {
            Some(n) => from = n,
            None => return Ok(all),
        }
    }
}

/// Integrates every event (a missing one becomes a gap at once) and
/// verifies the whole log and every live record in one go: for tests,
/// benchmarks and offline checks of a copy of the store, never for a
/// request. Returns the log's size and what was found.
pub fn integrate_and_verify_all(
    kv: &impl KeyValue,
    signer: &tree::LogSigner,
) -> Result<(u64, Vec<Discrepancy>), StoreError> {
    let now = chrono::Utc::now();
    while tree::integrate(kv, signer, now, tree::MAX_PAGE, chrono::Duration::zero())?.pending > 0 {}
    let key = signer.public();
    let mut cursor = Some(Cursor::default());
    let mut found = Vec::new();
    let mut size = 0;
    while let Some(c) = cursor {
        let report = verify(kv, &key, None, c, 64)?;
        size = report.log_size;
        found.extend(report.discrepancies);
        cursor = report.next;
    }
    Ok((size, found))
}
