//! 电话抽查 in the store: sampling runs, call tasks, call attempts, second
//! samples, findings and repeat offenders (SC-*).
//!
//! **Runs.** A run is keyed by its window (`2022-06-20`, `2022-W25`): the same
//! window is the same run. Its record (`sc:run:<window>`) is the only record
//! that moves a run on, always by compare-and-swap, one page per request:
//!
//! 1. *Freezing*: each page reads the next `page_size` entries of the index
//!    `classes:in_training`, keeps the classes whose status is still in
//!    training (SC-EVERY), and freezes each one into a chunk record of the
//!    page (`sc:frozen:<run>:<page>:<nonce>`, named by the run record): its
//!    roster size (the population is the sample ids `KM-2022-000123:001` …,
//!    no personal data), its SC-SIZE/SC-DETECT size, and whether the raised
//!    rate applies (CO-SHARED-PHONE failed at filing, or findings before).
//!    The run record holds counts per page only, so it stays small however
//!    many classes there are (hosted stores limit a value to 1 MB).
//! 2. When the index is exhausted the population is frozen and published
//!    (digests by `GET`); only then is the seed fixed: the caller's public
//!    value, or 32 random bytes from the host; the active inspectors are
//!    fixed with it.
//! 3. *Drawing*: page `k` draws the classes of freeze page `k`: one task
//!    record per class (`sc:tasks:<run>:<class>`) with the
//!    sample, each task assigned round robin over the inspectors, and per
//!    inspector the list of classes where they have tasks on that page
//!    (`sc:assign:<run>:<k>:<inspector>`). Everything a draw page writes is a
//!    function of the run record, written only where absent, and nobody may
//!    see or call a task before the run record says its page is drawn; so a
//!    page interrupted by a crash is simply drawn again, with the same result
//!    and no duplicate task.
//!
//! **Calls.** A call attempt (SC-CALL) updates the class's task record by
//! compare-and-swap; after the attempt limit the trainee is unreachable, and
//! when more than the SC-UNREACH share of the first sample is unreachable the
//! next ids in sampling order become a second sample in the same record, in
//! the same swap. A denial (SC-DENY) opens a finding through
//! [`crate::findings::open`] (which holds the class's settlements) and counts
//! towards SC-REPEAT.
//!
//! **Inspectors** are registered by the bureau in one record
//! (`sc:inspectors`): an inspector is the `sub` of an `inspector` token.
//!
//! Every state change writes an audit event. No key holds a phone or ID number.

use crate::audit::{self, Actor, Change};
use crate::classes::{self, ClassRecord, ClassStatus};
use crate::findings::{self, Finding, FindingKind, FindingStatus};
use crate::index::{self, Position};
use crate::keys::{self, PREFIX};
use crate::kv::KeyValue;
use crate::records::{StoreError, UpdateError, decode, encode, get_json, put_json, update_json};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use policy::Parameters;
use policy::params::names;
use policy::sampling::{self, Denial, Drawn, TaskState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Classes per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 500;
/// Index of the classes whose pre-opening check passed (written by [`crate::classes`]).
pub const IN_TRAINING_INDEX: &str = "classes:in_training";
/// Index of every run id, in order of creation.
pub const RUNS_INDEX: &str = "sc:runs";
/// Index of every finding id.
pub const FINDINGS_INDEX: &str = "sc:findings";
/// Index of blacklist proposals.
pub const PROPOSALS_INDEX: &str = "sc:proposals";

/// Key of a run record.
pub fn run_key(run: &str) -> String {
    format!("{PREFIX}sc:run:{run}")
}
/// Key of a class's task record in a run.
pub fn tasks_key(run: &str, class_id: &str) -> String {
    format!("{PREFIX}sc:tasks:{run}:{class_id}")
}
/// Key of an inspector's classes on one draw page.
pub fn assign_key(run: &str, page: usize, inspector: &str) -> String {
    format!("{PREFIX}sc:assign:{run}:{page}:{inspector}")
}
/// Key of the inspector registry.
pub fn inspectors_key() -> String {
    format!("{PREFIX}sc:inspectors")
}
/// Key of an institution's classes with findings in a year (SC-REPEAT).
pub fn repeat_key(institution: &str, year: i32) -> String {
    format!("{PREFIX}sc:repeat:{institution}:{year}")
}
/// Key of a blacklist proposal.
pub fn proposal_key(institution: &str, year: i32) -> String {
    format!("{PREFIX}sc:proposal:{institution}:{year}")
}
/// Index of the findings of one district.
pub fn district_findings_index(district: &str) -> String {
    format!("sc:findings:district:{district}")
}

/// Whether `window` is a run window: 1 to 32 ASCII letters, digits and `-`.
pub fn window_ok(window: &str) -> bool {
    (1..=32).contains(&window.len())
        && window
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `seed` is an acceptable public seed: 1 to 256 printable ASCII characters.
pub fn seed_ok(seed: &str) -> bool {
    (1..=256).contains(&seed.len()) && seed.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Freezing populations page by page (the seed is not fixed yet).
    Freezing,
    /// The seed is fixed; drawing samples page by page.
    Drawing,
    /// Every class is drawn.
    Done,
}

/// Where the seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedSource {
    /// A public value given by the caller (digits drawn at a meeting, a lottery result).
    Public,
    /// 32 random bytes from the host, in hex.
    Random,
}

/// The seed of a run, fixed after the freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seed {
    /// The seed exactly as the sampler uses it.
    pub value: String,
    /// Its source.
    pub source: SeedSource,
    /// When it was fixed.
    pub fixed_at: DateTime<Utc>,
}

/// A class as frozen into a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenClass {
    /// Class id.
    pub class_id: String,
    /// Trainees on the roster: the population is [`sampling::population`] of this.
    pub roster: usize,
    /// Sample size.
    pub n: usize,
    /// Rule that decided the size (`SC-SIZE` or `SC-DETECT`).
    pub rule: String,
    /// Whether the raised rate applied.
    pub raised: bool,
}

impl FrozenClass {
    /// The frozen population.
    pub fn population(&self) -> Vec<String> {
        sampling::population(&self.class_id, self.roster)
    }
}

/// A sampling run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Run id: the window.
    pub id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Who started it.
    pub started_by: Actor,
    /// Legal date of the parameters (the start date in China Standard Time).
    pub evaluated_on: NaiveDate,
    /// Parameters used, as `name@since`.
    pub parameters: Vec<String>,
    /// Index entries (freeze) and classes (draw) per page.
    pub page_size: usize,
    /// Phase.
    pub phase: Phase,
    /// Where the next freeze page starts in `classes:in_training`.
    #[serde(default)]
    pub freeze_cursor: Option<Position>,
    /// Freeze pages done.
    pub freeze_pages: usize,
    /// Whether the freeze is complete.
    pub frozen: bool,
    /// The frozen classes, one chunk record per freeze page (their keys carry a nonce).
    pub chunks: Vec<Chunk>,
    /// Classes frozen so far.
    pub classes: usize,
    /// A public seed given before the seed was fixed.
    #[serde(default)]
    pub proposed_seed: Option<String>,
    /// The seed, once fixed.
    #[serde(default)]
    pub seed: Option<Seed>,
    /// Inspectors the tasks are assigned to, sorted.
    #[serde(default)]
    pub inspectors: Vec<String>,
    /// Draw pages done.
    pub drawn_pages: usize,
    /// First-sample tasks created.
    pub tasks: u64,
}

/// The classes one freeze page froze: a record under [`chunk_key`].
///
/// The key carries a random nonce chosen by the request that froze the page,
/// and the run record names the winning nonce, so a request that lost the
/// race for a page never overwrites the chunk the run refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Nonce of the chunk's key.
    pub nonce: String,
    /// Classes in the chunk.
    pub count: usize,
}

/// Key of the frozen classes of one freeze page.
pub fn chunk_key(run: &str, page: usize, nonce: &str) -> String {
    format!("{PREFIX}sc:frozen:{run}:{page}:{nonce}")
}

impl Run {
    /// Draw pages the run has in all: one per freeze page.
    pub fn draw_pages(&self) -> usize {
        self.chunks.len()
    }

    /// Key of the chunk of freeze page `page`.
    pub fn chunk_key(&self, page: usize) -> Option<String> {
        self.chunks
            .get(page)
            .map(|c| chunk_key(&self.id, page, &c.nonce))
    }

    /// Whether draw page `page` is drawn (its tasks may be seen and called).
    pub fn is_drawn(&self, page: usize) -> bool {
        self.seed.is_some() && page < self.drawn_pages
    }
}

/// One call attempt (SC-CALL), as the inspector reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallReport {
    /// When the call was made.
    pub at: DateTime<Utc>,
    /// Whether the trainee answered.
    pub answered: bool,
    /// Whether the person confirmed being the trainee.
    #[serde(default)]
    pub identity_confirmed: Option<bool>,
    /// Whether they say they attended.
    #[serde(default)]
    pub attended: Option<bool>,
    /// Whether the dates they give match the class.
    #[serde(default)]
    pub dates_match: Option<bool>,
    /// Whether the place matches.
    #[serde(default)]
    pub place_match: Option<bool>,
    /// Whether the teacher matches.
    #[serde(default)]
    pub teacher_match: Option<bool>,
    /// Whether they were asked to pay any fee.
    #[serde(default)]
    pub fee_asked: bool,
    /// Notes (no ID or phone numbers).
    #[serde(default)]
    pub notes: String,
}

/// A recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// What the inspector reported.
    #[serde(flatten)]
    pub report: CallReport,
    /// The inspector (token subject).
    pub inspector: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// One trainee to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Task id: `<run>.<class>.<line>` (line 1-based, three digits).
    pub id: String,
    /// Sample id.
    pub sample_id: String,
    /// Roster line, 0-based.
    pub roster_line: usize,
    /// Ticket.
    pub ticket: String,
    /// 1 for the first sample, 2 for the SC-UNREACH second sample.
    pub round: u8,
    /// Assigned inspector.
    pub inspector: String,
    /// State.
    pub state: TaskState,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The finding this call opened.
    #[serde(default)]
    pub finding: Option<String>,
}

/// The tasks of one class in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTasks {
    /// Run id.
    pub run: String,
    /// Class id.
    pub class_id: String,
    /// First-sample size.
    pub n: usize,
    /// The class as frozen.
    pub frozen: FrozenClass,
    /// The draw page that drew it.
    pub page: usize,
    /// Tasks: the first sample in sampling order, then any second sample.
    pub tasks: Vec<Task>,
    /// Whether the second sample was drawn.
    #[serde(default)]
    pub second_drawn: bool,
}

impl ClassTasks {
    /// The drawn ids of a round, in sampling order.
    pub fn drawn(&self, round: u8) -> Vec<Drawn> {
        self.tasks
            .iter()
            .filter(|t| t.round == round)
            .map(|t| Drawn {
                id: t.sample_id.clone(),
                ticket: t.ticket.clone(),
            })
            .collect()
    }
}

/// The task id of a class's roster line in a run.
pub fn task_id(run: &str, class_id: &str, line: usize) -> String {
    format!("{run}.{class_id}.{:03}", line + 1)
}

/// Splits a task id into run, class and 0-based roster line.
pub fn parse_task_id(id: &str) -> Option<(String, String, usize)> {
    let (rest, line) = id.rsplit_once('.')?;
    let (run, class_id) = rest.split_once('.')?;
    if !window_ok(run) || class_id.is_empty() || class_id.len() > 32 {
        return None;
    }
    if line.len() < 3 || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let line = line.parse::<usize>().ok()?.checked_sub(1)?;
    Some((run.to_string(), class_id.to_string(), line))
}

/// A registered inspector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspector {
    /// Display name.
    pub name: String,
    /// Whether new runs assign tasks to them.
    pub active: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Why a run could not move on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A different public seed than the one already given or fixed.
    #[error("the run already has a different seed")]
    SeedConflict,
    /// The freeze is complete but no inspector is registered and active.
    #[error("no active inspector is registered")]
    NoInspectors,
}

impl From<crate::kv::KvError> for RunError {
    fn from(e: crate::kv::KvError) -> Self {
        RunError::Store(e.into())
    }
}

impl From<crate::kv::KvError> for CallError {
    fn from(e: crate::kv::KvError) -> Self {
        CallError::Store(e.into())
    }
}

/// What one call of [`advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Froze a page of classes.
    Froze,
    /// Fixed the seed (after the freeze completed).
    FixedSeed,
    /// Drew a page of samples.
    Drew,
    /// Nothing: the run is done (or another request did the work).
    Nothing,
}

/// Progress of a run after a call of [`advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The run as stored.
    pub run: Run,
    /// What this call did.
    pub steps: Vec<Step>,
    /// Whether this call created the run.
    pub created: bool,
}

/// What the scheduler asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Advance {
    /// The window (the run id).
    pub window: String,
    /// A public seed, if the caller has one.
    pub public_seed: Option<String>,
    /// Page size (only at creation).
    pub page_size: Option<usize>,
}

fn refused<E>(e: UpdateError<E>) -> Result<StoreError, E> {
    match e {
        UpdateError::Store(s) => Ok(s),
        UpdateError::Refused(r) => Err(r),
    }
}

fn never(e: UpdateError<std::convert::Infallible>) -> StoreError {
    match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(n) => match n {},
    }
}

fn run_error(e: UpdateError<RunError>) -> RunError {
    match refused(e) {
        Ok(s) => RunError::Store(s),
        Err(r) => r,
    }
}

/// Reads a run.
pub fn get_run(kv: &impl KeyValue, id: &str) -> Result<Option<Run>, StoreError> {
    get_json(kv, &run_key(id), "run")
}

fn audit_run(
    kv: &impl KeyValue,
    actor: &Actor,
    action: &str,
    run: &Run,
    note: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit::record(
        kv,
        Change {
            actor: actor.clone(),
            action: action.into(),
            entity: format!("run:{}", run.id),
            before: None,
            after: Some(audit::digest_of(run)),
            note: Some(note),
        },
        now,
    )?;
    Ok(())
}

/// Moves the run of `req.window` on by one page (creating it first if needed),
/// fixing the seed when the freeze completes. Calling it on a finished run
/// changes nothing.
pub fn advance(
    kv: &impl KeyValue,
    params: &Parameters,
    req: &Advance,
    actor: &Actor,
    now: DateTime<Utc>,
    today: NaiveDate,
    random: &dyn Fn(&mut [u8]),
) -> Result<Progress, RunError> {
    let key = run_key(&req.window);
    let mut created = false;
    let existing = get_run(kv, &req.window)?;
    let mut run = match existing {
        Some(r) => r,
        None => {
            let labels = [
                names::SC_MIN_SAMPLE,
                names::SC_RATE_PERCENT,
                names::SC_RAISED_RATE_PERCENT,
                names::SC_DETECT_TARGET_PERCENT,
                names::SC_DETECT_SHARE_PERCENT,
                names::SC_CALL_ATTEMPTS,
                names::SC_UNREACHABLE_SHARE_PERCENT,
                names::SC_REPEAT_CLASSES,
            ]
            .iter()
            .map(|n| params.at_or_first(n, today).label())
            .collect();
            let fresh = Run {
                id: req.window.clone(),
                started_at: now,
                started_by: actor.clone(),
                evaluated_on: today,
                parameters: labels,
                page_size: req
                    .page_size
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE),
                phase: Phase::Freezing,
                freeze_cursor: None,
                freeze_pages: 0,
                frozen: false,
                chunks: Vec::new(),
                classes: 0,
                proposed_seed: req.public_seed.clone(),
                seed: None,
                inspectors: Vec::new(),
                drawn_pages: 0,
                tasks: 0,
            };
            let mut mine = false;
            let stored = update_json::<Run, std::convert::Infallible>(kv, &key, "run", |cur| {
                mine = cur.is_none();
                Ok(cur.is_none().then(|| fresh.clone()))
            })
            .map_err(never)?
            .ok_or(StoreError::Contention)?;
            if mine {
                created = true;
                index::append(kv, RUNS_INDEX, &stored.id)?;
                audit_run(
                    kv,
                    actor,
                    "spot_check.run.started",
                    &stored,
                    format!("page_size {}", stored.page_size),
                    now,
                )?;
            }
            stored
        }
    };
    // A public seed: recorded until the seed is fixed; never a different one.
    if let Some(seed) = &req.public_seed {
        match (&run.seed, &run.proposed_seed) {
            (Some(s), _) if s.value != *seed || s.source != SeedSource::Public => {
                return Err(RunError::SeedConflict);
            }
            (None, Some(p)) if p != seed => return Err(RunError::SeedConflict),
            (None, None) => {
                let s = seed.clone();
                let mut wrote = false;
                run = update_json::<Run, RunError>(kv, &key, "run", |cur| {
                    wrote = false;
                    let mut r = cur.ok_or(RunError::Store(StoreError::Contention))?;
                    match (&r.seed, &r.proposed_seed) {
                        (None, None) => {
                            r.proposed_seed = Some(s.clone());
                            wrote = true;
                            Ok(Some(r))
                        }
                        (None, Some(p)) if *p == s => Ok(None),
                        (Some(f), _) if f.value == s => Ok(None),
                        _ => Err(RunError::SeedConflict),
                    }
                })
                .map_err(run_error)?
                .ok_or(StoreError::Contention)?;
                if wrote {
                    audit_run(
                        kv,
                        actor,
                        "spot_check.run.seed_proposed",
                        &run,
                        "public seed recorded; fixed after the freeze".into(),
                        now,
                    )?;
                }
            }
            _ => {}
        }
    }
    let mut steps = Vec::new();
    match run.phase {
        Phase::Freezing if !run.frozen => {
            run = freeze_page(kv, params, run, actor, now, random)?;
            steps.push(Step::Froze);
            if run.frozen {
                run = fix_seed(kv, run, actor, now, random)?;
                steps.push(Step::FixedSeed);
            }
        }
        Phase::Freezing => {
            run = fix_seed(kv, run, actor, now, random)?;
            steps.push(Step::FixedSeed);
        }
        Phase::Drawing => {
            run = draw_page(kv, run, actor, now)?;
            steps.push(Step::Drew);
        }
        Phase::Done => steps.push(Step::Nothing),
    }
    Ok(Progress {
        run,
        steps,
        created,
    })
}

fn freeze_page(
    kv: &impl KeyValue,
    params: &Parameters,
    run: Run,
    actor: &Actor,
    now: DateTime<Utc>,
    random: &dyn Fn(&mut [u8]),
) -> Result<Run, RunError> {
    let from = run.freeze_cursor.unwrap_or_default();
    let (ids, next) = index::read(kv, IN_TRAINING_INDEX, from, run.page_size)?;
    let mut keys_wanted: Vec<String> = ids.iter().map(|i| keys::class(i)).collect();
    keys_wanted.extend(ids.iter().map(|i| findings::hold_key(i)));
    let values = if ids.is_empty() {
        Vec::new()
    } else {
        kv.get_many(&keys_wanted)?
    };
    let mut frozen = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(bytes) = values.get(i).and_then(|v| v.as_deref()) else {
            continue;
        };
        let record: ClassRecord = decode(bytes, "class")?;
        if record.status != ClassStatus::InTraining || !seen.insert(id.clone()) {
            continue;
        }
        let hold: findings::ClassHold = match values.get(ids.len() + i).and_then(|v| v.as_deref()) {
            Some(b) => decode(b, "class hold")?,
            None => Default::default(),
        };
        let raised = record.decision.failed("CO-SHARED-PHONE") || hold.total > 0;
        let roster = record.application.roster.len();
        let size = sampling::sample_size(params, run.evaluated_on, roster, raised);
        frozen.push(FrozenClass {
            class_id: record.id.clone(),
            roster,
            n: size.n,
            rule: size.rule,
            raised,
        });
    }
    let page = run.freeze_pages;
    let count = frozen.len();
    // The chunk goes under a key of its own; the run record then names it.
    let mut nonce = [0u8; 8];
    random(&mut nonce);
    let nonce = crate::pii::hex(&nonce);
    put_json(kv, &chunk_key(&run.id, page, &nonce), &frozen)?;
    let mut wrote = false;
    let updated =
        update_json::<Run, std::convert::Infallible>(kv, &run_key(&run.id), "run", |cur| {
            wrote = false;
            let Some(mut r) = cur else { return Ok(None) };
            if r.phase != Phase::Freezing || r.frozen || r.freeze_pages != page {
                return Ok(None); // another request did this page
            }
            r.chunks.push(Chunk {
                nonce: nonce.clone(),
                count,
            });
            r.classes += count;
            r.freeze_pages += 1;
            r.freeze_cursor = next;
            r.frozen = next.is_none();
            wrote = true;
            Ok(Some(r))
        })
        .map_err(never)?
        .ok_or(StoreError::Contention)?;
    if wrote {
        audit_run(
            kv,
            actor,
            "spot_check.run.page_frozen",
            &updated,
            format!("page {page}: {count} classes"),
            now,
        )?;
    }
    Ok(updated)
}

/// The registered inspectors.
pub fn inspectors(kv: &impl KeyValue) -> Result<BTreeMap<String, Inspector>, StoreError> {
    Ok(get_json(kv, &inspectors_key(), "inspectors")?.unwrap_or_default())
}

/// Registers or changes an inspector (by token subject).
pub fn put_inspector(
    kv: &impl KeyValue,
    sub: &str,
    name: &str,
    active: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Inspector, StoreError> {
    let entry = Inspector {
        name: name.to_string(),
        active,
        updated_at: now,
    };
    let mut before = None;
    update_json::<BTreeMap<String, Inspector>, std::convert::Infallible>(
        kv,
        &inspectors_key(),
        "inspectors",
        |cur| {
            let mut all = cur.unwrap_or_default();
            before = all.get(sub).map(audit::digest_of);
            match all.get(sub) {
                Some(e) if e.name == entry.name && e.active == entry.active => Ok(None),
                _ => {
                    all.insert(sub.to_string(), entry.clone());
                    Ok(Some(all))
                }
            }
        },
    )
    .map_err(never)?;
    audit::record(
        kv,
        Change {
            actor: actor.clone(),
            action: "spot_check.inspector.put".into(),
            entity: format!("inspector:{sub}"),
            before,
            after: Some(audit::digest_of(&entry)),
            note: Some(if active { "active" } else { "inactive" }.into()),
        },
        now,
    )?;
    Ok(entry)
}

fn fix_seed(
    kv: &impl KeyValue,
    run: Run,
    actor: &Actor,
    now: DateTime<Utc>,
    random: &dyn Fn(&mut [u8]),
) -> Result<Run, RunError> {
    if run.seed.is_some() {
        return Ok(run);
    }
    let active: Vec<String> = inspectors(kv)?
        .into_iter()
        .filter(|(_, i)| i.active)
        .map(|(s, _)| s)
        .collect();
    if active.is_empty() {
        return Err(RunError::NoInspectors);
    }
    let mut bytes = [0u8; 32];
    random(&mut bytes);
    let random_seed = crate::pii::hex(&bytes);
    let mut wrote = false;
    let updated =
        update_json::<Run, std::convert::Infallible>(kv, &run_key(&run.id), "run", |cur| {
            wrote = false;
            let Some(mut r) = cur else { return Ok(None) };
            if r.seed.is_some() || !r.frozen {
                return Ok(None);
            }
            r.seed = Some(match &r.proposed_seed {
                Some(p) => Seed {
                    value: p.clone(),
                    source: SeedSource::Public,
                    fixed_at: now,
                },
                None => Seed {
                    value: random_seed.clone(),
                    source: SeedSource::Random,
                    fixed_at: now,
                },
            });
            r.inspectors = active.clone();
            r.phase = if r.classes == 0 {
                Phase::Done
            } else {
                Phase::Drawing
            };
            wrote = true;
            Ok(Some(r))
        })
        .map_err(never)?
        .ok_or(StoreError::Contention)?;
    if wrote {
        let source = updated.seed.as_ref().map(|s| s.source);
        audit_run(
            kv,
            actor,
            "spot_check.run.seed_fixed",
            &updated,
            format!("{} classes frozen; seed {:?}", updated.classes, source).to_lowercase(),
            now,
        )?;
    }
    Ok(updated)
}

/// The task record a draw page writes for a frozen class (a function of the run record and the chunk).
fn first_sample(run: &Run, c: &FrozenClass, page: usize, ordinal: u64) -> ClassTasks {
    let seed = &run
        .seed
        .as_ref()
        .expect("drawn after the seed is fixed")
        .value;
    let drawn = sampling::sample(seed, &c.population(), c.n);
    let tasks = drawn
        .into_iter()
        .enumerate()
        .map(|(j, d)| {
            let line = sampling::roster_line(&c.class_id, &d.id).expect("own sample id");
            Task {
                id: task_id(&run.id, &c.class_id, line),
                sample_id: d.id,
                roster_line: line,
                ticket: d.ticket,
                round: 1,
                inspector: sampling::assign(ordinal + j as u64, &run.inspectors)
                    .cloned()
                    .unwrap_or_default(),
                state: TaskState::Pending,
                attempts: Vec::new(),
                finding: None,
            }
        })
        .collect();
    ClassTasks {
        run: run.id.clone(),
        class_id: c.class_id.clone(),
        n: c.n,
        frozen: c.clone(),
        page,
        tasks,
        second_drawn: false,
    }
}

/// Reads the frozen classes of freeze page `page`.
pub fn chunk(kv: &impl KeyValue, run: &Run, page: usize) -> Result<Vec<FrozenClass>, StoreError> {
    match run.chunk_key(page) {
        None => Ok(Vec::new()),
        Some(k) => get_json(kv, &k, "frozen classes")?.ok_or(StoreError::Corrupt("frozen classes")),
    }
}

fn draw_page(
    kv: &impl KeyValue,
    run: Run,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Run, RunError> {
    let page = run.drawn_pages;
    let frozen = chunk(kv, &run, page)?;
    let keys_wanted: Vec<String> = frozen
        .iter()
        .map(|c| tasks_key(&run.id, &c.class_id))
        .collect();
    let present = if keys_wanted.is_empty() {
        Vec::new()
    } else {
        kv.get_many(&keys_wanted)?
    };
    let mut ordinal = run.tasks;
    let mut records = Vec::new();
    let mut absent = Vec::new();
    for ((c, key), existing) in frozen.iter().zip(&keys_wanted).zip(&present) {
        if let Some(b) = existing {
            let r: ClassTasks = decode(b, "class tasks")?;
            if r.page != page {
                continue; // listed twice in the index: drawn on its first page only
            }
        }
        let r = first_sample(&run, c, page, ordinal);
        ordinal += r.tasks.len() as u64;
        // Written where absent only: a record already there is this page's, from an interrupted attempt.
        if existing.is_none() {
            absent.push((key.clone(), encode(&r)));
        }
        records.push(r);
    }
    let created = ordinal - run.tasks;
    if !absent.is_empty() {
        kv.set_many(&absent)?;
    }
    // Each inspector's classes on this page.
    let mut by_inspector: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &records {
        for t in &r.tasks {
            let list = by_inspector.entry(t.inspector.as_str()).or_default();
            if list.last() != Some(&r.class_id.as_str()) {
                list.push(r.class_id.as_str());
            }
        }
    }
    let lists: Vec<(String, Vec<u8>)> = by_inspector
        .iter()
        .map(|(who, list)| (assign_key(&run.id, page, who), encode(list)))
        .collect();
    if !lists.is_empty() {
        kv.set_many(&lists)?;
    }
    let mut wrote = false;
    let updated =
        update_json::<Run, std::convert::Infallible>(kv, &run_key(&run.id), "run", |cur| {
            wrote = false;
            let Some(mut r) = cur else { return Ok(None) };
            if r.phase != Phase::Drawing || r.drawn_pages != page {
                return Ok(None);
            }
            r.drawn_pages += 1;
            r.tasks += created;
            if r.drawn_pages >= r.draw_pages() {
                r.phase = Phase::Done;
            }
            wrote = true;
            Ok(Some(r))
        })
        .map_err(never)?
        .ok_or(StoreError::Contention)?;
    if wrote {
        audit_run(
            kv,
            actor,
            "spot_check.run.page_drawn",
            &updated,
            format!("page {page}: {} classes, {created} tasks", records.len()),
            now,
        )?;
    }
    Ok(updated)
}

/// One page of a published run: the drawn classes with their samples, and the classes not drawn yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPage {
    /// Drawn classes of the page.
    pub drawn: Vec<(FrozenClass, ClassTasks)>,
    /// Frozen classes of the page not drawn yet.
    pub undrawn: Vec<FrozenClass>,
    /// Where the next page starts (freeze page, offset in it).
    pub next: Option<Position>,
}

/// Reads up to `limit` frozen classes from `from` with their task records
/// (one `get_many` of chunks, one of task records).
pub fn published_page(
    kv: &impl KeyValue,
    run: &Run,
    from: Position,
    limit: usize,
) -> Result<PublishedPage, StoreError> {
    // Which chunks, and how much of each, the page needs (from the counts in the run record).
    let mut wanted: Vec<(usize, usize, usize)> = Vec::new(); // (page, skip, take)
    let mut room = limit;
    let mut next = None;
    let mut p = from.page as usize;
    let mut skip = from.offset;
    while p < run.chunks.len() {
        let count = run.chunks[p].count;
        if skip >= count {
            p += 1;
            skip = 0;
            continue;
        }
        if room == 0 {
            next = Some(Position {
                page: p as u64,
                offset: skip,
            });
            break;
        }
        let take = room.min(count - skip);
        wanted.push((p, skip, take));
        room -= take;
        skip += take;
    }
    let keys_wanted: Vec<String> = wanted
        .iter()
        .filter_map(|(p, _, _)| run.chunk_key(*p))
        .collect();
    let values = if keys_wanted.is_empty() {
        Vec::new()
    } else {
        kv.get_many(&keys_wanted)?
    };
    let mut listed: Vec<(usize, FrozenClass)> = Vec::new();
    for ((p, skip, take), v) in wanted.iter().zip(values) {
        let list: Vec<FrozenClass> = match v {
            Some(b) => decode(&b, "frozen classes")?,
            None => return Err(StoreError::Corrupt("frozen classes")),
        };
        listed.extend(list.into_iter().skip(*skip).take(*take).map(|c| (*p, c)));
    }
    let drawn_keys: Vec<String> = listed
        .iter()
        .filter(|(p, _)| run.is_drawn(*p))
        .map(|(_, c)| tasks_key(&run.id, &c.class_id))
        .collect();
    let mut tasks = if drawn_keys.is_empty() {
        Vec::new()
    } else {
        kv.get_many(&drawn_keys)?
    }
    .into_iter();
    let mut drawn = Vec::new();
    let mut undrawn = Vec::new();
    for (p, c) in listed {
        if !run.is_drawn(p) {
            undrawn.push(c);
            continue;
        }
        let record: ClassTasks = match tasks.next().flatten() {
            Some(b) => decode(&b, "class tasks")?,
            None => return Err(StoreError::Corrupt("class tasks")),
        };
        if record.page == p {
            drawn.push((c, record));
        }
    }
    Ok(PublishedPage {
        drawn,
        undrawn,
        next,
    })
}

/// Reads a class's task record in a run.
pub fn class_tasks(
    kv: &impl KeyValue,
    run: &str,
    class_id: &str,
) -> Result<Option<ClassTasks>, StoreError> {
    get_json(kv, &tasks_key(run, class_id), "class tasks")
}

/// A task on an inspector's list, with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyTask {
    /// The task.
    pub task: Task,
    /// The class.
    pub class: ClassRecord,
}

/// One page of an inspector's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyPage {
    /// Tasks, by class in run order.
    pub tasks: Vec<MyTask>,
    /// Where the next page starts (draw page, offset in that page's list).
    pub next: Option<Position>,
}

/// The tasks of `inspector` in `run`, reading at most `limit` classes from `from`.
/// Four `get_many`/`get` calls whatever the run's size: run, lists, task records, class records.
pub fn tasks_of(
    kv: &impl KeyValue,
    run: &Run,
    inspector: &str,
    from: Position,
    limit: usize,
) -> Result<MyPage, StoreError> {
    let pages: Vec<usize> = (from.page as usize..run.drawn_pages).collect();
    if pages.is_empty() {
        return Ok(MyPage {
            tasks: vec![],
            next: None,
        });
    }
    let lists = kv.get_many(
        &pages
            .iter()
            .map(|p| assign_key(&run.id, *p, inspector))
            .collect::<Vec<_>>(),
    )?;
    let mut chosen: Vec<String> = Vec::new();
    let mut next = None;
    'outer: for (p, v) in pages.iter().zip(lists) {
        let list: Vec<String> = match v {
            Some(b) => decode(&b, "assignment")?,
            None => continue,
        };
        let skip = if *p as u64 == from.page {
            from.offset
        } else {
            0
        };
        for (i, c) in list.iter().enumerate().skip(skip) {
            if chosen.len() == limit {
                next = Some(Position {
                    page: *p as u64,
                    offset: i,
                });
                break 'outer;
            }
            chosen.push(c.clone());
        }
    }
    if chosen.is_empty() {
        return Ok(MyPage {
            tasks: vec![],
            next: None,
        });
    }
    let mut keys_wanted: Vec<String> = chosen.iter().map(|c| tasks_key(&run.id, c)).collect();
    keys_wanted.extend(chosen.iter().map(|c| keys::class(c)));
    let values = kv.get_many(&keys_wanted)?;
    let mut tasks = Vec::new();
    for i in 0..chosen.len() {
        let (Some(t), Some(c)) = (values[i].as_deref(), values[chosen.len() + i].as_deref()) else {
            continue;
        };
        let record: ClassTasks = decode(t, "class tasks")?;
        let class: ClassRecord = decode(c, "class")?;
        for task in record
            .tasks
            .into_iter()
            .filter(|t| t.inspector == inspector)
        {
            tasks.push(MyTask {
                task,
                class: class.clone(),
            });
        }
    }
    Ok(MyPage { tasks, next })
}

/// Records that `inspector` viewed the full phone numbers of `task_ids` (one event per view).
pub fn audit_phone_view(
    kv: &impl KeyValue,
    actor: &Actor,
    run: &str,
    task_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit::record(
        kv,
        Change {
            actor: actor.clone(),
            action: "spot_check.phone_numbers_viewed".into(),
            entity: format!("run:{run}"),
            before: None,
            after: None,
            note: Some(format!("tasks {}", task_ids.join(","))),
        },
        now,
    )?;
    Ok(())
}

/// Why a call could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such task (or its page is not drawn yet).
    #[error("task not found")]
    NotFound,
    /// The task is assigned to another inspector.
    #[error("the task is assigned to another inspector")]
    NotYours,
    /// The task is completed or unreachable.
    #[error("the task is closed ({0:?})")]
    Closed(TaskState),
}

/// What recording a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The task afterwards.
    pub task: Task,
    /// Whether this was a retry of the last recorded attempt (nothing changed).
    pub replay: bool,
    /// Whether this call drew the class's second sample (SC-UNREACH).
    pub second_sample: bool,
    /// The finding opened (SC-DENY), if any.
    pub finding: Option<Finding>,
    /// Whether the institution was proposed for the blacklist by this finding (SC-REPEAT).
    pub blacklist_proposed: bool,
}

/// Records a call attempt on task `id` by `inspector` (SC-CALL, SC-UNREACH, SC-DENY, SC-REPEAT).
pub fn record_call(
    kv: &impl KeyValue,
    params: &Parameters,
    id: &str,
    report: &CallReport,
    inspector: &Actor,
    now: DateTime<Utc>,
) -> Result<CallOutcome, CallError> {
    let (run_id, class_id, line) = parse_task_id(id).ok_or(CallError::NotFound)?;
    let run = get_run(kv, &run_id)?.ok_or(CallError::NotFound)?;
    let seed = run
        .seed
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    let limit = params
        .at_or_first(names::SC_CALL_ATTEMPTS, run.evaluated_on)
        .value;
    let share = params
        .at_or_first(names::SC_UNREACHABLE_SHARE_PERCENT, run.evaluated_on)
        .value;
    let mut replay = false;
    let mut second = false;
    let mut result_task = None;
    update_json::<ClassTasks, CallError>(
        kv,
        &tasks_key(&run_id, &class_id),
        "class tasks",
        |cur| {
            let mut rec = cur.ok_or(CallError::NotFound)?;
            if !run.is_drawn(rec.page) {
                return Err(CallError::NotFound); // its page is not published yet
            }
            replay = false;
            second = false;
            let i = rec
                .tasks
                .iter()
                .position(|t| t.roster_line == line)
                .ok_or(CallError::NotFound)?;
            if rec.tasks[i].inspector != inspector.sub {
                return Err(CallError::NotYours);
            }
            if rec.tasks[i]
                .attempts
                .last()
                .is_some_and(|a| a.report == *report && a.inspector == inspector.sub)
            {
                replay = true;
                result_task = Some(rec.tasks[i].clone());
                return Ok(None);
            }
            if rec.tasks[i].state != TaskState::Pending {
                return Err(CallError::Closed(rec.tasks[i].state));
            }
            let t = &mut rec.tasks[i];
            t.attempts.push(Attempt {
                report: report.clone(),
                inspector: inspector.sub.clone(),
                recorded_at: now,
            });
            t.state = sampling::state_after(t.attempts.len(), report.answered, limit);
            if sampling::denial(report.answered, report.attended, report.fee_asked).is_some() {
                t.finding = Some(t.id.clone());
            }
            result_task = Some(t.clone());
            if t.state == TaskState::Unreachable && !rec.second_drawn {
                let first: Vec<&Task> = rec.tasks.iter().filter(|t| t.round == 1).collect();
                let unreachable = first
                    .iter()
                    .filter(|t| t.state == TaskState::Unreachable)
                    .count();
                if sampling::needs_second_sample(first.len(), unreachable, share) {
                    let mut who: Vec<String> = Vec::new();
                    for t in &first {
                        if !who.contains(&t.inspector) {
                            who.push(t.inspector.clone());
                        }
                    }
                    let all = sampling::order(&seed, &rec.frozen.population());
                    let extra: Vec<Task> = all
                        .into_iter()
                        .skip(rec.n)
                        .take(rec.n)
                        .enumerate()
                        .map(|(j, d)| {
                            let line =
                                sampling::roster_line(&class_id, &d.id).expect("own sample id");
                            Task {
                                id: task_id(&run_id, &class_id, line),
                                sample_id: d.id,
                                roster_line: line,
                                ticket: d.ticket,
                                round: 2,
                                inspector: who[j % who.len()].clone(),
                                state: TaskState::Pending,
                                attempts: Vec::new(),
                                finding: None,
                            }
                        })
                        .collect();
                    second = !extra.is_empty();
                    rec.tasks.extend(extra);
                    rec.second_drawn = true;
                }
            }
            Ok(Some(rec))
        },
    )
    .map_err(|e| match refused(e) {
        Ok(s) => CallError::Store(s),
        Err(c) => c,
    })?;
    let task = result_task.ok_or(CallError::NotFound)?;
    if !replay {
        audit::record(
            kv,
            Change {
                actor: inspector.clone(),
                action: "spot_check.call_recorded".into(),
                entity: format!("task:{}", task.id),
                before: None,
                after: Some(audit::digest_of(&task)),
                note: Some(
                    format!(
                        "{:?}{}",
                        task.state,
                        if second { "; second sample drawn" } else { "" }
                    )
                    .to_lowercase(),
                ),
            },
            now,
        )?;
    }
    let mut finding = None;
    let mut blacklist_proposed = false;
    if task.finding.is_some() {
        let last = task.attempts.last().expect("a finding follows an attempt");
        let (f, proposed) = open_finding(kv, params, &run, &class_id, &task, last, inspector, now)?;
        finding = Some(f);
        blacklist_proposed = proposed;
    }
    Ok(CallOutcome {
        task,
        replay,
        second_sample: second,
        finding,
        blacklist_proposed,
    })
}

/// Opens (idempotently) the finding of a task and counts it towards SC-REPEAT.
#[allow(clippy::too_many_arguments)]
fn open_finding(
    kv: &impl KeyValue,
    params: &Parameters,
    run: &Run,
    class_id: &str,
    task: &Task,
    attempt: &Attempt,
    inspector: &Actor,
    now: DateTime<Utc>,
) -> Result<(Finding, bool), CallError> {
    let class = classes::get(kv, class_id)?.ok_or(CallError::NotFound)?;
    let person = class
        .roster_refs
        .get(task.roster_line)
        .map(|r| r.person.clone())
        .unwrap_or_default();
    let kind = match sampling::denial(
        attempt.report.answered,
        attempt.report.attended,
        attempt.report.fee_asked,
    ) {
        Some(Denial::AskedToPay) => FindingKind::AskedToPay,
        _ => FindingKind::DeniedAttendance,
    };
    let id = task.finding.clone().unwrap_or_else(|| task.id.clone());
    let finding = Finding {
        id: id.clone(),
        class_id: class_id.to_string(),
        roster_line: task.roster_line,
        person,
        kind,
        status: FindingStatus::Open,
        source: format!("run:{}/task:{}", run.id, task.id),
        opened_at: attempt.recorded_at,
        opened_by: inspector.clone(),
        rectification: None,
    };
    findings::open(kv, &finding, now)?;
    let stored = findings::get(kv, &id)?.unwrap_or(finding);
    index::append(kv, FINDINGS_INDEX, &id)?;
    index::append(
        kv,
        &district_findings_index(class.application.district.code()),
        &id,
    )?;
    // SC-REPEAT: classes of the institution with findings in the year of the finding (CST).
    let institution = class.application.institution.as_str().to_string();
    let year = (stored.opened_at + chrono::Duration::hours(8)).year();
    let with_findings = update_json::<BTreeSet<String>, std::convert::Infallible>(
        kv,
        &repeat_key(&institution, year),
        "repeat",
        |cur| {
            let mut set = cur.unwrap_or_default();
            Ok(set.insert(class_id.to_string()).then_some(set))
        },
    )
    .map_err(never)?
    .unwrap_or_default();
    let limit = params.at_or_first(names::SC_REPEAT_CLASSES, run.evaluated_on);
    let mut proposed_now = false;
    if sampling::propose_blacklist(with_findings.len(), limit.value) {
        let proposal = Proposal {
            institution: institution.clone(),
            year,
            classes: with_findings.iter().cloned().collect(),
            proposed_at: now,
            rule: sampling::SC_REPEAT.id.into(),
            parameter: limit.label(),
        };
        let mut created = false;
        update_json::<Proposal, std::convert::Infallible>(
            kv,
            &proposal_key(&institution, year),
            "proposal",
            |cur| {
                created = cur.is_none();
                Ok(cur.is_none().then(|| proposal.clone()))
            },
        )
        .map_err(never)?;
        index::append(kv, PROPOSALS_INDEX, &format!("{institution}:{year}"))?;
        if created {
            proposed_now = true;
            audit::record(
                kv,
                Change {
                    actor: inspector.clone(),
                    action: "spot_check.blacklist_proposed".into(),
                    entity: format!("institution:{institution}"),
                    before: None,
                    after: Some(audit::digest_of(&proposal)),
                    note: Some(format!(
                        "{} classes with findings in {year}",
                        proposal.classes.len()
                    )),
                },
                now,
            )?;
        }
    }
    Ok((stored, proposed_now))
}

/// An institution proposed for the blacklist (SC-REPEAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Credit code.
    pub institution: String,
    /// Year of the findings.
    pub year: i32,
    /// Classes with findings when proposed.
    pub classes: Vec<String>,
    /// When.
    pub proposed_at: DateTime<Utc>,
    /// `SC-REPEAT`.
    pub rule: String,
    /// The limit that decided, as `name@since`.
    pub parameter: String,
}

/// Lists findings from index `name` (one index read and one `get_many`).
pub fn list_findings(
    kv: &impl KeyValue,
    name: &str,
    from: Position,
    limit: usize,
) -> Result<(Vec<Finding>, Option<Position>), StoreError> {
    let (ids, next) = index::read(kv, name, from, limit)?;
    if ids.is_empty() {
        return Ok((vec![], next));
    }
    let values = kv.get_many(
        &ids.iter()
            .map(|i| findings::finding_key(i))
            .collect::<Vec<_>>(),
    )?;
    let mut out = Vec::new();
    for v in values.into_iter().flatten() {
        out.push(decode(&v, "finding")?);
    }
    Ok((out, next))
}

/// Lists blacklist proposals.
pub fn list_proposals(
    kv: &impl KeyValue,
    from: Position,
    limit: usize,
) -> Result<(Vec<Proposal>, Option<Position>), StoreError> {
    let (ids, next) = index::read(kv, PROPOSALS_INDEX, from, limit)?;
    let keys_wanted: Vec<String> = ids
        .iter()
        .filter_map(|i| i.rsplit_once(':'))
        .filter_map(|(inst, y)| y.parse().ok().map(|y| proposal_key(inst, y)))
        .collect();
    if keys_wanted.is_empty() {
        return Ok((vec![], next));
    }
    let mut out = Vec::new();
    for v in kv.get_many(&keys_wanted)?.into_iter().flatten() {
        out.push(decode(&v, "proposal")?);
    }
    Ok((out, next))
}

/// The id of the latest run, if any (the last entry of the runs index).
pub fn latest_run(kv: &impl KeyValue) -> Result<Option<String>, StoreError> {
    let mut pos = Position::default();
    let mut last = None;
    loop {
        let (ids, next) = index::read(kv, RUNS_INDEX, pos, index::PAGE_SIZE)?;
        if let Some(l) = ids.last() {
            last = Some(l.clone());
        }
        match next {
            Some(p) => pos = p,
            None => return Ok(last),
        }
    }
}

/// How many spot-check call tasks of `class_id`, over every run, are not
/// closed (answered, or unreachable after SC-CALL's attempts).
pub fn open_tasks(kv: &impl KeyValue, class_id: &str) -> Result<usize, StoreError> {
    let mut runs = Vec::new();
    let mut from = Position::default();
    loop {
        let (ids, next) = index::read(kv, RUNS_INDEX, from, MAX_PAGE_SIZE)?;
        runs.extend(ids);
        match next {
            Some(n) => from = n,
            None => break,
        }
    }
    if runs.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = runs.iter().map(|r| tasks_key(r, class_id)).collect();
    let mut open = 0;
    for bytes in kv.get_many(&keys)?.into_iter().flatten() {
        let tasks: ClassTasks = decode(&bytes, "class tasks")?;
        open += tasks
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Pending)
            .count();
    }
    Ok(open)
}
