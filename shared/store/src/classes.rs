//! Classes (开班) in the store: filing, reading, listing, the three checks of
//! 每班必查, and the occupancy records the CO-* rules are decided against.
//!
//! Everything validation needs is read in one `get_many` ([`load_context`]).
//! Filing writes in an order a retry can repair: first the claim of the
//! application's digest (holding the whole record), then the class record, then
//! the idempotent side effects (occupancy, yearly counts, indexes), then a flag
//! that they are done, then the audit event.

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
    Booking, ClassApplication, Context, Enrolment, YearCounts, normalize_site,
};
use policy::decision::{Decision, Outcome};
use policy::reference::Certificate;
use policy::registry::{CatalogueTextbook, Courseware, Institution, Trainer, normalize_isbn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Digest of the application (duplicate filing guard).
    pub digest: String,
    /// When filed.
    pub filed_at: DateTime<Utc>,
    /// Who filed.
    pub filed_by: Actor,
    /// Checks recorded.
    #[serde(default)]
    pub checks: Vec<CheckRecord>,
    /// Whether occupancy, counts and indexes were written.
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
/// values back in exactly this order: institution, year, then per trainer
/// its registry entry and bookings, courseware, textbooks, sites, then per
/// roster line its enrolments and phone uses.
fn context_keys(app: &ClassApplication, hasher: &PiiHasher) -> ContextKeys {
    let mut keys = vec![
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

/// Reads everything the CO-* rules need for `app`, in one `get_many`.
pub fn load_context(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    app: &ClassApplication,
    today: NaiveDate,
) -> Result<Context, StoreError> {
    let ck = context_keys(app, hasher);
    let values = kv.get_many(&ck.keys)?;
    let mut v = Values(values.iter());
    let mut ctx = Context {
        today,
        ..Context::default()
    };
    ctx.institution = v.next::<Institution>("institution")?;
    if let Some(y) = v.next::<YearClasses>("year counts")? {
        ctx.year = YearCounts {
            classes: y.classes.len() as u32,
            completion_classes: y.completion.len() as u32,
        };
    }
    for t in app.trainer_numbers() {
        if let Some(r) = v.next::<Trainer>("trainer")? {
            ctx.trainers.insert(t.to_string(), r);
        }
        if let Some(b) = v.next::<Vec<Booking>>("bookings")? {
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
        if let Some(b) = v.next::<Vec<Booking>>("bookings")? {
            ctx.site_bookings.insert(s, b);
        }
    }
    for (i, RosterRef { person, .. }) in ck.refs.iter().enumerate() {
        if let Some(e) = v.next::<Vec<Enrolment>>("enrolments")? {
            ctx.enrolments.insert(i, e);
        }
        if let Some(uses) = v.next::<Vec<PhoneUse>>("phone uses")? {
            let others: BTreeSet<&str> = uses
                .iter()
                .filter(|u| u.person != *person && u.end_date >= app.start_date)
                .map(|u| u.person.as_str())
                .collect();
            if !others.is_empty() {
                ctx.phone_users_elsewhere.insert(i, others.len() as u32);
            }
        }
    }
    Ok(ctx)
}

/// The canonical digest of an application: same content, same digest.
pub fn application_digest(app: &ClassApplication) -> String {
    sha256_hex(encode(app))
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

/// Files a decided application. The same application content from the same
/// institution files once: a second filing, concurrent or later, returns the first class.
pub fn file(
    kv: &impl KeyValue,
    hasher: &PiiHasher,
    app: ClassApplication,
    decision: Decision,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Filed, StoreError> {
    let digest = application_digest(&app);
    let claim_key = keys::class_claim(app.institution.as_str(), &digest);
    if let Some(existing) = get_json::<Claim>(kv, &claim_key, "class claim")? {
        return finish_existing(kv, existing.record);
    }
    let year = app.start_date.year();
    let seq = kv.increment(&keys::class_seq(year), 1)?;
    let id = format!("KM-{year}-{seq:06}");
    let status = if decision.outcome == Outcome::Approved {
        ClassStatus::Approved
    } else {
        ClassStatus::Rejected
    };
    let roster_refs = app
        .roster
        .iter()
        .map(|t| RosterRef::of(hasher, t))
        .collect();
    let record = ClassRecord {
        id: id.clone(),
        status,
        application: app,
        roster_refs,
        decision,
        digest,
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
        return finish_existing(kv, existing.record);
    }
    put_json(kv, &keys::class(&id), &record)?;
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

fn finish_existing(kv: &impl KeyValue, claimed: ClassRecord) -> Result<Filed, StoreError> {
    let record = match get_json::<ClassRecord>(kv, &keys::class(&claimed.id), "class")? {
        Some(r) => r,
        None => {
            // The first filing stopped after its claim: finish its work.
            put_json(kv, &keys::class(&claimed.id), &claimed)?;
            claimed
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

fn push_unique<T: Clone + PartialEq + Serialize + serde::de::DeserializeOwned>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
    items: &[T],
    keep: impl Fn(&T) -> bool,
) -> Result<(), StoreError> {
    update_json::<Vec<T>, std::convert::Infallible>(kv, key, what, |cur| {
        let mut list: Vec<T> = cur
            .unwrap_or_default()
            .into_iter()
            .filter(|x| keep(x))
            .collect();
        let before = list.len();
        for i in items {
            if !list.contains(i) {
                list.push(i.clone());
            }
        }
        Ok((list.len() != before || before == 0).then_some(list))
    })
    .map_err(|e| match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(never) => match never {},
    })?;
    Ok(())
}

/// Writes occupancy, yearly counts and index entries for a class, then marks them done. Idempotent.
fn complete_side_effects(
    kv: &impl KeyValue,
    mut record: ClassRecord,
) -> Result<ClassRecord, StoreError> {
    let app = &record.application;
    let id = record.id.clone();
    if record.status != ClassStatus::Rejected {
        let today = record.filed_at.date_naive();
        let mut by_trainer: BTreeMap<&str, Vec<Booking>> = BTreeMap::new();
        let mut by_site: BTreeMap<String, Vec<Booking>> = BTreeMap::new();
        for s in &app.sessions {
            let b = Booking {
                class_id: id.clone(),
                date: s.date,
                start: s.start,
                end: s.end,
            };
            by_trainer
                .entry(s.trainer.as_str())
                .or_default()
                .push(b.clone());
            if let Some(site) = &s.site {
                by_site.entry(site.clone()).or_default().push(b);
            }
        }
        for (t, bookings) in by_trainer {
            push_unique(
                kv,
                &keys::trainer_bookings(t),
                "bookings",
                &bookings,
                |b: &Booking| b.date >= today,
            )?;
        }
        for (site, bookings) in by_site {
            push_unique(
                kv,
                &site_key(&site),
                "bookings",
                &bookings,
                |b: &Booking| b.date >= today,
            )?;
        }
        let enrolment = Enrolment {
            class_id: id.clone(),
            start_date: app.start_date,
            end_date: app.end_date,
        };
        for r in &record.roster_refs {
            push_unique(
                kv,
                &keys::person_enrolments(&r.person),
                "enrolments",
                std::slice::from_ref(&enrolment),
                |e: &Enrolment| e.end_date >= today,
            )?;
            let usage = PhoneUse {
                class_id: id.clone(),
                person: r.person.clone(),
                end_date: app.end_date,
            };
            push_unique(
                kv,
                &keys::phone_users(&r.phone),
                "phone uses",
                &[usage],
                |u: &PhoneUse| u.end_date >= today,
            )?;
        }
        let completion = app.certificate == Certificate::TrainingCompletion;
        update_json::<YearClasses, std::convert::Infallible>(
            kv,
            &keys::institution_year(app.institution.as_str(), app.start_date.year()),
            "year counts",
            |cur| {
                let mut y = cur.unwrap_or_default();
                let fresh = y.classes.insert(id.clone());
                if completion {
                    y.completion.insert(id.clone());
                }
                Ok(fresh.then_some(y))
            },
        )
        .map_err(|e| match e {
            UpdateError::Store(s) => s,
            UpdateError::Refused(never) => match never {},
        })?;
    }
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
pub fn record_check(
    kv: &impl KeyValue,
    id: &str,
    check: CheckRecord,
    decide: impl Fn(&ClassRecord) -> Result<ClassStatus, policy::checks::CheckRefusal>,
    now: DateTime<Utc>,
) -> Result<ClassRecord, UpdateError<CheckError>> {
    let mut before_digest = None;
    let kind = check.kind;
    let actor = check.recorded_by.clone();
    let result = check.result;
    let updated = update_json::<ClassRecord, CheckError>(kv, &keys::class(id), "class", |cur| {
        let mut r = cur.ok_or(CheckError::NotFound)?;
        before_digest = Some(audit::digest_of(&r));
        let on_pass = decide(&r)?;
        r.checks.push(check.clone());
        if check.result == CheckResult::Passed {
            r.status = on_pass;
        }
        Ok(Some(r))
    })?
    .ok_or(UpdateError::Refused(CheckError::NotFound))?;
    if kind == CheckKind::PreOpening && updated.status == ClassStatus::InTraining {
        index::append(kv, "classes:in_training", id)?;
    }
    audit::record(
        kv,
        Change {
            actor,
            action: format!("class.check.{}", kind.id()),
            entity: format!("class:{id}"),
            before: before_digest,
            after: Some(audit::digest_of(&updated)),
            note: Some(format!("{result:?}").to_lowercase()),
        },
        now,
    )?;
    Ok(updated)
}
