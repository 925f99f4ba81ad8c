//! 电话抽查 sampling rules (SC-*): Rivest's consistent sampler, population
//! digests, sample sizes, call outcomes, second samples and repeat offenders.
//!
//! The sampler is the one Arlo uses for risk-limiting audits (DESIGN.md,
//! "Sampling"): `seed_hash = hex(SHA-256(seed))`; the ticket of a sample id is
//! `"0." + reverse(decimal64(int(hex(SHA-256(seed_hash + id)), 16)))`, where
//! `decimal64` writes the 256-bit number in decimal zero-padded to at least 64
//! digits; a sample of `n` is the `n` ids with the smallest tickets, compared
//! as decimal fractions, ties by id. Because every id's ticket depends only on
//! the seed and the id, a larger sample only adds ids (consistency) and the
//! order of the roster does not matter.
//!
//! Sizes follow SC-SIZE (minimum count, rate, raised rate, whole roster when
//! smaller, never zero) and, when the bureau switches it on, SC-DETECT (the
//! smallest `n` for which a class with the assumed share of ghost trainees
//! has at least the target probability of one being called, computed in
//! exact integer arithmetic). A run publishes [`PublishedRun`]; anyone can
//! check it with [`verify`] (the `recompute-run` command).

use crate::decision::{Rule, Severity};
use crate::params::{Applied, Parameters, names};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::BTreeSet;

pub mod protocol;

/// Name of the sampling algorithm, as a run publishes it.
pub const ALGORITHM: &str = "rivest-consistent-sampler";
/// Version of the algorithm: changes whenever any published figure would change.
pub const ALGORITHM_VERSION: &str = "2";

/// SC-EVERY: every class in training is sampled in every run.
pub const SC_EVERY: Rule = Rule {
    id: "SC-EVERY",
    severity: Severity::Warn,
    source: "plan 四.2",
};
/// SC-SIZE: sample size per class.
pub const SC_SIZE: Rule = Rule {
    id: "SC-SIZE",
    severity: Severity::Warn,
    source: "[other]",
};
/// SC-DETECT: sample size for a detection target.
pub const SC_DETECT: Rule = Rule {
    id: "SC-DETECT",
    severity: Severity::Warn,
    source: "audit sampling",
};
/// SC-CALL: call attempts before a trainee is unreachable.
pub const SC_CALL: Rule = Rule {
    id: "SC-CALL",
    severity: Severity::Warn,
    source: "[other]",
};
/// SC-DENY: a denial makes a finding that stops settlement.
pub const SC_DENY: Rule = Rule {
    id: "SC-DENY",
    severity: Severity::Block,
    source: "plan 四.2, 四.3",
};
/// SC-UNREACH: a second sample when too many are unreachable.
pub const SC_UNREACH: Rule = Rule {
    id: "SC-UNREACH",
    severity: Severity::Warn,
    source: "[open]",
};
/// SC-REPEAT: an institution with findings in several classes is proposed for the blacklist.
pub const SC_REPEAT: Rule = Rule {
    id: "SC-REPEAT",
    severity: Severity::Warn,
    source: "[other]",
};

// ---------------------------------------------------------------------------
// A small unsigned big integer: enough for SHA-256 numbers and hypergeometric
// products, nothing more.

/// An unsigned integer of any size, little-endian base-2³² limbs, no leading zero limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Self {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    /// From big-endian bytes.
    #[cfg(test)]
    fn from_be_bytes(bytes: &[u8]) -> Self {
        let mut limbs = Vec::with_capacity(bytes.len() / 4 + 1);
        for chunk in bytes.rchunks(4) {
            let mut v = 0u32;
            for b in chunk {
                v = (v << 8) | u32::from(*b);
            }
            limbs.push(v);
        }
        let mut b = Big(limbs);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    #[cfg(test)]
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    /// Divides in place by `d` (non-zero) and returns the remainder.
    #[cfg(test)]
    fn divmod_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    /// The number in decimal, without leading zeros ("0" for zero).
    #[cfg(test)]
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.divmod_small(1_000_000_000));
        }
        let mut s = chunks.last().expect("non-zero").to_string();
        for c in chunks.iter().rev().skip(1) {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------
// The sampler.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex(SHA-256(seed))`, lower case.
pub fn seed_hash(seed: &str) -> String {
    hex(&Sha256::digest(seed.as_bytes()))
}

/// The ticket of `id` under a seed whose hash is `seed_hash` (see the module doc).
pub fn ticket(seed_hash: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(seed_hash.as_bytes());
    h.update(id.as_bytes());
    ticket_of_digest(&h.finalize().into())
}

/// `"0." + reverse(decimal64(n))` for the 256-bit big-endian `digest`,
/// written directly: the number is cut into 19-digit chunks by dividing by
/// 10^19 in `u128`, and each chunk gives its digits least significant first,
/// which is the reversed order the ticket wants. `ticket_by_definition` in
/// the tests is the module doc's formula, term by term; they agree on every
/// input tried.
fn ticket_of_digest(digest: &[u8; 32]) -> String {
    const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19 < 2^64
    const CHUNKS: usize = 5; // 10^95 > 2^256
    // Little-endian 64-bit limbs.
    let mut limbs = [0u64; 4];
    for (i, bytes) in digest.rchunks(8).enumerate() {
        limbs[i] = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
    }
    let mut digits = [b'0'; CHUNKS * 19];
    for chunk in 0..CHUNKS {
        let mut rem: u128 = 0;
        for limb in limbs.iter_mut().rev() {
            let v = (rem << 64) | u128::from(*limb);
            *limb = (v / u128::from(CHUNK)) as u64;
            rem = v % u128::from(CHUNK);
        }
        let mut c = rem as u64;
        for d in &mut digits[chunk * 19..(chunk + 1) * 19] {
            *d = b'0' + (c % 10) as u8;
            c /= 10;
        }
    }
    // Without leading zeros (one digit for zero), padded to 64.
    let significant = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
    let len = significant.max(64);
    let mut t = String::with_capacity(2 + len);
    t.push_str("0.");
    t.push_str(std::str::from_utf8(&digits[..len]).expect("ASCII digits"));
    t
}

/// One drawn id with its ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Drawn {
    /// The sample id (`KM-2022-000123:017`).
    pub id: String,
    /// Its ticket, a decimal fraction as text.
    pub ticket: String,
}

/// Compares tickets as decimal fractions: `"0.5" == "0.50"`, `"0.12" < "0.2"`.
pub fn compare_tickets(a: &str, b: &str) -> Ordering {
    let frac = |t: &str| -> String {
        t.strip_prefix("0.")
            .unwrap_or(t)
            .trim_end_matches('0')
            .to_string()
    };
    frac(a).cmp(&frac(b))
}

/// Every distinct id of `population` with its ticket, in sampling order (ticket, then id).
pub fn order(seed: &str, population: &[String]) -> Vec<Drawn> {
    let sh = seed_hash(seed);
    let distinct: BTreeSet<&String> = population.iter().collect();
    let mut all: Vec<Drawn> = distinct
        .into_iter()
        .map(|id| Drawn {
            id: id.clone(),
            ticket: ticket(&sh, id),
        })
        .collect();
    all.sort_by(|a, b| compare_tickets(&a.ticket, &b.ticket).then_with(|| a.id.cmp(&b.id)));
    all
}

/// The first `n` ids of `population` in sampling order (all of them when `n` is larger).
pub fn sample(seed: &str, population: &[String], n: usize) -> Vec<Drawn> {
    let mut all = order(seed, population);
    all.truncate(n);
    all
}

/// The sample id of roster line `line` (0-based) of a class: `KM-2022-000123:017` (1-based, three digits).
pub fn sample_id(class_id: &str, line: usize) -> String {
    format!("{class_id}:{:03}", line + 1)
}

/// The population of a class of `roster` trainees: one sample id per roster line.
pub fn population(class_id: &str, roster: usize) -> Vec<String> {
    (0..roster).map(|l| sample_id(class_id, l)).collect()
}

/// The roster line (0-based) a sample id of `class_id` names, if it is one.
pub fn roster_line(class_id: &str, id: &str) -> Option<usize> {
    let rest = id.strip_prefix(class_id)?.strip_prefix(':')?;
    if rest.len() < 3 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse::<usize>().ok()?.checked_sub(1)
}

/// Digest of a population, independent of its order: `hex(SHA-256)` over the
/// distinct ids sorted as strings, each followed by `\n`.
pub fn population_digest(population: &[String]) -> String {
    let distinct: BTreeSet<&String> = population.iter().collect();
    let mut h = Sha256::new();
    for id in distinct {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

// ---------------------------------------------------------------------------
// Sizes.

/// A class's sample size and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Trainees to call.
    pub n: usize,
    /// The rule that decided `n` (`SC-SIZE` or `SC-DETECT`).
    pub rule: String,
    /// The figures compared, for example `max(3, ⌈10 % × 40⌉ = 4) = 4`.
    pub comparison: String,
    /// Parameter values used, as `name@since`.
    pub parameters: Vec<String>,
}

fn ceil_percent(percent: i64, of: usize) -> usize {
    let p = percent.max(0) as u128;
    (((of as u128) * p).div_ceil(100)) as usize
}

/// Probability, as an exact fraction `(num, den)`, that a sample of `n` from
/// `big_n` with `d` ghosts misses every ghost: C(N−d, n) / C(N, n).
fn miss_fraction(big_n: usize, d: usize, n: usize) -> (Big, Big) {
    let mut num = Big::from_u64(1);
    let mut den = Big::from_u64(1);
    for i in 0..n {
        let good = big_n.saturating_sub(d).saturating_sub(i);
        if good == 0 {
            return (Big::from_u64(0), Big::from_u64(1));
        }
        num.mul_small(good as u32);
        den.mul_small((big_n - i) as u32);
    }
    (num, den)
}

/// The probability (as f64, for display) that a sample of `n` from `big_n` with `d` ghosts calls at least one.
pub fn detection_probability(big_n: usize, d: usize, n: usize) -> f64 {
    if n > big_n {
        return detection_probability(big_n, d, big_n);
    }
    let mut miss = 1.0f64;
    for i in 0..n {
        let good = big_n.saturating_sub(d).saturating_sub(i);
        miss *= good as f64 / (big_n - i) as f64;
    }
    1.0 - miss
}

/// SC-DETECT: the smallest `n ≤ big_n` with 1 − C(N−d, n)/C(N, n) ≥ `target_percent` %,
/// decided in exact integer arithmetic; `None` when there is no ghost to find (`d = 0`).
pub fn detect_size(big_n: usize, d: usize, target_percent: i64) -> Option<usize> {
    if d == 0 || big_n == 0 {
        return None;
    }
    let d = d.min(big_n);
    let target = target_percent.clamp(0, 100) as u32;
    // miss ≤ 1 − t/100  ⟺  100·num ≤ (100 − t)·den
    (0..=big_n).find(|&n| {
        let (mut num, mut den) = miss_fraction(big_n, d, n);
        num.mul_small(100);
        den.mul_small(100 - target);
        num <= den
    })
}

/// The sample size of a class of `roster` trainees on `date` (SC-SIZE, SC-DETECT).
///
/// `raised`: the class had findings before, or its filing decision failed
/// CO-SHARED-PHONE; the raised rate applies. Never zero for a class with trainees.
pub fn sample_size(
    params: &Parameters,
    date: NaiveDate,
    roster: usize,
    raised: bool,
) -> SampleSize {
    let min = params.at_or_first(names::SC_MIN_SAMPLE, date);
    let rate = params.at_or_first(
        if raised {
            names::SC_RAISED_RATE_PERCENT
        } else {
            names::SC_RATE_PERCENT
        },
        date,
    );
    let by_rate = ceil_percent(rate.value, roster);
    let floor = min.value.max(0) as usize;
    let wanted = floor.max(by_rate).max(1);
    let n = wanted.min(roster);
    let mut out = SampleSize {
        n,
        rule: SC_SIZE.id.to_string(),
        comparison: format!(
            "min(roster {roster}, max({floor}, ⌈{}% × {roster}⌉ = {by_rate}, 1)) = {n}",
            rate.value
        ),
        parameters: vec![min.label(), rate.label()],
    };
    let target: Applied = params.at_or_first(names::SC_DETECT_TARGET_PERCENT, date);
    if target.value > 0 {
        let share = params.at_or_first(names::SC_DETECT_SHARE_PERCENT, date);
        let d = ceil_percent(share.value, roster);
        out.parameters.push(target.label());
        out.parameters.push(share.label());
        if let Some(detect) = detect_size(roster, d, target.value)
            && detect > out.n
        {
            out.comparison = format!(
                "{}; SC-DETECT: N = {roster}, d = ⌈{}% × {roster}⌉ = {d}, smallest n with P ≥ {}% is {detect}",
                out.comparison, share.value, target.value
            );
            out.n = detect;
            out.rule = SC_DETECT.id.to_string();
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Calls, second samples, findings, repeat offenders, assignment.

/// Where a call task stands after an attempt (SC-CALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not answered yet, attempts left.
    Pending,
    /// Answered: the call is done.
    Completed,
    /// Not answered within the attempt limit.
    Unreachable,
}

/// The state after `attempts` attempts, the last of which was `answered`, with `limit` attempts allowed (SC-CALL).
pub fn state_after(attempts: usize, answered: bool, limit: i64) -> TaskState {
    if answered {
        TaskState::Completed
    } else if attempts as i64 >= limit.max(1) {
        TaskState::Unreachable
    } else {
        TaskState::Pending
    }
}

/// What a trainee said that makes a finding (SC-DENY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// Says they did not attend.
    DeniedAttendance,
    /// Says they were asked to pay.
    AskedToPay,
}

/// SC-DENY: the finding an answered call makes, if any. A trainee who says they
/// did not attend makes a denial of attendance (even if also asked to pay).
pub fn denial(answered: bool, attended: Option<bool>, fee_asked: bool) -> Option<Denial> {
    if !answered {
        None
    } else if attended == Some(false) {
        Some(Denial::DeniedAttendance)
    } else if fee_asked {
        Some(Denial::AskedToPay)
    } else {
        None
    }
}

/// SC-UNREACH: whether `unreachable` of a first sample of `sampled` calls for a
/// second sample: strictly more than `share_percent` % of the sample.
pub fn needs_second_sample(sampled: usize, unreachable: usize, share_percent: i64) -> bool {
    sampled > 0 && (unreachable as i128) * 100 > (share_percent as i128) * (sampled as i128)
}

/// SC-REPEAT: whether an institution with findings in `classes` classes this year is proposed for the blacklist.
pub fn propose_blacklist(classes: usize, limit: i64) -> bool {
    limit > 0 && classes as i64 >= limit
}

/// SC-UNREACH: who calls the second sample of a class: the inspectors of its
/// first sample, in the order they first appear there, each second-sample id
/// in turn (`j`-th id to the `j mod k`-th of them).
pub fn second_sample_inspector(first_sample_inspectors: &[&str], j: usize) -> Option<String> {
    let mut who: Vec<&str> = Vec::new();
    for i in first_sample_inspectors {
        if !who.contains(i) {
            who.push(i);
        }
    }
    if who.is_empty() {
        return None;
    }
    Some(who[j % who.len()].to_string())
}

/// SC-REPEAT: the calendar year, in China Standard Time, that a finding
/// opened at `at` counts in.
pub fn finding_year(at: chrono::DateTime<chrono::Utc>) -> i32 {
    use chrono::Datelike;
    (at + chrono::Duration::hours(8)).year()
}

/// The inspector of the task with run-wide ordinal `ordinal`: round robin over
/// the inspectors in sorted order, so any two inspectors' counts differ by at most one.
pub fn assign(ordinal: u64, inspectors: &[String]) -> Option<&String> {
    if inspectors.is_empty() {
        return None;
    }
    inspectors.get((ordinal % inspectors.len() as u64) as usize)
}

// ---------------------------------------------------------------------------
// Published runs and their verification.

/// One class of a published run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedClass {
    /// Class id.
    pub class_id: String,
    /// The class's seed ([`protocol::class_seed`] of the run seed): its sample's seed.
    pub class_seed: String,
    /// [`population_digest`] of `population`.
    pub population_digest: String,
    /// The frozen population (sample ids).
    pub population: Vec<String>,
    /// The first sample's size.
    pub sample_size: usize,
    /// The first sample, in sampling order, with tickets.
    pub sample: Vec<Drawn>,
    /// The second sample (SC-UNREACH), the next ids in sampling order; empty when none.
    #[serde(default)]
    pub second_sample: Vec<Drawn>,
}

/// A run as published: enough for anyone to recompute every sample.
///
/// `classes` holds the classes whose samples the reader may see; the run seed
/// and the revealed bytes are present once the reader may see them (the
/// bureau, or anyone once every call of the run is closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRun {
    /// Run id.
    pub run: String,
    /// [`protocol::commitment`] of the committed bytes, published at creation.
    pub commitment: String,
    /// The committed bytes in hex, once revealed.
    #[serde(default)]
    pub revealed: Option<String>,
    /// The public value the seed was fixed with (None: the bytes alone).
    #[serde(default)]
    pub public_value: Option<String>,
    /// The run seed, once shown.
    #[serde(default)]
    pub seed: Option<String>,
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// [`ALGORITHM_VERSION`].
    pub algorithm_version: String,
    /// The classes (one page of them when the run is published in pages).
    pub classes: Vec<PublishedClass>,
}

/// What disagrees in a published run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The run names another algorithm or version.
    #[error("algorithm {found} is not {ALGORITHM} version {ALGORITHM_VERSION}")]
    Algorithm {
        /// What the document names.
        found: String,
    },
    /// SHA-256 of the revealed bytes is not the commitment published at creation.
    #[error("the revealed bytes do not hash to the commitment")]
    Commitment,
    /// The run seed is not SHA-256 of the revealed bytes and the public value.
    #[error("the run seed is not SHA-256 of the revealed bytes and the public value")]
    RunSeed,
    /// A class's seed is not derived from the run seed.
    #[error("class {class_id}: class seed is not derived from the run seed")]
    ClassSeed {
        /// The class.
        class_id: String,
    },
    /// A class's population digest does not match its population.
    #[error("class {class_id}: population digest does not match the population")]
    Digest {
        /// The class.
        class_id: String,
    },
    /// A class's sample is not the recomputed one.
    #[error("class {class_id}: sample differs from the recomputed sample")]
    Sample {
        /// The class.
        class_id: String,
    },
    /// A class's second sample is not the recomputed one.
    #[error("class {class_id}: second sample differs from the recomputed one")]
    SecondSample {
        /// The class.
        class_id: String,
    },
}

/// Recomputes every sample of `run`; returns every disagreement (empty when all agree).
pub fn verify(run: &PublishedRun) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if run.algorithm != ALGORITHM || run.algorithm_version != ALGORITHM_VERSION {
        out.push(Mismatch::Algorithm {
            found: format!("{} {}", run.algorithm, run.algorithm_version),
        });
        return out;
    }
    if let Some(revealed) = &run.revealed {
        match protocol::unhex(revealed) {
            Some(bytes) if protocol::commitment(&bytes) == run.commitment => {
                if run.seed.as_deref()
                    != Some(protocol::run_seed(&bytes, run.public_value.as_deref()).as_str())
                {
                    out.push(Mismatch::RunSeed);
                }
            }
            _ => out.push(Mismatch::Commitment),
        }
    }
    for c in &run.classes {
        if let Some(seed) = &run.seed
            && protocol::class_seed(seed, &c.class_id) != c.class_seed
        {
            out.push(Mismatch::ClassSeed {
                class_id: c.class_id.clone(),
            });
        }
        if population_digest(&c.population) != c.population_digest {
            out.push(Mismatch::Digest {
                class_id: c.class_id.clone(),
            });
        }
        let all = order(&c.class_seed, &c.population);
        let first: Vec<Drawn> = all.iter().take(c.sample_size).cloned().collect();
        if first != c.sample {
            out.push(Mismatch::Sample {
                class_id: c.class_id.clone(),
            });
        }
        let second: Vec<Drawn> = all
            .iter()
            .skip(c.sample_size)
            .take(c.second_sample.len())
            .cloned()
            .collect();
        if second != c.second_sample {
            out.push(Mismatch::SecondSample {
                class_id: c.class_id.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
