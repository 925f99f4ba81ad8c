//! The Merkle tree over the audit events, integrated page by page, and the
//! proofs it serves.
//!
//! The tree's state is one record ([`TreeState`]): its size, the frontier
//! (the roots of the complete subtrees that cover it, largest first), the
//! signed checkpoint of that size, the last page integrated and the gap being
//! watched. An integration reads the events after the tree's size in one
//! batch, appends their leaf hashes to the frontier, signs the new checkpoint
//! and swaps the state (compare-and-swap: two integrators never both move it
//! on). Only then does it write the hashes of the subtrees the page completed
//! (one per leaf on average, plus the leaves'); they follow from the page the
//! state holds, so whoever finds them unwritten (a crash after the swap)
//! writes them again, with the same values.
//!
//! An event whose number was taken but which never appears is waited for:
//! the first integration that meets it notes the time; one that meets it
//! again after the gap timeout integrates a [`Gap`] in its place, signed with
//! the checkpoint key. A log never skips a number silently.

use super::length;
use crate::checkpoint::{self, Checkpoint};
use crate::keys;
use crate::kv::{KeyValue, KvError};
use crate::records::{StoreError, backoff, create_json, decode, encode, get_json};
use crate::tlog::{self, Hash, Subtrees};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// Most events one integration step folds in.
pub const MAX_PAGE: u64 = 1_000;

/// Who signs checkpoints and gaps: the log's origin line, the key's name
/// and the Ed25519 key. Only the integrating component holds it.
pub struct LogSigner {
    origin: String,
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogSigner({})", self.name)
    }
}

/// The public side of a [`LogSigner`]: enough to check checkpoints and gaps.
#[derive(Debug, Clone)]
pub struct LogKey {
    /// The origin line of the log's checkpoints.
    pub origin: String,
    /// The key's name in signature lines.
    pub name: String,
    /// The Ed25519 public key.
    pub public: VerifyingKey,
}

impl LogKey {
    /// The verifier key in the signed-note form `<name>+<id>+<base64>`.
    pub fn verifier_key(&self) -> String {
        checkpoint::verifier_key(&self.name, &self.public)
    }
}

impl LogSigner {
    /// A signer for tests and benchmarks, from a fixed seed.
    pub fn for_tests() -> Self {
        Self::from_secret(&"5a".repeat(32), "audit.test/log", "test-audit").expect("test key")
    }

    /// A signer from the variable `audit_checkpoint_key`: either a signed-note
    /// private key as Go's `note.GenerateKey` prints it
    /// (`PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>`), or 64 hex
    /// characters of Ed25519 seed, named `name`.
    pub fn from_secret(secret: &str, origin: &str, name: &str) -> Result<Self, String> {
        let secret = secret.trim();
        let origin = origin.trim();
        if origin.is_empty() || origin.contains('\n') {
            return Err("the log origin must be one non-empty line".into());
        }
        let (name, seed) = if let Some(rest) = secret.strip_prefix("PRIVATE+KEY+") {
            let mut parts = rest.rsplitn(3, '+');
            let blob = parts.next().unwrap_or_default();
            let _id = parts.next();
            let key_name = parts.next().unwrap_or_default();
            let bytes = B64
                .decode(blob)
                .map_err(|_| "the private key is not base64".to_string())?;
            if bytes.len() != 33 || bytes[0] != 1 {
                return Err("the private key is not an Ed25519 signed-note key".into());
            }
            let seed: [u8; 32] = bytes[1..].try_into().expect("32 bytes");
            (key_name.to_string(), seed)
        } else {
            let seed = decode_hex(secret)
                .ok_or_else(|| "the checkpoint key must be 64 hex characters".to_string())?;
            (name.trim().to_string(), seed)
        };
        if name.is_empty() || name.contains(['+', ' ', '\n']) {
            return Err("the key name must be one word without '+'".into());
        }
        Ok(Self {
            origin: origin.to_string(),
            name,
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public side.
    pub fn public(&self) -> LogKey {
        LogKey {
            origin: self.origin.clone(),
            name: self.name.clone(),
            public: self.key.verifying_key(),
        }
    }

    fn sign_checkpoint(&self, size: u64, root: Hash) -> String {
        checkpoint::sign(
            &Checkpoint {
                origin: self.origin.clone(),
                size,
                root,
            },
            &self.name,
            &self.key,
        )
    }
}

/// A number whose event never appeared, integrated as such after the gap
/// timeout. Its leaf is this record's JSON, as for an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The sequence number that has no event.
    pub seq: u64,
    /// Always true: tells a gap's leaf from an event's.
    pub gap: bool,
    /// When an integration first found the number without its event.
    pub noticed_at: DateTime<Utc>,
    /// When it was integrated as a gap.
    pub integrated_at: DateTime<Utc>,
    /// Ed25519 signature of [`Gap::signed_text`] by the checkpoint key, base64.
    pub signature: String,
}

impl Gap {
    /// The text the signature covers.
    pub fn signed_text(
        origin: &str,
        seq: u64,
        noticed: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> String {
        format!(
            "audit-gap\n{origin}\n{seq}\n{}\n{}\n",
            noticed.to_rfc3339(),
            at.to_rfc3339()
        )
    }

    fn new(signer: &LogSigner, seq: u64, noticed_at: DateTime<Utc>, at: DateTime<Utc>) -> Self {
        let text = Self::signed_text(&signer.origin, seq, noticed_at, at);
        Self {
            seq,
            gap: true,
            noticed_at,
            integrated_at: at,
            signature: B64.encode(signer.key.sign(text.as_bytes()).to_bytes()),
        }
    }

    /// Whether the signature is the log key's.
    pub fn signed_by(&self, key: &LogKey) -> bool {
        let text = Self::signed_text(&key.origin, self.seq, self.noticed_at, self.integrated_at);
        B64.decode(&self.signature)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .is_some_and(|sig| key.public.verify_strict(text.as_bytes(), &sig).is_ok())
    }
}

/// The page an integration added: enough to write its subtree hashes again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Page {
    /// Index of its first leaf.
    start: u64,
    /// The frontier before it (hex).
    frontier: Vec<String>,
    /// Its leaf hashes (hex).
    leaves: Vec<String>,
    /// The gaps it integrated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gaps: Vec<Gap>,
}

/// A number being waited for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// The number.
    pub seq: u64,
    /// When an integration first found it missing.
    pub since: DateTime<Utc>,
}

/// The log's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeState {
    /// Leaves integrated.
    pub size: u64,
    /// Roots of the complete subtrees covering the tree, largest first (hex).
    frontier: Vec<String>,
    /// The signed checkpoint of this size (empty before the first integration).
    pub checkpoint: String,
    /// The last page integrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<Page>,
    /// The missing number being waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
}

impl TreeState {
    /// The root of the tree, from the frontier.
    pub fn root(&self) -> Result<Hash, StoreError> {
        Ok(fold(&parse_all(&self.frontier)?))
    }
}

/// What one integration step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrated {
    /// Leaves in the tree now.
    pub size: u64,
    /// Leaves this step added.
    pub added: u64,
    /// Numbers integrated as gaps by this step.
    pub gaps: Vec<u64>,
    /// The number whose event the log waits for, if any.
    pub waiting_for: Option<u64>,
    /// Numbers taken but not integrated yet.
    pub pending: u64,
    /// The signed checkpoint of the tree now.
    pub checkpoint: String,
}

/// Reads the log's state (`None` before the first integration).
pub fn state(kv: &impl KeyValue) -> Result<Option<TreeState>, StoreError> {
    get_json(kv, &keys::audit_tree(), "audit tree")
}

/// Reads the state and writes the subtree hashes of its last page if a crash
/// left them unwritten; proofs may then be read.
pub fn settled_state(kv: &impl KeyValue) -> Result<Option<TreeState>, StoreError> {
    let Some(s) = state(kv)? else { return Ok(None) };
    ensure_applied(kv, &s)?;
    Ok(Some(s))
}

/// Folds the events after the tree's size (at most `max`) into the tree and
/// signs the new checkpoint. Idempotent: with nothing new it changes nothing
/// (besides starting the watch of a missing number). `gap_timeout` is how
/// long a missing number is waited for before it is integrated as a gap.
pub fn integrate(
    kv: &impl KeyValue,
    signer: &LogSigner,
    now: DateTime<Utc>,
    max: u64,
    gap_timeout: chrono::Duration,
) -> Result<Integrated, StoreError> {
    let key = keys::audit_tree();
    if state(kv)?.is_none() {
        create_json(kv, &key, &TreeState::default())?;
    }
    let max = max.clamp(1, MAX_PAGE);
    for attempt in 0..crate::records::MAX_CAS_ATTEMPTS {
        backoff(attempt);
        let cas = kv.cas(&key)?;
        let current: TreeState = decode(
            &crate::kv::Cas::current(&cas)?.ok_or(StoreError::Corrupt("audit tree"))?,
            "audit tree",
        )?;
        ensure_applied(kv, &current)?;
        let mut allocated = length(kv)?;
        if allocated < current.size {
            // The counter went back (restored or reset behind the log's
            // back): move it past the log, so no new event overwrites an
            // integrated one.
            allocated = kv
                .increment(&keys::audit_next(), (current.size - allocated) as i64)?
                .max(0) as u64;
        }
        let end = current.size.saturating_add(max).min(allocated);
        let seqs: Vec<u64> = (current.size + 1..=end).collect();
        let found = read_events(kv, &seqs)?;
        let mut frontier = parse_all(&current.frontier)?;
        let mut leaves = Vec::new();
        let mut gaps = Vec::new();
        let mut watch = current.watch.clone();
        let mut waiting_for = None;
        for (seq, bytes) in seqs.iter().copied().zip(found) {
            let data = match bytes {
                Some(bytes) => bytes,
                None => match &watch {
                    Some(w) if w.seq == seq && now - w.since >= gap_timeout => {
                        let gap = Gap::new(signer, seq, w.since, now);
                        let data = encode(&gap);
                        gaps.push(gap);
                        data
                    }
                    Some(w) if w.seq == seq => {
                        waiting_for = Some(seq);
                        break;
                    }
                    _ => {
                        watch = Some(Watch { seq, since: now });
                        waiting_for = Some(seq);
                        break;
                    }
                },
            };
            let leaf = tlog::leaf_hash(&data);
            push(&mut frontier, seq - 1, leaf, &mut |_, _, _| {});
            leaves.push(crate::pii::hex(&leaf));
        }
        let size = current.size + leaves.len() as u64;
        if watch.as_ref().is_some_and(|w| w.seq <= size) {
            watch = None;
        }
        if leaves.is_empty() && watch == current.watch && !current.checkpoint.is_empty() {
            return Ok(Integrated {
                size,
                added: 0,
                gaps: Vec::new(),
                waiting_for,
                pending: allocated - size,
                checkpoint: current.checkpoint,
            });
        }
        let page = (!leaves.is_empty()).then(|| Page {
            start: current.size,
            frontier: current.frontier.clone(),
            leaves,
            gaps,
        });
        let next = TreeState {
            size,
            frontier: frontier.iter().map(|h| crate::pii::hex(h)).collect(),
            checkpoint: signer.sign_checkpoint(size, fold(&frontier)),
            page: page.clone().or(current.page.clone()),
            watch,
        };
        if crate::kv::Cas::swap(cas, &encode(&next))? {
            if let Some(p) = &page {
                apply(kv, p)?;
            }
            return Ok(Integrated {
                size,
                added: size - current.size,
                gaps: page
                    .map(|p| p.gaps.iter().map(|g| g.seq).collect())
                    .unwrap_or_default(),
                waiting_for,
                pending: allocated - size,
                checkpoint: next.checkpoint,
            });
        }
    }
    Err(StoreError::Contention)
}

/// Reads events `seqs` in one batch: each one's stored bytes, or `None`.
fn read_events(kv: &impl KeyValue, seqs: &[u64]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = seqs.iter().map(|s| keys::audit_event(*s)).collect();
    Ok(kv.get_many(&keys)?)
}

/// Appends leaf `index` to `frontier`, reporting each complete subtree it
/// closes as `(level, index, hash)`.
fn push(frontier: &mut Vec<Hash>, index: u64, leaf: Hash, out: &mut impl FnMut(u32, u64, Hash)) {
    let mut hash = leaf;
    let mut level = 0;
    out(0, index, hash);
    while (index >> level) & 1 == 1 {
        let left = frontier.pop().expect("a left sibling for every odd index");
        hash = tlog::node_hash(&left, &hash);
        level += 1;
        out(level, index >> level, hash);
    }
    frontier.push(hash);
}

/// The root of the tree whose frontier this is.
fn fold(frontier: &[Hash]) -> Hash {
    let mut it = frontier.iter().rev();
    let Some(last) = it.next() else {
        return tlog::empty_root();
    };
    it.fold(*last, |acc, left| tlog::node_hash(left, &acc))
}

fn parse_all(hexes: &[String]) -> Result<Vec<Hash>, StoreError> {
    hexes
        .iter()
        .map(|h| decode_hex(h).ok_or(StoreError::Corrupt("audit tree")))
        .collect()
}

pub(crate) fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Writes the subtree hashes (and gap records) of `page`. The last leaf's
/// hash is written alone, last, so its presence says the page is written.
fn apply(kv: &impl KeyValue, page: &Page) -> Result<(), StoreError> {
    let mut frontier = parse_all(&page.frontier)?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, leaf) in page.leaves.iter().enumerate() {
        let leaf = decode_hex(leaf).ok_or(StoreError::Corrupt("audit tree"))?;
        push(
            &mut frontier,
            page.start + i as u64,
            leaf,
            &mut |l, x, h| {
                entries.push((keys::audit_node(l, x), h.to_vec()));
            },
        );
    }
    for gap in &page.gaps {
        entries.push((keys::audit_gap(gap.seq), encode(gap)));
    }
    let last_leaf = entries
        .iter()
        .position(|(k, _)| *k == keys::audit_node(0, page.start + page.leaves.len() as u64 - 1))
        .map(|i| entries.remove(i));
    if !entries.is_empty() {
        kv.set_many(&entries)?;
    }
    if let Some((k, v)) = last_leaf {
        kv.set(&k, &v)?;
    }
    Ok(())
}

fn ensure_applied(kv: &impl KeyValue, s: &TreeState) -> Result<(), StoreError> {
    if let Some(p) = &s.page
        && !p.leaves.is_empty()
        && !kv.exists(&keys::audit_node(0, p.start + p.leaves.len() as u64 - 1))?
    {
        apply(kv, p)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading the tree

/// Notes which subtrees a computation asks for (answering zeros).
struct Recorder(RefCell<Vec<(u32, u64)>>);

impl Subtrees for Recorder {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        self.0.borrow_mut().push((level, index));
        Ok([0; 32])
    }
}

/// Subtree hashes read from the store.
struct Known(HashMap<(u32, u64), Hash>);

impl Subtrees for Known {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(StoreError::Corrupt("audit node"))
    }
}

/// Reads the hashes of `coords` in one batch. A missing or malformed one
/// is absent from the map.
pub fn nodes(
    kv: &impl KeyValue,
    coords: &[(u32, u64)],
) -> Result<HashMap<(u32, u64), Hash>, StoreError> {
    if coords.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<String> = coords
        .iter()
        .map(|(l, i)| keys::audit_node(*l, *i))
        .collect();
    Ok(coords
        .iter()
        .copied()
        .zip(kv.get_many(&keys)?)
        .filter_map(|(c, v)| Some((c, <Hash>::try_from(v?.as_slice()).ok()?)))
        .collect())
}

/// Runs `f` over the stored subtrees: once to learn which it needs, then
/// over those read in one batch.
fn with_nodes<T>(
    kv: &impl KeyValue,
    f: impl Fn(&dyn SubtreesDyn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let rec = Recorder(RefCell::new(Vec::new()));
    let _ = f(&rec);
    let coords = rec.0.into_inner();
    let known = Known(nodes(kv, &coords)?);
    f(&known)
}

/// Object-safe view of [`Subtrees`] with the store's error.
trait SubtreesDyn {
    fn get(&self, level: u32, index: u64) -> Result<Hash, StoreError>;
}
impl SubtreesDyn for Recorder {
    fn get(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        Ok(self.subtree(level, index).unwrap_or([0; 32]))
    }
}
impl SubtreesDyn for Known {
    fn get(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        self.subtree(level, index)
    }
}
struct Dyn<'a>(&'a dyn SubtreesDyn);
impl Subtrees for Dyn<'_> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        self.0.get(level, index)
    }
}

/// The root of the first `size` leaves, from the stored subtrees.
pub fn root_at(kv: &impl KeyValue, size: u64) -> Result<Hash, StoreError> {
    with_nodes(kv, |s| tlog::root(&Dyn(s), size))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(kv: &impl KeyValue, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
    with_nodes(kv, |s| tlog::inclusion_proof(&Dyn(s), index, size))
}

/// The consistency proof between the trees of `old` and `new` leaves.
pub fn consistency_proof(kv: &impl KeyValue, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
    with_nodes(kv, |s| tlog::consistency_proof(&Dyn(s), old, new))
}

/// The data of leaf `index` (event `index + 1`): the gap record if the number
/// was integrated as a gap, else the event, as stored.
pub fn leaf_data(kv: &impl KeyValue, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let seq = index + 1;
    let found = kv.get_many(&[keys::audit_gap(seq), keys::audit_event(seq)])?;
    Ok(found.into_iter().flatten().next())
}

/// Whether a backend error means a value was changed at rest.
pub(crate) fn tampered(e: &KvError) -> bool {
    matches!(e, KvError::Sealed(_))
}

#[cfg(test)]
mod tests;
