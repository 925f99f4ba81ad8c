//! Classes (开班) in the store: filing, reading, listing, the three checks of
//! 每班必查, and the occupancy records the CO-* rules are decided against.
//!
//! Everything validation needs is read in one `get_many` ([`load_context`]).
//! Filing writes in an order a retry can repair: first the claim of the
//! application's keyed digest (holding the whole record, decided on that reading),
//! then, if that decision approves, the class's entries in the occupancy
//! records, after which the rules decide again on what those records held
//! (module `reserve`: filings made at the same moment see each other, and a
//! rejected one takes its entries out again), then the class record with the
//! final decision, then the idempotent index entries, then a flag that they
//! are done, then the audit event.

use crate::audit::{self, Actor, Change};
use crate::index::{self, Position};
use crate::keys;
use crate::kv::KeyValue;
use crate::pii::{PiiHasher, sha256_hex};
use crate::records::{
    StoreError, UpdateError, create_json, decode, encode, get_json, put_json, update_json,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use policy::class_opening::{
    Booking, ClassApplication, Context, Enrolment, Held, YearCounts, normalize_site,
};
use policy::data::Policy;
use policy::decision::{Decision, Outcome};
use policy::registry::{CatalogueTextbook, Courseware, Institution, Trainer, normalize_isbn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

mod reserve;

/// The rules filing applies, from `policy` (the store decides nothing):
/// `decide` is the whole decision on an application in a context under the
/// policy in force ([`policy::class_opening::evaluate`]); `clashes` tells whether what one
/// occupancy record holds blocks the application
/// ([`policy::class_opening::clashes`]), and must agree with `decide`.
#[derive(Debug, Clone, Copy)]
pub struct Rules<D, C> {
    /// The decision on an application in a context.
    pub decide: D,
    /// Whether what one occupancy record holds blocks the application.
    pub clashes: C,
}

impl<D, C> Rules<D, C>
where
    D: Fn(&ClassApplication, &Context, &Policy) -> Decision,
    C: Fn(&ClassApplication, Held<'_>) -> bool,
{
    /// The rules of `decide` and `clashes`.
    pub fn new(decide: D, clashes: C) -> Self {
        Self { decide, clashes }
    }
}

/// How long a filing that finds the claim of the same application without its
/// class record waits for the filing in flight before it finishes that
/// filing's work itself (the claim is older than this: its filing died).
pub const FILING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A class's status, the checks of 每班必查 and their results are policy's
/// (`policy::checks`, CK-ORDER): the store keeps them as they are.
pub use policy::checks::{CheckKind, CheckResult, ClassPhase, ClassStatus};

/// A recorded check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Which check.
    pub kind: CheckKind,
    /// The officer who carried it out.
    pub officer: String,
    /// When it was carried out.
    pub at: DateTime<Utc>,
    /// Result.
    pub result: CheckResult,
    /// Notes.
    pub notes: String,
    /// Who recorded it.
    pub recorded_by: Actor,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Its audit event (and, for a passed pre-opening check, the in-training
    /// index entry) is not written yet: set in the same swap that records
    /// the check, cleared once they are. A request that died in between
    /// leaves it set, and the next check of the class, or the retry, writes
    /// what is owed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unaudited: bool,
}

impl CheckRecord {
    /// Whether `other` is the same check, recorded by the same request
    /// (a retry carries the same kind, time, result and recorder).
    fn same_as(&self, other: &CheckRecord) -> bool {
        self.kind == other.kind
            && self.at == other.at
            && self.result == other.result
            && self.officer == other.officer
            && self.recorded_by == other.recorded_by
    }
}

/// Keyed hashes of one roster line, for other functions' lookups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterRef {
    /// Person ref (HMAC of the ID number).
    pub person: String,
    /// Phone ref (HMAC of the mobile).
    pub phone: String,
}

impl RosterRef {
    /// The refs of one roster line.
    pub fn of(hasher: &PiiHasher, trainee: &policy::class_opening::Trainee) -> Self {
        Self {
            person: hasher.person_ref(&trainee.id_number),
            phone: hasher.phone_ref(&trainee.mobile),
        }
    }
}

/// A filed class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassRecord {
    /// Class id, `KM-2022-000123`.
    pub id: String,
    /// Status.
    pub status: ClassStatus,
    /// The application as filed.
    pub application: ClassApplication,
    /// Keyed hashes per roster line.
    pub roster_refs: Vec<RosterRef>,
    /// The decision.
    pub decision: Decision,
    /// The keyed digest of the application ([`application_digest`]) that
    /// keys its claim (duplicate filing guard). Records filed before the
    /// claim was keyed (stored as `digest`) hold the plain SHA-256 of the
    /// application here, inside the sealed value; nothing reads it but tests.
    #[serde(alias = "digest")]
    pub claim_digest: String,
    /// When filed.
    pub filed_at: DateTime<Utc>,
    /// Who filed.
    pub filed_by: Actor,
    /// Checks recorded.
    #[serde(default)]
    pub checks: Vec<CheckRecord>,
    /// Whether the index entries were written (occupancy and counts are written before the class record).
    #[serde(default)]
    pub side_effects_done: bool,
}

impl ClassRecord {
    /// Where the class is on `today` (`training_ended` once its last class day is past).
    pub fn phase_on(&self, today: NaiveDate) -> ClassPhase {
        policy::checks::phase(self.status, self.application.end_date, today)
    }

    /// Whether a passed check of `kind` is recorded.
    pub fn has_passed(&self, kind: CheckKind) -> bool {
        self.checks
            .iter()
            .any(|c| c.kind == kind && c.result == CheckResult::Passed)
    }
}

/// Whose lookups [`load_context`] needs, in the order it reads them back.
#[derive(Debug, Clone)]
struct ContextKeys {
    keys: Vec<String>,
    /// The application's sites, normalised, computed once.
    sites: Vec<String>,
    /// Person and phone ref of each roster line, computed once.
    refs: Vec<RosterRef>,
}

fn textbook_key(b: &policy::class_opening::Textbook) -> String {
    match &b.isbn {
        Some(isbn) => keys::registry("textbook", &normalize_isbn(isbn)),
        None => keys::registry("textbook-title", &sha256_hex(b.title.trim())),
    }
}

fn site_key(site: &str) -> String {
    keys::site_bookings(&sha256_hex(normalize_site(site)))
}

/// The keys of everything the CO-* rules need. [`load_context`] reads the
/// values back in exactly this order: the current policy, institution, year, then per trainer
/// its registry entry and bookings, courseware, textbooks, sites, then per
/// roster line its enrolments and phone uses.
fn context_keys(app: &ClassApplication, hasher: &PiiHasher) -> ContextKeys {
    let mut keys = vec![
        keys::policy_current(),
        keys::registry("institution", app.institution.as_str()),
        keys::institution_year(app.institution.as_str(), app.start_date.year()),
    ];
    for t in app.trainer_numbers() {
        keys.push(keys::registry("trainer", t));
        keys.push(keys::trainer_bookings(t));
    }
    for c in app.courseware_ids() {
        keys.push(keys::registry("courseware", c));
    }
    for b in &app.textbooks {
        keys.push(textbook_key(b));
    }
    let sites = app.sites();
    for s in &sites {
        keys.push(keys::site_bookings(&sha256_hex(s)));
    }
    let refs: Vec<RosterRef> = app
        .roster
        .iter()
        .map(|t| RosterRef::of(hasher, t))
        .collect();
    for r in &refs {
        keys.push(keys::person_enrolments(&r.person));
        keys.push(keys::phone_users(&r.phone));
    }
    ContextKeys { keys, sites, refs }
}

/// The values of a `get_many`, read back one by one in the order of its keys.
struct Values<'a>(std::slice::Iter<'a, Option<Vec<u8>>>);

impl Values<'_> {
    /// The next key's record, if it has one.
    fn next<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        match self.0.next() {
            Some(Some(bytes)) => decode(bytes, what).map(Some),
            Some(None) => Ok(None),
            None => Err(StoreError::Kv(crate::kv::KvError::Backend(
                "get_many answered fewer values than keys".into(),
            ))),
        }
    }
}

/// A class using a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneUse {
    /// The class.
    pub class_id: String,
    /// The person using the phone there.
    pub person: String,
    /// Last day of that class.
    pub end_date: NaiveDate,
}

/// The institution's classes in one year, by id (idempotent to re-add).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearClasses {
    /// Approved classes.
    pub classes: BTreeSet<String>,
    /// Of which lead only to a 培训合格证书.
    pub completion: BTreeSet<String>,
}

/// How many other people use a phone in live classes other than `app`'s
/// (uses of the phone by `person` itself, or ended before `app` starts, do not count).
fn phone_users_elsewhere(uses: &[PhoneUse], person: &str, app: &ClassApplication) -> u32 {
    uses.iter()
        .filter(|u| u.person != person && u.end_date >= app.start_date)
        .map(|u| u.person.as_str())
        .collect::<BTreeSet<&str>>()
        .len() as u32
}

/// Reads everything the CO-* rules need for `app`, and the policy in force
/// ([`crate::policy`]), in one `get_many`.
pub fn load_context(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    app: &ClassApplication,
    today: NaiveDate,
) -> Result<(Context, crate::policy::InForce), StoreError> {
    let (ctx, policy) = load(kv, hasher, app, today, None)?;
    Ok((ctx, in_force(policy)))
}

fn in_force(stored: Option<Policy>) -> crate::policy::InForce {
    match stored {
        Some(p) => crate::policy::InForce::Owned(p),
        None => crate::policy::InForce::Borrowed(Policy::shipped()),
    }
}

/// [`load_context`], leaving out the entries of class `own` (a filing that
/// finishes the work of an earlier one under the same class id).
fn load(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    app: &ClassApplication,
    today: NaiveDate,
    own: Option<&str>,
) -> Result<(Context, Option<Policy>), StoreError> {
    let others = |class_id: &str| own != Some(class_id);
    let ck = context_keys(app, hasher);
    let values = kv.get_many(&ck.keys)?;
    let mut v = Values(values.iter());
    let policy = match v.0.next() {
        Some(value) => crate::policy::stored_in(value.as_deref())?,
        None => {
            return Err(StoreError::Kv(crate::kv::KvError::Backend(
                "get_many answered fewer values than keys".into(),
            )));
        }
    };
    let mut ctx = Context {
        today,
        ..Context::default()
    };
    ctx.institution = v.next::<Institution>("institution")?;
    if let Some(y) = v.next::<YearClasses>("year counts")? {
        ctx.year = YearCounts {
            classes: y.classes.iter().filter(|c| others(c)).count() as u32,
            completion_classes: y.completion.iter().filter(|c| others(c)).count() as u32,
        };
    }
    for t in app.trainer_numbers() {
        if let Some(r) = v.next::<Trainer>("trainer")? {
            ctx.trainers.insert(t.to_string(), r);
        }
        if let Some(mut b) = v.next::<Vec<Booking>>("bookings")? {
            b.retain(|b| others(&b.class_id));
            ctx.trainer_bookings.insert(t.to_string(), b);
        }
    }
    for c in app.courseware_ids() {
        if let Some(r) = v.next::<Courseware>("courseware")? {
            ctx.courseware.insert(c.to_string(), r);
        }
    }
    for _ in &app.textbooks {
        if let Some(r) = v.next::<CatalogueTextbook>("textbook")? {
            ctx.textbooks.push(r);
        }
    }
    for s in ck.sites {
        if let Some(mut b) = v.next::<Vec<Booking>>("bookings")? {
            b.retain(|b| others(&b.class_id));
            ctx.site_bookings.insert(s, b);
        }
    }
    for (i, RosterRef { person, .. }) in ck.refs.iter().enumerate() {
        if let Some(mut e) = v.next::<Vec<Enrolment>>("enrolments")? {
            e.retain(|e| others(&e.class_id));
            ctx.enrolments.insert(i, e);
        }
        if let Some(mut uses) = v.next::<Vec<PhoneUse>>("phone uses")? {
            uses.retain(|u| others(&u.class_id));
            let n = phone_users_elsewhere(&uses, person, app);
            if n > 0 {
                ctx.phone_users_elsewhere.insert(i, n);
            }
        }
    }
    Ok((ctx, policy))
}

/// The keyed digest of an application's canonical form: same content from
/// the same deployment, same digest. Keyed ([`PiiHasher::application_digest`]),
/// since the application holds its trainees' ID numbers and mobiles: a plain
/// hash in a key would confirm a guessed application to anyone who reads keys.
pub fn application_digest(hasher: &PiiHasher, app: &ClassApplication) -> String {
    hasher.application_digest(&encode(app))
}

/// What filing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The class as stored.
    pub record: ClassRecord,
    /// False when the same application had been filed before (the earlier class is returned).
    pub created: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    record: ClassRecord,
}

/// Decides and files an application. The rules decide on a first reading of
/// the store; an approval then reserves what the class occupies and is
/// decided again on what the occupancy records held besides it (module `reserve`),
/// so that of filings made at the same moment that clash, exactly one is
/// approved, and the later of two that share a mobile or count toward the
/// same year sees the earlier. The same application content from the same
/// institution files once: a second filing, concurrent or later, returns the
/// first class. `today` is the filing date (CST) the rules count from. The
/// policy in force is read with the context; a filing before any import
/// imports the shipped defaults first ([`crate::policy::ensure_imported`]),
/// so that the version its decision names is stored.
pub fn file<D, C>(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    app: ClassApplication,
    rules: &Rules<D, C>,
    today: NaiveDate,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Filed, StoreError>
where
    D: Fn(&ClassApplication, &Context, &Policy) -> Decision,
    C: Fn(&ClassApplication, Held<'_>) -> bool,
{
    let claim_digest = application_digest(hasher, &app);
    let claim_key = keys::class_claim(app.institution.as_str(), &claim_digest);
    if let Some(existing) = get_json::<Claim>(kv, &claim_key, "class claim")? {
        return finish_existing(kv, hasher, rules, today, existing.record, now);
    }
    let (ctx, policy) = load(kv, hasher, &app, today, None)?;
    let policy = match policy {
        Some(p) => crate::policy::InForce::Owned(p),
        // First use: the decision names version 1, so version 1 is stored.
        None => {
            let meta = crate::policy::ensure_imported(kv, &actor, now)?;
            if meta.digest == Policy::shipped().reference.digest {
                crate::policy::InForce::Borrowed(Policy::shipped())
            } else {
                // Another build's defaults were imported first.
                crate::policy::current_policy(kv)?
            }
        }
    };
    let decision = (rules.decide)(&app, &ctx, &policy);
    let year = app.start_date.year();
    let seq = kv.increment(&keys::class_seq(year), 1)?;
    let id = format!("KM-{year}-{seq:06}");
    let roster_refs = app
        .roster
        .iter()
        .map(|t| RosterRef::of(hasher, t))
        .collect();
    let record = ClassRecord {
        id: id.clone(),
        status: status_of(&decision),
        application: app,
        roster_refs,
        decision,
        claim_digest,
        filed_at: now,
        filed_by: actor.clone(),
        checks: Vec::new(),
        side_effects_done: false,
    };
    if !create_json(
        kv,
        &claim_key,
        &Claim {
            record: record.clone(),
        },
    )? {
        // Another request claimed this application first.
        let existing =
            get_json::<Claim>(kv, &claim_key, "class claim")?.ok_or(StoreError::Contention)?;
        return finish_existing(kv, hasher, rules, today, existing.record, now);
    }
    let record = settle(kv, rules, record, ctx, &policy)?;
    let record = complete_side_effects(kv, record)?;
    audit::record(
        kv,
        Change {
            actor,
            action: "class.filed".into(),
            entity: format!("class:{id}"),
            before: None,
            after: Some(audit::digest_of(&record)),
            note: Some(record.status.id().to_string()),
        },
        now,
    )?;
    Ok(Filed {
        record,
        created: true,
    })
}

fn status_of(decision: &Decision) -> ClassStatus {
    if decision.outcome == Outcome::Approved {
        ClassStatus::Approved
    } else {
        ClassStatus::Rejected
    }
}

/// Takes a claimed record to its final decision and writes the class record:
/// a provisional approval reserves and is decided again.
fn settle<D, C>(
    kv: &impl KeyValue,
    rules: &Rules<D, C>,
    mut record: ClassRecord,
    ctx: Context,
    policy: &Policy,
) -> Result<ClassRecord, StoreError>
where
    D: Fn(&ClassApplication, &Context, &Policy) -> Decision,
    C: Fn(&ClassApplication, Held<'_>) -> bool,
{
    if record.decision.outcome == Outcome::Approved {
        let decision = reserve::reserve_and_decide(kv, rules, &record, ctx, policy)?;
        record.status = status_of(&decision);
        record.decision = decision;
    }
    put_json(kv, &keys::class(&record.id), &record)?;
    Ok(record)
}

/// The class record of a claim, waiting while the claiming filing may still
/// be at work (until [`FILING_PATIENCE`] after it began, by `now`).
fn wait_for_class(
    kv: &impl KeyValue,
    claimed: &ClassRecord,
    now: DateTime<Utc>,
) -> Result<Option<ClassRecord>, StoreError> {
    let patience = chrono::Duration::from_std(FILING_PATIENCE).unwrap_or_default();
    let left = (claimed.filed_at + patience - now)
        .to_std()
        .unwrap_or_default();
    let began = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(r) = get_json::<ClassRecord>(kv, &keys::class(&claimed.id), "class")? {
            return Ok(Some(r));
        }
        if began.elapsed() >= left {
            return Ok(None);
        }
        attempt += 1;
        crate::records::backoff(attempt);
    }
}

fn finish_existing<D, C>(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    rules: &Rules<D, C>,
    today: NaiveDate,
    claimed: ClassRecord,
    now: DateTime<Utc>,
) -> Result<Filed, StoreError>
where
    D: Fn(&ClassApplication, &Context, &Policy) -> Decision,
    C: Fn(&ClassApplication, Held<'_>) -> bool,
{
    let record = match wait_for_class(kv, &claimed, now)? {
        Some(r) => r,
        None => {
            // The first filing stopped after its claim: finish its work,
            // under its class id and the policy version it was decided by
            // when that version is still the current one.
            let (ctx, policy) = load(kv, hasher, &claimed.application, today, Some(&claimed.id))?;
            let policy = in_force(policy);
            let policy = match &claimed.decision.policy {
                Some(r) if *r != policy.reference => {
                    match crate::policy::stored_in(
                        kv.get(&keys::policy_version(r.version))?.as_deref(),
                    )? {
                        Some(p) => crate::policy::InForce::Owned(p),
                        None => policy,
                    }
                }
                _ => policy,
            };
            settle(kv, rules, claimed, ctx, &policy)?
        }
    };
    let record = if record.side_effects_done {
        record
    } else {
        complete_side_effects(kv, record)?
    };
    Ok(Filed {
        record,
        created: false,
    })
}

/// Writes the index entries of a class, then marks them done. Idempotent.
fn complete_side_effects(
    kv: &impl KeyValue,
    mut record: ClassRecord,
) -> Result<ClassRecord, StoreError> {
    let app = &record.application;
    let id = record.id.clone();
    index::append(kv, "classes:all", &id)?;
    index::append(
        kv,
        &format!("classes:district:{}", app.district.code()),
        &id,
    )?;
    index::append(
        kv,
        &format!("classes:institution:{}", app.institution.as_str()),
        &id,
    )?;
    record.side_effects_done = true;
    put_json(kv, &keys::class(&id), &record)?;
    Ok(record)
}

/// Reads a class.
pub fn get(kv: &impl KeyValue, id: &str) -> Result<Option<ClassRecord>, StoreError> {
    get_json(kv, &keys::class(id), "class")
}

/// Filters of a class listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this district.
    pub district: Option<String>,
    /// Only this institution.
    pub institution: Option<String>,
    /// Only this phase (on the day [`ListFilter::on`]).
    pub status: Option<ClassPhase>,
    /// The day phases are taken on (`training_ended` follows from the calendar).
    pub on: NaiveDate,
}

impl ListFilter {
    fn index_name(&self) -> String {
        match (&self.institution, &self.district) {
            (Some(i), _) => format!("classes:institution:{i}"),
            (None, Some(d)) => format!("classes:district:{d}"),
            (None, None) => "classes:all".to_string(),
        }
    }

    fn matches(&self, r: &ClassRecord) -> bool {
        self.status.is_none_or(|s| s == r.phase_on(self.on))
            && self
                .district
                .as_deref()
                .is_none_or(|d| d == r.application.district.code())
            && self
                .institution
                .as_deref()
                .is_none_or(|i| i == r.application.institution.as_str())
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Classes on this page.
    pub items: Vec<ClassRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<Position>,
}

/// Lists classes matching `filter` from `from`, scanning at most `limit` index entries.
pub fn list(
    kv: &impl KeyValue,
    filter: &ListFilter,
    from: Position,
    limit: usize,
) -> Result<Page, StoreError> {
    let (ids, next) = index::read(kv, &filter.index_name(), from, limit)?;
    if ids.is_empty() {
        return Ok(Page {
            items: vec![],
            next,
        });
    }
    let keys: Vec<String> = ids.iter().map(|i| keys::class(i)).collect();
    let mut items = Vec::new();
    for v in kv.get_many(&keys)?.into_iter().flatten() {
        let r: ClassRecord = decode(&v, "class")?;
        if filter.matches(&r) {
            items.push(r);
        }
    }
    Ok(Page { items, next })
}

/// Why a check was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// No such class.
    #[error("class not found")]
    NotFound,
    /// The rules refused it (CK-ORDER, CK-WINDOW).
    #[error(transparent)]
    Refused(#[from] policy::checks::CheckRefusal),
}

/// Records a check against the class as it is when the write lands, and
/// moves the class on when it passed. `decide` is the policy's decision
/// (`policy::checks::decide_check`) over the current record; it answers the
/// status a passed check leaves the class in, and it may run several times
/// under contention.
///
/// The check is recorded marked [`CheckRecord::unaudited`]; its audit event
/// (and the in-training index entry) follow, then the mark is cleared. A
/// crash in between is repaired by the next call for the class: it writes
/// what every marked check owes first, and a retry of the same check
/// answers the class as recorded instead of refusing it as out of order.
pub fn record_check(
    kv: &impl KeyValue,
    id: &str,
    check: CheckRecord,
    decide: impl Fn(&ClassRecord) -> Result<ClassStatus, policy::checks::CheckRefusal>,
    now: DateTime<Utc>,
) -> Result<ClassRecord, UpdateError<CheckError>> {
    let mut before_digest = None;
    let mut owed: Vec<usize> = Vec::new();
    let mut replay = false;
    let result = update_json::<ClassRecord, CheckError>(kv, &keys::class(id), "class", |cur| {
        let mut r = cur.ok_or(CheckError::NotFound)?;
        owed = (0..r.checks.len())
            .filter(|i| r.checks[*i].unaudited)
            .collect();
        replay = owed.iter().any(|i| r.checks[*i].same_as(&check));
        if replay {
            return Ok(None);
        }
        before_digest = Some(audit::digest_of(&cleared(&r)));
        let on_pass = decide(&r)?;
        let mut new = check.clone();
        new.unaudited = true;
        r.checks.push(new);
        if check.result == CheckResult::Passed {
            r.status = on_pass;
        }
        Ok(Some(r))
    });
    let (record, mine) = match result {
        Ok(Some(r)) if replay => (r, None),
        Ok(Some(r)) => {
            let n = r.checks.len() - 1;
            (r, Some(n))
        }
        Ok(None) => return Err(UpdateError::Refused(CheckError::NotFound)),
        Err(UpdateError::Refused(e)) if !owed.is_empty() => {
            // Refused, but a crashed request's check is owed its event.
            if let Some(r) = get(kv, id)? {
                finish_checks(kv, id, &r, &owed, None, None, now)?;
            }
            return Err(UpdateError::Refused(e));
        }
        Err(e) => return Err(e),
    };
    let mut todo = owed;
    todo.extend(mine);
    Ok(finish_checks(
        kv,
        id,
        &record,
        &todo,
        mine,
        before_digest,
        now,
    )?)
}

/// `r` with every check's mark cleared: the state its events describe.
fn cleared(r: &ClassRecord) -> ClassRecord {
    let mut c = r.clone();
    for ch in &mut c.checks {
        ch.unaudited = false;
    }
    c
}

/// Writes what the checks at `todo` owe (the in-training index entry of a
/// passed pre-opening check, the audit event), then clears their marks.
/// `mine` is the check of this request, whose event carries `before`;
/// the others are repairs of requests that died.
fn finish_checks(
    kv: &impl KeyValue,
    id: &str,
    record: &ClassRecord,
    todo: &[usize],
    mine: Option<usize>,
    before: Option<String>,
    now: DateTime<Utc>,
) -> Result<ClassRecord, StoreError> {
    let after = audit::digest_of(&cleared(record));
    for &i in todo {
        let Some(c) = record.checks.get(i) else {
            continue;
        };
        if c.kind == CheckKind::PreOpening && c.result == CheckResult::Passed {
            index::append(kv, "classes:in_training", id)?;
        }
        let repaired = Some(i) != mine;
        audit::record(
            kv,
            Change {
                actor: c.recorded_by.clone(),
                action: format!("class.check.{}", c.kind.id()),
                entity: format!("class:{id}"),
                before: if repaired { None } else { before.clone() },
                after: Some(after.clone()),
                note: Some(if repaired {
                    format!("{:?}; recorded on retry", c.result).to_lowercase()
                } else {
                    format!("{:?}", c.result).to_lowercase()
                }),
            },
            now,
        )?;
    }
    let done: Vec<usize> = todo.to_vec();
    let updated = update_json::<ClassRecord, std::convert::Infallible>(
        kv,
        &keys::class(id),
        "class",
        |cur| {
            let Some(mut r) = cur else { return Ok(None) };
            let mut changed = false;
            for &i in &done {
                if let Some(c) = r.checks.get_mut(i)
                    && c.unaudited
                {
                    c.unaudited = false;
                    changed = true;
                }
            }
            Ok(changed.then_some(r))
        },
    )
    .map_err(|e| match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(never) => match never {},
    })?;
    Ok(updated.unwrap_or_else(|| cleared(record)))
}
