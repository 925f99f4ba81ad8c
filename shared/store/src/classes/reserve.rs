//! Reserve, then decide: the occupancy records of a filing (CO-CLASH,
//! CO-ROSTER, CO-SHARED-PHONE, CO-ENTRY) are written before the decision, so
//! that filings made at the same moment see each other.
//!
//! A filing whose first reading of the store approves it adds its entries to
//! each record it needs with compare-and-swap, and decides again on what each
//! record held besides its own entries at the moment its entries went in:
//!
//! 1. The blocking records (trainers, sites, trainees) go first, in the order
//!    of their keys. A record that already holds a clashing entry (pending or
//!    confirmed: policy's [`policy::class_opening::clashes`]) is not written,
//!    and the filing stops there. Of two clashing filings, the one that writes
//!    their first shared record first holds it, and the other stops at it:
//!    exactly one of them holds everything it needs.
//! 2. Then the counting records (each mobile's users, the institution's
//!    year), which never refuse: of concurrent filings, each counts those
//!    written before it, as if they had been filed one after the other.
//! 3. The rules decide on what was read. A rejected filing removes every entry
//!    it added before it answers, so a rejection leaves nothing behind.
//!
//! Every entry carries its class id, and writing an entry that is there
//! already changes nothing: a retry that finds the claim of a filing that died
//! halfway runs these steps again under the same class id and ends where the
//! first run would have.

use super::{ClassRecord, PhoneUse, Rules, YearClasses, phone_users_elsewhere, site_key};
use crate::keys;
use crate::kv::KeyValue;
use crate::records::{StoreError, UpdateError, update_json};
use chrono::{Datelike, NaiveDate};
use policy::class_opening::{Booking, ClassApplication, Context, Enrolment, Held, YearCounts};
use policy::data::Policy;
use policy::decision::{Decision, Outcome};
use policy::reference::Certificate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// An entry of an occupancy list, owned by one class.
trait Owned: Clone + PartialEq + Serialize + DeserializeOwned {
    fn class_id(&self) -> &str;
    /// Whether the entry still matters on `today` (older ones are dropped when the list is written).
    fn live(&self, today: NaiveDate) -> bool;
}

impl Owned for Booking {
    fn class_id(&self) -> &str {
        &self.class_id
    }
    fn live(&self, today: NaiveDate) -> bool {
        self.date >= today
    }
}

impl Owned for Enrolment {
    fn class_id(&self) -> &str {
        &self.class_id
    }
    fn live(&self, today: NaiveDate) -> bool {
        self.end_date >= today
    }
}

impl Owned for PhoneUse {
    fn class_id(&self) -> &str {
        &self.class_id
    }
    fn live(&self, today: NaiveDate) -> bool {
        self.end_date >= today
    }
}

/// A blocking record and what the filing puts in it.
enum Blocking {
    /// A trainer's bookings.
    Trainer(String, Vec<Booking>),
    /// A site's bookings (normalised site).
    Site(String, Vec<Booking>),
    /// A trainee's enrolments, with the roster lines of that trainee.
    Person(Vec<usize>),
}

/// Adds `mine` to the list under `key` unless `clash` is true of the other
/// classes' entries there. Returns those entries and whether they clashed
/// (then nothing was written).
fn reserve_list<T: Owned>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
    mine: &[T],
    own: &str,
    today: NaiveDate,
    clash: impl Fn(&[T]) -> bool,
) -> Result<(Vec<T>, bool), StoreError> {
    let mut others = Vec::new();
    let result = update_json::<Vec<T>, ()>(kv, key, what, |cur| {
        let cur = cur.unwrap_or_default();
        let stored = cur.len();
        let mut list: Vec<T> = cur.into_iter().filter(|x| x.live(today)).collect();
        let pruned = list.len() != stored;
        others = list
            .iter()
            .filter(|x| x.class_id() != own)
            .cloned()
            .collect();
        if clash(&others) {
            return Err(());
        }
        let before = list.len();
        for m in mine {
            if !list.contains(m) {
                list.push(m.clone());
            }
        }
        Ok((list.len() != before || pruned).then_some(list))
    });
    match result {
        Ok(_) => Ok((others, false)),
        Err(UpdateError::Refused(())) => Ok((others, true)),
        Err(UpdateError::Store(e)) => Err(e),
    }
}

/// Removes the entries of class `own` from the list under `key`.
fn release_list<T: Owned>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
    own: &str,
) -> Result<(), StoreError> {
    update_json::<Vec<T>, std::convert::Infallible>(kv, key, what, |cur| {
        let Some(list) = cur else { return Ok(None) };
        let stored = list.len();
        let kept: Vec<T> = list.into_iter().filter(|x| x.class_id() != own).collect();
        Ok((kept.len() != stored).then_some(kept))
    })
    .map_err(infallible)?;
    Ok(())
}

fn infallible(e: UpdateError<std::convert::Infallible>) -> StoreError {
    match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(never) => match never {},
    }
}

/// What a filing writes, record by record.
struct Plan {
    /// Blocking records, in the order of their keys.
    blocking: Vec<(String, Blocking)>,
    /// Phone records with the roster lines using each.
    phones: BTreeMap<String, Vec<usize>>,
}

fn plan(record: &ClassRecord) -> Plan {
    let app = &record.application;
    let mut blocking: BTreeMap<String, Blocking> = BTreeMap::new();
    for s in &app.sessions {
        let b = Booking {
            class_id: record.id.clone(),
            date: s.date,
            start: s.start,
            end: s.end,
        };
        match blocking
            .entry(keys::trainer_bookings(&s.trainer))
            .or_insert_with(|| Blocking::Trainer(s.trainer.clone(), Vec::new()))
        {
            Blocking::Trainer(_, list) => list.push(b.clone()),
            _ => unreachable!("trainer keys hold trainers"),
        }
        if let Some(site) = &s.site {
            let site = policy::class_opening::normalize_site(site);
            match blocking
                .entry(site_key(&site))
                .or_insert_with(|| Blocking::Site(site.clone(), Vec::new()))
            {
                Blocking::Site(_, list) => list.push(b),
                _ => unreachable!("site keys hold sites"),
            }
        }
    }
    let mut phones: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in record.roster_refs.iter().enumerate() {
        match blocking
            .entry(keys::person_enrolments(&r.person))
            .or_insert_with(|| Blocking::Person(Vec::new()))
        {
            Blocking::Person(lines) => lines.push(i),
            _ => unreachable!("person keys hold people"),
        }
        phones
            .entry(keys::phone_users(&r.phone))
            .or_default()
            .push(i);
    }
    Plan {
        blocking: blocking.into_iter().collect(),
        phones,
    }
}

/// Reserves what `record` (provisionally approved) needs, decides on what the
/// store held besides it, and releases everything again when the decision is
/// a rejection. `ctx` is the context read before, without `record`'s own entries.
pub(super) fn reserve_and_decide<D, C>(
    kv: &impl KeyValue,
    rules: &Rules<D, C>,
    record: &ClassRecord,
    mut ctx: Context,
    policy: &Policy,
) -> Result<Decision, StoreError>
where
    D: Fn(&ClassApplication, &Context, &Policy) -> Decision,
    C: Fn(&ClassApplication, Held<'_>) -> bool,
{
    let app = &record.application;
    let own = record.id.as_str();
    let today = ctx.today;
    let plan = plan(record);
    let mut written = 0;
    let mut stopped = false;
    for (key, slot) in &plan.blocking {
        let clashed = match slot {
            Blocking::Trainer(t, mine) => {
                let (others, clashed) = reserve_list(kv, key, "bookings", mine, own, today, |o| {
                    (rules.clashes)(app, Held::Trainer(t, o))
                })?;
                ctx.trainer_bookings.insert(t.clone(), others);
                clashed
            }
            Blocking::Site(site, mine) => {
                let (others, clashed) = reserve_list(kv, key, "bookings", mine, own, today, |o| {
                    (rules.clashes)(app, Held::Site(site, o))
                })?;
                ctx.site_bookings.insert(site.clone(), others);
                clashed
            }
            Blocking::Person(lines) => {
                let mine = [Enrolment {
                    class_id: own.to_string(),
                    start_date: app.start_date,
                    end_date: app.end_date,
                }];
                let (others, clashed) =
                    reserve_list(kv, key, "enrolments", &mine, own, today, |o| {
                        (rules.clashes)(app, Held::Enrolments(o))
                    })?;
                for &i in lines {
                    ctx.enrolments.insert(i, others.clone());
                }
                clashed
            }
        };
        if clashed {
            stopped = true;
            break;
        }
        written += 1;
    }
    let year_key = keys::institution_year(app.institution.as_str(), app.start_date.year());
    if !stopped {
        for (key, lines) in &plan.phones {
            let mine: Vec<PhoneUse> = lines
                .iter()
                .map(|&i| PhoneUse {
                    class_id: own.to_string(),
                    person: record.roster_refs[i].person.clone(),
                    end_date: app.end_date,
                })
                .collect();
            let (others, _) = reserve_list(kv, key, "phone uses", &mine, own, today, |_| false)?;
            for &i in lines {
                let n = phone_users_elsewhere(&others, &record.roster_refs[i].person, app);
                if n > 0 {
                    ctx.phone_users_elsewhere.insert(i, n);
                } else {
                    ctx.phone_users_elsewhere.remove(&i);
                }
            }
        }
        let completion = app.certificate == Certificate::TrainingCompletion;
        let mut seen = YearCounts::default();
        update_json::<YearClasses, std::convert::Infallible>(kv, &year_key, "year counts", |cur| {
            let mut y = cur.unwrap_or_default();
            seen = YearCounts {
                classes: y.classes.iter().filter(|c| *c != own).count() as u32,
                completion_classes: y.completion.iter().filter(|c| *c != own).count() as u32,
            };
            let fresh = y.classes.insert(own.to_string());
            let fresh_completion = completion && y.completion.insert(own.to_string());
            Ok((fresh || fresh_completion).then_some(y))
        })
        .map_err(infallible)?;
        ctx.year = seen;
    }
    let decision = (rules.decide)(app, &ctx, policy);
    let approved = decision.outcome == Outcome::Approved;
    if approved && !stopped {
        return Ok(decision);
    }
    for (key, slot) in plan.blocking.iter().take(written) {
        match slot {
            Blocking::Trainer(..) | Blocking::Site(..) => {
                release_list::<Booking>(kv, key, "bookings", own)?
            }
            Blocking::Person(_) => release_list::<Enrolment>(kv, key, "enrolments", own)?,
        }
    }
    if !stopped {
        for key in plan.phones.keys() {
            release_list::<PhoneUse>(kv, key, "phone uses", own)?;
        }
        update_json::<YearClasses, std::convert::Infallible>(kv, &year_key, "year counts", |cur| {
            let Some(mut y) = cur else { return Ok(None) };
            let removed = y.classes.remove(own);
            let removed_completion = y.completion.remove(own);
            Ok((removed || removed_completion).then_some(y))
        })
        .map_err(infallible)?;
    }
    if approved {
        // The rules approved what a record they call clashing holds: never
        // approve without the reservations; the caller may retry.
        return Err(StoreError::Contention);
    }
    Ok(decision)
}
