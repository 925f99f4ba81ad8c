//! 开班审批: the class-opening application and the CO-* rules that decide it.
//!
//! [`ClassApplication`] is what an institution files. Its identifiers are
//! parsed types, so an application that deserialises holds valid ID numbers,
//! mobiles and codes; [`ClassApplication::check_shape`] then refuses what is
//! inconsistent in itself (a session outside the class dates, a trainer not
//! listed). [`evaluate`] applies every CO-* rule against a [`Context`] that the
//! caller has read from the registries and from the classes already open, and
//! returns a [`Decision`] that lists every rule checked.

use crate::catalogue::Catalogue;
use crate::data::Policy;
use crate::decision::{Decision, Finding, Severity};
use crate::ids::{AreaCode, CreditCode, IdNumber, Mobile, OccupationCode, SkillLevel, isbn_ok};
use crate::params::{Parameters, names};
use crate::reference::{Certificate, Programme, TargetGroup, Topic, TrainingKind};
use crate::registry::{
    CatalogueTextbook, Courseware, CoursewareStatus, Institution, InstitutionStatus, Trainer,
    TrainerStatus, normalize_isbn, registry_id_ok,
};
use chrono::{Datelike, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The rules of this module with their severity and source (POLICY.md).
pub mod rules {
    #![allow(missing_docs)]
    use crate::decision::{Rule, Severity::*};
    pub const CO_HOURS: Rule = Rule {
        id: "CO-HOURS",
        severity: Block,
        source: "plan 二(五)",
    };
    pub const CO_ONLINE: Rule = Rule {
        id: "CO-ONLINE",
        severity: Block,
        source: "plan 二(四), 二(七)",
    };
    pub const CO_SIZE: Rule = Rule {
        id: "CO-SIZE",
        severity: Block,
        source: "plan 二(五)",
    };
    pub const CO_DAY: Rule = Rule {
        id: "CO-DAY",
        severity: Warn,
        source: "plan 二(五)",
    };
    pub const CO_EQUIP: Rule = Rule {
        id: "CO-EQUIP",
        severity: Block,
        source: "plan 二(五)",
    };
    pub const CO_TRAINER: Rule = Rule {
        id: "CO-TRAINER",
        severity: Block,
        source: "plan 二(六)",
    };
    pub const CO_TEXTBOOK: Rule = Rule {
        id: "CO-TEXTBOOK",
        severity: Warn,
        source: "plan 四.5",
    };
    pub const CO_ASSESS: Rule = Rule {
        id: "CO-ASSESS",
        severity: Block,
        source: "plan 四.4",
    };
    pub const CO_INST: Rule = Rule {
        id: "CO-INST",
        severity: Block,
        source: "plan 二(一)1, 四.3",
    };
    pub const CO_TOPICS: Rule = Rule {
        id: "CO-TOPICS",
        severity: Warn,
        source: "plan 二(五)",
    };
    pub const CO_RELEVANT: Rule = Rule {
        id: "CO-RELEVANT",
        severity: Warn,
        source: "plan 四.1",
    };
    pub const CO_ENTRY: Rule = Rule {
        id: "CO-ENTRY",
        severity: Warn,
        source: "plan 四.1, [open]",
    };
    pub const CO_LEAD: Rule = Rule {
        id: "CO-LEAD",
        severity: Block,
        source: "[other]",
    };
    pub const CO_INFORCE: Rule = Rule {
        id: "CO-INFORCE",
        severity: Block,
        source: "[other]",
    };
    pub const CO_CALENDAR: Rule = Rule {
        id: "CO-CALENDAR",
        severity: Warn,
        source: "[other]",
    };
    pub const CO_KIND: Rule = Rule {
        id: "CO-KIND",
        severity: Block,
        source: "plan 二(三)3, 二(三)7, 二(五)",
    };
    pub const CO_ROSTER: Rule = Rule {
        id: "CO-ROSTER",
        severity: Block,
        source: "plan 四.2, [other]",
    };
    pub const CO_APPRENTICE: Rule = Rule {
        id: "CO-APPRENTICE",
        severity: Warn,
        source: "plan 二(三)7",
    };
    pub const CO_CLASH: Rule = Rule {
        id: "CO-CLASH",
        severity: Block,
        source: "fraud pattern: classes on paper only",
    };
    pub const CO_SHARED_PHONE: Rule = Rule {
        id: "CO-SHARED-PHONE",
        severity: Warn,
        source: "fraud pattern: ghost trainees",
    };
    pub const CO_ORDER: Rule = Rule {
        id: "CO-ORDER",
        severity: Warn,
        source: "Yunnan online-training measures",
    };
    pub const REF_USCC: Rule = Rule {
        id: "REF-USCC",
        severity: Warn,
        source: "GB 32100-2015",
    };
    pub const REF_OCC: Rule = Rule {
        id: "REF-OCC",
        severity: Block,
        source: "plan 四.1",
    };

    /// Every rule [`super::evaluate`] checks.
    pub const ALL: &[Rule] = &[
        CO_INFORCE,
        CO_HOURS,
        CO_ONLINE,
        CO_SIZE,
        CO_DAY,
        CO_EQUIP,
        CO_TRAINER,
        CO_TEXTBOOK,
        CO_ASSESS,
        CO_INST,
        CO_TOPICS,
        CO_RELEVANT,
        CO_ENTRY,
        CO_LEAD,
        CO_CALENDAR,
        CO_KIND,
        CO_ROSTER,
        CO_APPRENTICE,
        CO_CLASH,
        CO_SHARED_PHONE,
        CO_ORDER,
        REF_USCC,
        REF_OCC,
    ];
}
use rules::*;

/// Online or on site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Online theory on the provincial platform.
    Online,
    /// On-site practical or theory.
    Offline,
}

/// One session of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Local date.
    pub date: NaiveDate,
    /// Local start time, `08:30`.
    pub start: NaiveTime,
    /// Local end time.
    pub end: NaiveTime,
    /// Class hours (课时) the session counts for.
    pub class_hours: u32,
    /// Online or offline.
    pub mode: Mode,
    /// Topics covered.
    pub topics: Vec<Topic>,
    /// Registration number of the trainer (one of `trainers`).
    pub trainer: String,
    /// Courseware id for an online session.
    #[serde(default)]
    pub courseware: Option<String>,
    /// Room or site address for an offline session.
    #[serde(default)]
    pub site: Option<String>,
}

/// A trainer named on the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerRef {
    /// Platform registration number.
    pub registration_no: String,
    /// Name.
    pub name: String,
}

/// A textbook named on the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Textbook {
    /// Title.
    pub title: String,
    /// ISBN, when the book has one.
    #[serde(default)]
    pub isbn: Option<String>,
}

/// Declared teaching equipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipmentItem {
    /// Item name, as in the occupation catalogue.
    pub item: String,
    /// Units available to the class.
    pub quantity: u32,
}

/// The enterprise whose staff are trained (enterprise-employee training).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enterprise {
    /// Its credit code.
    pub credit_code: CreditCode,
    /// Name.
    pub name: String,
    /// GB/T 4754 section letter of its main business (`A`–`T`).
    pub industry: String,
}

/// One trainee on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trainee {
    /// Name.
    pub name: String,
    /// Resident ID number (REF-ID).
    pub id_number: IdNumber,
    /// Mobile number (REF-PHONE).
    pub mobile: Mobile,
    /// Target group (REF-GROUP).
    pub group: TargetGroup,
}

/// A class-opening application (开班申请).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassApplication {
    /// The training institution's credit code.
    pub institution: CreditCode,
    /// District (or functional zone) whose office approves the class.
    pub district: AreaCode,
    /// Title of the class.
    pub title: String,
    /// Programme (REF-PROGRAM).
    pub programme: Programme,
    /// Kind of training as declared: CO-KIND holds it against the kind that
    /// follows from the occupation or project and the programme.
    pub kind: TrainingKind,
    /// Certificate the class leads to.
    pub certificate: Certificate,
    /// Occupation (REF-OCC); absent for a project class.
    #[serde(default)]
    pub occupation: Option<OccupationCode>,
    /// Training project of the catalogue instead of an occupation (SYB
    /// 创业培训 `syb`, 网络创业培训 `online_business`).
    #[serde(default)]
    pub project: Option<String>,
    /// Level trained (required for qualification and skill-level classes).
    #[serde(default)]
    pub level: Option<SkillLevel>,
    /// First class day.
    pub start_date: NaiveDate,
    /// Last class day.
    pub end_date: NaiveDate,
    /// Schedule.
    pub sessions: Vec<Session>,
    /// Trainers.
    pub trainers: Vec<TrainerRef>,
    /// Textbooks.
    #[serde(default)]
    pub textbooks: Vec<Textbook>,
    /// Teaching equipment.
    #[serde(default)]
    pub equipment: Vec<EquipmentItem>,
    /// The assessing body (考核/评价机构).
    pub assessment_body: CreditCode,
    /// The enterprise, for enterprise-employee training.
    #[serde(default)]
    pub enterprise: Option<Enterprise>,
    /// Trainees.
    pub roster: Vec<Trainee>,
}

/// A field of an application that is inconsistent in itself (answered with 422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeError {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong, in English.
    pub detail: String,
}

fn shape(field: impl Into<String>, detail: impl Into<String>) -> ShapeError {
    ShapeError {
        field: field.into(),
        detail: detail.into(),
    }
}

/// Whether `id` has the form of a project id: 1 to 32 `a-z`, `0-9` or `_`.
pub fn project_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What a class trains, as the catalogue describes it: the needs the CO-*
/// rules check, from an occupation or a project.
struct Trains<'a> {
    equipment: &'a [crate::catalogue::EquipmentNeed],
    assessment_bodies: &'a [CreditCode],
    /// GB/T 4754 sections served; empty: every section (a project).
    industries: &'a [String],
    project: Option<&'a crate::catalogue::Project>,
}

fn trains<'a>(app: &ClassApplication, cat: &'a Catalogue) -> Option<Trains<'a>> {
    match (&app.occupation, &app.project) {
        (Some(code), _) => cat.occupation(code).map(|o| Trains {
            equipment: &o.equipment,
            assessment_bodies: &o.assessment_bodies,
            industries: &o.industries,
            project: None,
        }),
        (None, Some(id)) => cat.project(id).map(|p| Trains {
            equipment: &p.equipment,
            assessment_bodies: &p.assessment_bodies,
            industries: &p.industries,
            project: Some(p),
        }),
        (None, None) => None,
    }
}

/// Most sessions an application may list.
pub const MAX_SESSIONS: usize = 2_000;
/// Most roster lines an application may list (CO-SIZE decides the real limit).
pub const MAX_ROSTER: usize = 500;

impl ClassApplication {
    /// Checks that the application is consistent in itself; every problem is listed.
    pub fn check_shape(&self) -> Result<(), Vec<ShapeError>> {
        let mut errs = Vec::new();
        if !crate::text::filled(&self.title, 200) {
            errs.push(shape("title", "must be 1 to 200 characters, not all blank"));
        }
        if self.end_date < self.start_date {
            errs.push(shape("end_date", "must not be before start_date"));
        }
        if (self.end_date - self.start_date).num_days() > 3 * 366 {
            errs.push(shape("end_date", "a class lasts at most three years"));
        }
        match (&self.occupation, &self.project) {
            (None, None) => errs.push(shape(
                "occupation",
                "give the occupation, or the project of an SYB or 网络创业 class",
            )),
            (Some(_), Some(_)) => errs.push(shape(
                "project",
                "give the occupation or the project, not both",
            )),
            (None, Some(p)) if !project_id_ok(p) => {
                errs.push(shape("project", "1 to 32 characters a-z, 0-9 or _"))
            }
            _ => {}
        }
        if matches!(
            self.certificate,
            Certificate::VocationalQualification | Certificate::SkillLevel
        ) && self.level.is_none()
        {
            errs.push(shape(
                "level",
                "required for a qualification or skill-level class",
            ));
        }
        if self.sessions.is_empty() {
            errs.push(shape("sessions", "at least one session is required"));
        }
        if self.sessions.len() > MAX_SESSIONS {
            errs.push(shape(
                "sessions",
                format!("at most {MAX_SESSIONS} sessions"),
            ));
        }
        if self.roster.is_empty() {
            errs.push(shape("roster", "at least one trainee is required"));
        }
        if self.roster.len() > MAX_ROSTER {
            errs.push(shape("roster", format!("at most {MAX_ROSTER} lines")));
        }
        if self.trainers.is_empty() {
            errs.push(shape("trainers", "at least one trainer is required"));
        }
        let trainer_nos: BTreeSet<&str> = self
            .trainers
            .iter()
            .map(|t| t.registration_no.as_str())
            .collect();
        for (i, t) in self.trainers.iter().enumerate() {
            if !registry_id_ok(&t.registration_no) {
                errs.push(shape(
                    format!("trainers[{i}].registration_no"),
                    "1 to 64 letters, digits, - or _",
                ));
            }
            if !crate::text::filled(&t.name, 50) {
                errs.push(shape(
                    format!("trainers[{i}].name"),
                    "must be 1 to 50 characters, not all blank",
                ));
            }
        }
        for (i, s) in self.sessions.iter().enumerate() {
            let at = |f: &str| format!("sessions[{i}].{f}");
            if s.date < self.start_date || s.date > self.end_date {
                errs.push(shape(
                    at("date"),
                    "must lie between start_date and end_date",
                ));
            }
            if s.end <= s.start {
                errs.push(shape(at("end"), "must be after start"));
            }
            let minutes = (s.end - s.start).num_minutes().max(0);
            if s.class_hours == 0 || i64::from(s.class_hours) * 40 > minutes {
                errs.push(shape(
                    at("class_hours"),
                    "must be at least 1 and fit the session (a class hour is at least 40 minutes)",
                ));
            }
            if !trainer_nos.contains(s.trainer.as_str()) {
                errs.push(shape(
                    at("trainer"),
                    "must be the registration_no of a listed trainer",
                ));
            }
            if s.mode == Mode::Online && s.courseware.is_none() {
                errs.push(shape(
                    at("courseware"),
                    "an online session names its courseware",
                ));
            }
            if let Some(c) = &s.courseware
                && !registry_id_ok(c)
            {
                errs.push(shape(at("courseware"), "1 to 64 letters, digits, - or _"));
            }
            if s.topics.is_empty() {
                errs.push(shape(at("topics"), "at least one topic"));
            }
        }
        for (i, t) in self.roster.iter().enumerate() {
            if !crate::text::filled(&t.name, 50) {
                errs.push(shape(
                    format!("roster[{i}].name"),
                    "must be 1 to 50 characters, not all blank",
                ));
            }
        }
        if let Some(e) = &self.enterprise {
            let ok = e.industry.len() == 1
                && e.industry.as_bytes()[0].is_ascii_uppercase()
                && e.industry.as_str() <= "T";
            if !ok {
                errs.push(shape(
                    "enterprise.industry",
                    "a GB/T 4754 section letter A to T",
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// What the class trains, as decisions and keys name it: the occupation
    /// code, or `project:<id>`.
    pub fn subject_label(&self) -> String {
        match (&self.occupation, &self.project) {
            (Some(o), _) => o.to_string(),
            (None, Some(p)) => format!("project:{p}"),
            (None, None) => "none".into(),
        }
    }

    /// Total class hours scheduled.
    pub fn scheduled_hours(&self) -> u32 {
        self.sessions.iter().map(|s| s.class_hours).sum()
    }

    /// Registration numbers of the trainers.
    pub fn trainer_numbers(&self) -> Vec<&str> {
        self.trainers
            .iter()
            .map(|t| t.registration_no.as_str())
            .collect()
    }

    /// Courseware ids used by online sessions, without repeats.
    pub fn courseware_ids(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .sessions
            .iter()
            .filter_map(|s| s.courseware.as_deref())
            .collect();
        set.into_iter().collect()
    }

    /// Sites used, normalised, without repeats.
    pub fn sites(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .sessions
            .iter()
            .filter_map(|s| s.site.as_deref())
            .map(normalize_site)
            .collect();
        set.into_iter().collect()
    }
}

/// Normalises a site address for clash detection: whitespace removed, letters
/// lower-cased (Unicode lower case; ASCII letters take the short way).
pub fn normalize_site(site: &str) -> String {
    let mut out = String::with_capacity(site.len());
    for c in site.chars().filter(|c| !c.is_whitespace()) {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A session of another class that holds a trainer or a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// The other class.
    pub class_id: String,
    /// Date.
    pub date: NaiveDate,
    /// Start.
    pub start: NaiveTime,
    /// End.
    pub end: NaiveTime,
}

impl Booking {
    fn overlaps(&self, s: &Session) -> bool {
        self.date == s.date && self.start < s.end && s.start < self.end
    }
}

impl Enrolment {
    /// Whether this other class's days overlap the application's (CO-ROSTER).
    fn overlaps(&self, app: &ClassApplication) -> bool {
        self.start_date <= app.end_date && app.start_date <= self.end_date
    }
}

/// What one occupancy record holds for other classes, as the store meets it
/// while it reserves the record for a filing (decide after reserving).
#[derive(Debug, Clone, Copy)]
pub enum Held<'a> {
    /// Sessions of other classes that hold a trainer (registration number).
    Trainer(&'a str, &'a [Booking]),
    /// Sessions of other classes that hold a site (normalised with [`normalize_site`]).
    Site(&'a str, &'a [Booking]),
    /// Other classes of one trainee.
    Enrolments(&'a [Enrolment]),
}

/// Whether what one record holds blocks the application: true exactly when
/// [`evaluate`], given those entries in its context, fails CO-CLASH (a
/// trainer or site booked at an overlapping time) or CO-ROSTER (a trainee in
/// another class on overlapping days). The store stops reserving at the first
/// record this is true of, so that of concurrent filings that clash exactly
/// one holds every record it needs.
pub fn clashes(app: &ClassApplication, held: Held<'_>) -> bool {
    match held {
        Held::Trainer(trainer, bookings) => app
            .sessions
            .iter()
            .filter(|s| s.trainer == trainer)
            .any(|s| bookings.iter().any(|b| b.overlaps(s))),
        Held::Site(site, bookings) => app
            .sessions
            .iter()
            .filter(|s| s.site.as_deref().is_some_and(|x| normalize_site(x) == site))
            .any(|s| bookings.iter().any(|b| b.overlaps(s))),
        Held::Enrolments(enrolments) => enrolments.iter().any(|e| e.overlaps(app)),
    }
}

/// Another class a trainee is enrolled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    /// The other class.
    pub class_id: String,
    /// Its first day.
    pub start_date: NaiveDate,
    /// Its last day.
    pub end_date: NaiveDate,
}

/// What an institution filed this year, for CO-ENTRY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearCounts {
    /// Approved classes this calendar year.
    pub classes: u32,
    /// Of which lead only to a 培训合格证书.
    pub completion_classes: u32,
}

/// Everything the rules need besides the application, read by the caller.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Filing date (CST).
    pub today: NaiveDate,
    /// The institution's registry entry, if on file.
    pub institution: Option<Institution>,
    /// Registry entries of the trainers named, by registration number (absent = not registered).
    pub trainers: BTreeMap<String, Trainer>,
    /// Registry entries of the courseware named, by id.
    pub courseware: BTreeMap<String, Courseware>,
    /// The planned-textbook catalogue entries matching the application's books.
    pub textbooks: Vec<CatalogueTextbook>,
    /// Other classes' sessions, per trainer registration number.
    pub trainer_bookings: BTreeMap<String, Vec<Booking>>,
    /// Other classes' sessions, per normalised site.
    pub site_bookings: BTreeMap<String, Vec<Booking>>,
    /// Other live classes of each roster line's trainee, by roster index.
    pub enrolments: BTreeMap<usize, Vec<Enrolment>>,
    /// Trainees of classes in training using each roster line's mobile, by roster index.
    pub phone_users_elsewhere: BTreeMap<usize, u32>,
    /// The institution's classes this year.
    pub year: YearCounts,
}

/// Applies every CO-* rule (and REF-USCC, REF-OCC) to an application.
///
/// Parameters are taken at the class's first day; lead time is counted from
/// `ctx.today`. The decision names the policy version it read.
pub fn evaluate(app: &ClassApplication, ctx: &Context, policy: &Policy) -> Decision {
    evaluate_data(app, ctx, policy).under(&policy.reference)
}

fn evaluate_data(app: &ClassApplication, ctx: &Context, policy: &Policy) -> Decision {
    let params = policy.parameters();
    let catalogue = policy.catalogue();
    let on = app.start_date;
    let mut f = Vec::new();
    if !check_in_force(app, params, &mut f) {
        // Before the plan's first values there are no values to decide by.
        return Decision::from_findings(on, f);
    }
    check_occupation(app, catalogue, &mut f);
    let kind = check_kind(app, catalogue, &mut f);
    check_hours(app, ctx, params, catalogue, &mut f);
    check_size(app, kind, params, &mut f);
    check_day(app, params, &mut f);
    check_equipment(app, catalogue, &mut f);
    check_trainers(app, ctx, &mut f);
    check_textbooks(app, ctx, &mut f);
    check_assessment(app, catalogue, &mut f);
    check_institution(app, ctx, &mut f);
    check_topics(app, &policy.data.topics.required, &mut f);
    check_relevance(app, catalogue, &mut f);
    check_entry(app, ctx, params, &mut f);
    check_lead(app, ctx, policy, &mut f);
    check_roster(app, ctx, &mut f);
    check_apprentice(app, params, &mut f);
    check_clash(app, ctx, &mut f);
    check_shared_phone(app, ctx, params, &mut f);
    check_order(app, &mut f);
    check_credit_codes(app, &mut f);
    Decision::from_findings(on, f)
}

/// The parameters the CO-* rules read.
const CLASS_PARAMETERS: &[&str] = &[
    names::CO_MIN_CLASS_HOURS,
    names::CO_MAX_CLASS_SIZE,
    names::CO_MAX_CLASS_SIZE_ENTREPRENEURSHIP,
    names::CO_MAX_DAILY_HOURS,
    names::CO_ENTRY_SHARE_LIMIT_PERCENT,
    names::CO_LEAD_WORKING_DAYS,
    names::CO_APPRENTICE_MIN_MONTHS,
    names::CO_APPRENTICE_MAX_MONTHS,
    names::CO_APPRENTICE_MIN_LEVEL,
    names::CO_SHARED_PHONE_LIMIT,
];

/// CO-INFORCE: every parameter the rules read has a value on the first class
/// day. Before a parameter's first value there is no value (the rules are
/// not borrowed from a later date): the class is blocked, naming each
/// parameter and the date its first value holds from. Returns whether the
/// rules may be applied.
fn check_in_force(app: &ClassApplication, params: &Parameters, f: &mut Vec<Finding>) -> bool {
    let on = app.start_date;
    let missing: Vec<(&str, NaiveDate)> = CLASS_PARAMETERS
        .iter()
        .filter(|name| params.at(name, on).is_err())
        .map(|name| (*name, params.first_since(name).unwrap_or(NaiveDate::MAX)))
        .collect();
    let Some(first) = missing.iter().map(|(_, since)| *since).min() else {
        f.push(CO_INFORCE.pass(
            format!("开班日 {on} 计划各参数均已生效"),
            format!("every parameter of the plan holds a value on the first class day {on}"),
        ));
        return true;
    };
    let listed: Vec<String> = missing
        .iter()
        .map(|(name, since)| format!("{name} (from {since})"))
        .collect();
    f.push(
        CO_INFORCE
            .fail(
                format!("开班日 {on} 早于计划参数生效日（最早 {first}）：{} 无取值，不能审批", listed.join("、")),
                format!("no value on the first class day {on} for {}: the plan's parameters hold from {first}", listed.join(", ")),
            )
            .field("start_date")
            .compare("start_date", on, "<", first),
    );
    false
}

fn check_occupation(app: &ClassApplication, cat: &Catalogue, f: &mut Vec<Finding>) {
    if let (None, Some(id)) = (&app.occupation, &app.project) {
        match cat.project(id) {
            None => f.push(
                REF_OCC
                    .fail(
                        format!("培训项目 {id} 不在培训目录中"),
                        format!("project {id} is not in the catalogue"),
                    )
                    .field("project"),
            ),
            Some(p) if app.level.is_some() => f.push(
                REF_OCC
                    .fail(
                        format!("{}不分等级，不应申报等级", p.name_zh),
                        format!("{} trains no level: leave level out", p.name_en),
                    )
                    .field("level"),
            ),
            Some(p) => f.push(REF_OCC.pass(
                format!("培训项目：{}", p.name_zh),
                format!("project: {}", p.name_en),
            )),
        }
        return;
    }
    let Some(code) = &app.occupation else {
        // Refused by the shape check before the rules run.
        f.push(
            REF_OCC
                .fail("未申报职业（工种）或培训项目", "no occupation or project")
                .field("occupation"),
        );
        return;
    };
    match cat.occupation(code) {
        None => f.push(
            REF_OCC
                .fail(
                    format!("职业（工种）{code} 不在培训目录中"),
                    format!("occupation {code} is not in the catalogue"),
                )
                .field("occupation"),
        ),
        Some(o) => match app.level {
            Some(l) if !o.trains(l) => f.push(
                REF_OCC
                    .fail(
                        format!("{} 不开展{}培训", o.name_zh, l.name_zh()),
                        format!("{} is not trained at level {}", o.name_en, l.number()),
                    )
                    .field("level"),
            ),
            _ => f.push(REF_OCC.pass(
                format!("职业（工种）：{}", o.name_zh),
                format!("occupation: {}", o.name_en),
            )),
        },
    }
}

/// CO-KIND: the kind of training follows from what the class trains and its
/// programme: a project's own kind (SYB and 网络创业: entrepreneurship), an
/// occupation's skills training, apprenticeship for every class of the
/// 企业新型学徒制 programme; 马兰花计划 classes are entrepreneurship projects.
/// A project is trained in its programmes only, and leads to its own
/// certificate; an occupation never leads to 创业培训合格证书. The declared
/// kind must be the kind that follows: each contradiction blocks, showing
/// both values. Returns the kind that follows, which CO-SIZE applies.
fn check_kind(app: &ClassApplication, cat: &Catalogue, f: &mut Vec<Finding>) -> TrainingKind {
    let project = app.project.as_deref().and_then(|id| cat.project(id));
    let subject_kind = project.map_or(TrainingKind::Skills, |p| p.kind);
    let derived = match app.programme {
        Programme::Malanhua => TrainingKind::Entrepreneurship,
        Programme::Apprenticeship if subject_kind == TrainingKind::Skills => {
            TrainingKind::Apprenticeship
        }
        _ => subject_kind,
    };
    let mut failed = false;
    if let Some(p) = project
        && !p.programmes.contains(&app.programme)
    {
        failed = true;
        let allowed: Vec<String> = p.programmes.iter().map(|x| x.id()).collect();
        f.push(
            CO_KIND
                .fail(
                    format!("{}不属于{}", p.name_zh, app.programme.name_zh()),
                    format!(
                        "{} is trained in {} only, not in {}",
                        p.name_en,
                        allowed.join(", "),
                        app.programme.id()
                    ),
                )
                .field("programme")
                .compare("programme", app.programme.id(), "∉", allowed.join(",")),
        );
    }
    if app.programme == Programme::Malanhua && project.is_none() && app.occupation.is_some() {
        failed = true;
        f.push(
            CO_KIND
                .fail(
                    "马兰花计划为创业培训（SYB、网络创业），应申报培训项目而非职业（工种）",
                    "马兰花计划 classes are entrepreneurship training (SYB, 网络创业): name the project, not an occupation",
                )
                .field("project")
                .compare("subject", app.subject_label(), "≠", "project"),
        );
    }
    let expected_certificate = match project {
        Some(p) => Some(p.certificate),
        None if app.certificate == Certificate::Entrepreneurship => None,
        None => Some(app.certificate),
    };
    match expected_certificate {
        Some(c) if c == app.certificate => {}
        other => {
            failed = true;
            let (zh, en) = match other {
                Some(c) => (c.name_zh().to_string(), c.id()),
                None => (
                    "职业资格、职业技能等级或培训合格证书".to_string(),
                    "a qualification, skill-level or completion certificate".to_string(),
                ),
            };
            f.push(
                CO_KIND
                    .fail(
                        format!(
                            "申报的证书为{}，而{}应为{zh}",
                            app.certificate.name_zh(),
                            app.subject_label()
                        ),
                        format!(
                            "the declared certificate is {}, but {} leads to {en}",
                            app.certificate.id(),
                            app.subject_label()
                        ),
                    )
                    .field("certificate")
                    .compare("certificate", app.certificate.id(), "≠", en),
            );
        }
    }
    if app.kind != derived {
        failed = true;
        f.push(
            CO_KIND
                .fail(
                    format!(
                        "申报的培训类别为{}，按{}和{}应为{}",
                        app.kind.name_zh(),
                        app.subject_label(),
                        app.programme.name_zh(),
                        derived.name_zh()
                    ),
                    format!(
                        "the declared kind is {}, but {} in {} is {}",
                        app.kind.id(),
                        app.subject_label(),
                        app.programme.id(),
                        derived.id()
                    ),
                )
                .field("kind")
                .compare("kind", app.kind.id(), "≠", derived.id()),
        );
    }
    if !failed {
        f.push(
            CO_KIND
                .pass(
                    format!("培训类别：{}", derived.name_zh()),
                    format!("kind of training: {}", derived.id()),
                )
                .field("kind")
                .compare("kind", app.kind.id(), "=", derived.id()),
        );
    }
    derived
}

/// Hours that count: offline hours, and online hours given with approved courseware.
fn counted_hours(app: &ClassApplication, ctx: &Context) -> (u32, u32) {
    let mut counted = 0;
    let mut online_not_counted = 0;
    for s in &app.sessions {
        let approved = s
            .courseware
            .as_ref()
            .and_then(|c| ctx.courseware.get(c))
            .is_some_and(|c| c.status == CoursewareStatus::Approved);
        match s.mode {
            Mode::Offline => counted += s.class_hours,
            Mode::Online if approved => counted += s.class_hours,
            Mode::Online => online_not_counted += s.class_hours,
        }
    }
    (counted, online_not_counted)
}

fn check_hours(
    app: &ClassApplication,
    ctx: &Context,
    params: &Parameters,
    cat: &Catalogue,
    f: &mut Vec<Finding>,
) {
    // CO-ONLINE: each courseware listed must be approved and published.
    let ids = app.courseware_ids();
    if ids.is_empty() {
        f.push(CO_ONLINE.pass("无线上课程", "no online sessions"));
    }
    for id in ids {
        let first = app
            .sessions
            .iter()
            .position(|s| s.courseware.as_deref() == Some(id))
            .unwrap_or(0);
        let field = format!("sessions[{first}].courseware");
        match ctx.courseware.get(id).map(|c| c.status) {
            Some(CoursewareStatus::Approved) => f.push(
                CO_ONLINE
                    .pass(
                        format!("课件 {id} 已审核发布"),
                        format!("courseware {id} is approved and published"),
                    )
                    .field(field),
            ),
            other => {
                let (zh, en) = match other {
                    Some(CoursewareStatus::Pending) => ("尚在审核", "is still under review"),
                    Some(CoursewareStatus::Rejected) => ("未通过审核", "failed review"),
                    _ => (
                        "未在省平台发布",
                        "is not published on the provincial platform",
                    ),
                };
                f.push(
                    CO_ONLINE
                        .fail(
                            format!("课件 {id} {zh}，不得用于补贴性线上培训"),
                            format!("courseware {id} {en}: it may not be used for subsidised online training"),
                        )
                        .field(field)
                        .compare("courseware_status", format!("{other:?}").to_lowercase(), "≠", "approved"),
                )
            }
        }
    }

    // CO-HOURS: a project's own minimum (SYB, 网络创业).
    if let Some(p) = app.project.as_deref().and_then(|id| cat.project(id)) {
        let limit = p.min_hours;
        let (counted, _) = counted_hours(app, ctx);
        let passed = counted >= limit;
        let mut finding = CO_HOURS
            .finding(
                passed,
                format!("{}计入课时 {counted}，最低 {limit}", p.name_zh),
                format!(
                    "{}: counted class hours {counted}, minimum {limit}",
                    p.name_en
                ),
            )
            .field("sessions")
            .compare(
                "class_hours",
                counted,
                if passed { "≥" } else { "<" },
                limit,
            );
        finding
            .parameters
            .push(format!("catalogue:project:{}", p.id));
        f.push(finding);
        return;
    }
    let applies = matches!(
        app.certificate,
        Certificate::VocationalQualification | Certificate::SkillLevel
    );
    if !applies {
        f.push(CO_HOURS.pass(
            format!("{}类培训不适用最低课时要求", app.certificate.name_zh()),
            "minimum hours apply to qualification and skill-level classes only",
        ));
        return;
    }
    let param = params.at_or_first(names::CO_MIN_CLASS_HOURS, app.start_date);
    let occupation_min = app
        .level
        .and_then(|l| {
            app.occupation
                .as_ref()
                .and_then(|code| cat.occupation(code))
                .and_then(|o| o.min_hours_for(l))
        })
        .map(i64::from)
        .unwrap_or(0);
    let limit = param.value.max(occupation_min);
    let (counted, not_counted) = counted_hours(app, ctx);
    let passed = i64::from(counted) >= limit;
    let note_zh = if not_counted > 0 {
        format!("（另有 {not_counted} 课时线上课程因课件未审核不计入）")
    } else {
        String::new()
    };
    let note_en = if not_counted > 0 {
        format!(" ({not_counted} online hours with unapproved courseware do not count)")
    } else {
        String::new()
    };
    let mut finding = CO_HOURS
        .finding(
            passed,
            format!("计入课时 {counted}，最低 {limit}{note_zh}"),
            format!("counted class hours {counted}, minimum {limit}{note_en}"),
        )
        .field("sessions")
        .compare(
            "class_hours",
            counted,
            if passed { "≥" } else { "<" },
            limit,
        )
        .cite(&param);
    if occupation_min > param.value {
        finding.parameters.push(format!(
            "catalogue:{}/level-{}",
            app.subject_label(),
            app.level.map(|l| l.number()).unwrap_or(0)
        ));
    }
    f.push(finding);
}

/// CO-SIZE, by the kind that follows from the class (CO-KIND), not the one declared.
fn check_size(
    app: &ClassApplication,
    kind: TrainingKind,
    params: &Parameters,
    f: &mut Vec<Finding>,
) {
    let name = if kind == TrainingKind::Entrepreneurship {
        names::CO_MAX_CLASS_SIZE_ENTREPRENEURSHIP
    } else {
        names::CO_MAX_CLASS_SIZE
    };
    let p = params.at_or_first(name, app.start_date);
    let n = app.roster.len() as i64;
    let passed = n <= p.value;
    f.push(
        CO_SIZE
            .finding(
                passed,
                format!("{}班级人数 {n}，上限 {}", kind.name_zh(), p.value),
                format!(
                    "{n} trainees in a {} class, at most {}",
                    kind.id().replace('_', " "),
                    p.value
                ),
            )
            .field("roster")
            .compare("trainees", n, if passed { "≤" } else { ">" }, p.value)
            .cite(&p),
    );
}

fn check_day(app: &ClassApplication, params: &Parameters, f: &mut Vec<Finding>) {
    let p = params.at_or_first(names::CO_MAX_DAILY_HOURS, app.start_date);
    let mut per_day: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for s in &app.sessions {
        *per_day.entry(s.date).or_default() += s.class_hours;
    }
    let mut any = false;
    for (day, hours) in &per_day {
        if i64::from(*hours) > p.value {
            any = true;
            f.push(
                CO_DAY
                    .fail(
                        format!("{day} 安排 {hours} 课时，原则上每天不超过 {} 课时", p.value),
                        format!(
                            "{day} has {hours} class hours; in principle at most {} a day",
                            p.value
                        ),
                    )
                    .field("sessions")
                    .compare(&format!("class_hours_on_{day}"), hours, ">", p.value)
                    .cite(&p),
            );
        }
    }
    if !any {
        let max = per_day.values().max().copied().unwrap_or(0);
        f.push(
            CO_DAY
                .pass(
                    format!("每天最多 {max} 课时"),
                    format!("at most {max} class hours on any day"),
                )
                .compare("max_daily_class_hours", max, "≤", p.value)
                .cite(&p),
        );
    }
}

fn check_equipment(app: &ClassApplication, cat: &Catalogue, f: &mut Vec<Finding>) {
    let Some(o) = trains(app, cat) else {
        f.push(
            CO_EQUIP
                .fail(
                    "职业不在目录中，无法核实教学设备",
                    "occupation unknown: equipment cannot be checked",
                )
                .field("equipment"),
        );
        return;
    };
    let n = app.roster.len() as u32;
    for need in o.equipment {
        let required = need.required_for(n);
        let declared: u32 = app
            .equipment
            .iter()
            .filter(|e| e.item.trim() == need.item)
            .map(|e| e.quantity)
            .sum();
        let passed = declared >= required;
        f.push(
            CO_EQUIP
                .finding(
                    passed,
                    format!("{}：申报 {declared}，{n} 名学员需要 {required}", need.item),
                    format!(
                        "{}: {declared} declared, {required} needed for {n} trainees",
                        need.item
                    ),
                )
                .field("equipment")
                .compare(
                    &format!("equipment[{}]", need.item),
                    declared,
                    if passed { "≥" } else { "<" },
                    required,
                ),
        );
    }
}

fn check_trainers(app: &ClassApplication, ctx: &Context, f: &mut Vec<Finding>) {
    for (i, t) in app.trainers.iter().enumerate() {
        let field = format!("trainers[{i}].registration_no");
        let no = &t.registration_no;
        match ctx.trainers.get(no).map(|r| r.status) {
            Some(TrainerStatus::Registered) => f.push(
                CO_TRAINER
                    .pass(
                        format!("师资 {no} 已在省平台登记"),
                        format!("trainer {no} is registered on the provincial platform"),
                    )
                    .field(field),
            ),
            Some(TrainerStatus::Revoked) => f.push(
                CO_TRAINER
                    .fail(
                        format!("师资 {no} 的平台登记已撤销"),
                        format!("trainer {no}'s platform registration is revoked"),
                    )
                    .field(field),
            ),
            None => f.push(
                CO_TRAINER
                    .fail(
                        format!("师资 {no} 未进入省职业技能网络培训平台"),
                        format!("trainer {no} is not registered on the provincial platform"),
                    )
                    .field(field),
            ),
        }
    }
}

fn check_textbooks(app: &ClassApplication, ctx: &Context, f: &mut Vec<Finding>) {
    if app.textbooks.is_empty() {
        f.push(
            CO_TEXTBOOK
                .fail("未申报教材", "no textbook declared")
                .field("textbooks"),
        );
        return;
    }
    for (i, b) in app.textbooks.iter().enumerate() {
        let field = format!("textbooks[{i}]");
        let in_catalogue = ctx.textbooks.iter().any(|c| match &b.isbn {
            Some(isbn) => normalize_isbn(isbn) == normalize_isbn(&c.isbn),
            None => c.title == b.title.trim(),
        });
        if in_catalogue {
            f.push(
                CO_TEXTBOOK
                    .pass(
                        format!("《{}》在规划教材目录中", b.title),
                        format!("“{}” is in the planned-textbook catalogue", b.title),
                    )
                    .field(field),
            );
        } else if b.isbn.as_deref().is_some_and(isbn_ok) {
            f.push(
                CO_TEXTBOOK
                    .fail(
                        format!("《{}》不在规划教材目录中，须为正版出版物", b.title),
                        format!(
                            "“{}” is outside the catalogue: it must be a genuine published book",
                            b.title
                        ),
                    )
                    .field(field),
            );
        } else {
            f.push(
                CO_TEXTBOOK
                    .fail(
                        format!("《{}》不在目录中且无有效书号（ISBN）", b.title),
                        format!(
                            "“{}” is outside the catalogue and has no valid ISBN",
                            b.title
                        ),
                    )
                    .field(format!("textbooks[{i}].isbn"))
                    .severity(Severity::Block),
            );
        }
    }
}

fn check_assessment(app: &ClassApplication, cat: &Catalogue, f: &mut Vec<Finding>) {
    let bodies = trains(app, cat).map(|o| o.assessment_bodies).unwrap_or(&[]);
    let recognised = bodies.contains(&app.assessment_body);
    let own = app.assessment_body == app.institution;
    let only_one = bodies.len() == 1;
    let field = "assessment_body";
    if !recognised {
        f.push(
            CO_ASSESS
                .fail(
                    format!("评价机构 {} 不是该职业认定的评价机构", app.assessment_body),
                    format!(
                        "{} is not a recognised assessment body for this occupation",
                        app.assessment_body
                    ),
                )
                .field(field),
        );
    } else if own && !only_one {
        f.push(
            CO_ASSESS
                .fail("考培分离：培训机构不得评价本机构学员", "training and assessment must be separate: the institution may not assess its own trainees")
                .field(field)
                .compare("recognised_assessment_bodies", bodies.len(), ">", 1),
        );
    } else if own {
        f.push(
            CO_ASSESS
                .pass(
                    "该职业只有唯一评价机构，允许本机构评价",
                    "the occupation has a single recognised assessment body",
                )
                .field(field),
        );
    } else {
        f.push(
            CO_ASSESS
                .pass(
                    "评价机构与培训机构分离",
                    "assessed by a separate recognised body",
                )
                .field(field),
        );
    }
}

fn check_institution(app: &ClassApplication, ctx: &Context, f: &mut Vec<Finding>) {
    let field = "institution";
    match &ctx.institution {
        None => f.push(
            CO_INST
                .fail(
                    "培训机构未向属地人社部门报备",
                    "the institution is not on file with any district office",
                )
                .field(field),
        ),
        Some(i) if i.status == InstitutionStatus::Suspended => f.push(
            CO_INST
                .fail("培训机构已被暂停", "the institution is suspended")
                .field(field),
        ),
        Some(i) if i.status == InstitutionStatus::Blacklisted => f.push(
            CO_INST
                .fail("培训机构已列入黑名单", "the institution is blacklisted")
                .field(field),
        ),
        Some(i) if !i.filed_districts.contains(&app.district) => f.push(
            CO_INST
                .fail(
                    format!("培训机构未向{}报备", app.district.name_zh()),
                    format!(
                        "the institution is not on file with district {}",
                        app.district
                    ),
                )
                .field("district"),
        ),
        Some(i) => f.push(
            CO_INST
                .pass(
                    format!("{} 已报备", i.name),
                    "the institution is on file and in good standing",
                )
                .field(field),
        ),
    }
}

fn check_topics(app: &ClassApplication, required: &[Topic], f: &mut Vec<Finding>) {
    let covered: BTreeSet<Topic> = app
        .sessions
        .iter()
        .flat_map(|s| s.topics.iter().copied())
        .collect();
    for t in required {
        let passed = covered.contains(t);
        f.push(
            CO_TOPICS
                .finding(
                    passed,
                    if passed {
                        format!("课程包含{}", t.name_zh())
                    } else {
                        format!("课程未安排{}内容", t.name_zh())
                    },
                    if passed {
                        format!("the schedule covers {}", t.id())
                    } else {
                        format!("the schedule does not cover {}", t.id())
                    },
                )
                .field("sessions"),
        );
    }
}

fn check_relevance(app: &ClassApplication, cat: &Catalogue, f: &mut Vec<Finding>) {
    let enterprise_training = app.programme == Programme::SkillsUpgradeAction
        || app
            .roster
            .iter()
            .any(|t| t.group == TargetGroup::EnterpriseEmployee);
    if !enterprise_training {
        f.push(CO_RELEVANT.pass("非企业职工培训，不适用", "not enterprise-employee training"));
        return;
    }
    let Some(e) = &app.enterprise else {
        f.push(
            CO_RELEVANT
                .fail(
                    "企业职工培训未申报企业信息，无法核实与主营业务相关",
                    "enterprise-employee training without enterprise details",
                )
                .field("enterprise"),
        );
        return;
    };
    let served = trains(app, cat);
    let industries = served
        .as_ref()
        .map(|o| o.industries.to_vec())
        .unwrap_or_default();
    // A project with no sections listed serves every section.
    let every = served
        .as_ref()
        .is_some_and(|o| o.project.is_some() && o.industries.is_empty());
    let passed = every || industries.iter().any(|i| i == &e.industry);
    f.push(
        CO_RELEVANT
            .finding(
                passed,
                if passed { "培训工种与企业主营业务相关".to_string() } else { format!("培训工种与企业主营业务（{}门类）无关", e.industry) },
                if passed { "the occupation relates to the enterprise's main business".to_string() } else { format!("the occupation does not relate to the enterprise's main business (section {})", e.industry) },
            )
            .field("enterprise.industry")
            .compare("industry", &e.industry, if passed { "∈" } else { "∉" }, industries.join(",")),
    );
}

fn check_entry(app: &ClassApplication, ctx: &Context, params: &Parameters, f: &mut Vec<Finding>) {
    let p = params.at_or_first(names::CO_ENTRY_SHARE_LIMIT_PERCENT, app.start_date);
    let this = u32::from(app.certificate == Certificate::TrainingCompletion);
    let total = ctx.year.classes + 1;
    let entry = ctx.year.completion_classes + this;
    let passed = this == 0 || i64::from(entry) * 100 <= p.value * i64::from(total);
    let share = format!("{entry}/{total}");
    f.push(
        CO_ENTRY
            .finding(
                passed,
                format!("本年度培训合格证书类班次 {share}，控制比例 {}%", p.value),
                format!("entry-level classes this year {share}, limit {}%", p.value),
            )
            .field("certificate")
            .compare(
                "entry_level_share",
                share.clone(),
                if passed { "≤" } else { ">" },
                format!("{}%", p.value),
            )
            .cite(&p),
    );
}

fn check_lead(app: &ClassApplication, ctx: &Context, policy: &Policy, f: &mut Vec<Finding>) {
    let p = policy
        .parameters()
        .at_or_first(names::CO_LEAD_WORKING_DAYS, app.start_date);
    let counted = policy
        .data
        .calendar
        .working_days_between(ctx.today, app.start_date);
    let days = counted.days;
    let passed = days >= p.value;
    f.push(
        CO_LEAD
            .finding(
                passed,
                format!("申请日 {} 至开班日 {} 间有 {days} 个工作日，至少 {}", ctx.today, app.start_date, p.value),
                format!("{days} working days between filing on {} and the first class day {}, at least {}", ctx.today, app.start_date, p.value),
            )
            .field("start_date")
            .compare("working_days", days, if passed { "≥" } else { "<" }, p.value)
            .cite(&p),
    );
    let finding = if counted.unloaded.is_empty() {
        CO_CALENDAR.finding(
            true,
            "申请日至开班日的工作日按国务院办公厅放假安排通知计算",
            "the working days between filing and the first class day follow the State Council's holiday notices",
        )
    } else {
        let years: Vec<String> = counted.unloaded.iter().map(|y| y.to_string()).collect();
        let years = years.join(", ");
        CO_CALENDAR
            .finding(
                false,
                format!("未载入 {years} 年的放假安排：该年按周一至周五计算工作日，请载入当年通知后复核"),
                format!("calendar not loaded for {years}: its working days were counted Monday to Friday; load that year's notice and decide again"),
            )
            .field("start_date")
            .compare("calendar_years_not_loaded", years, "∉", "the policy's calendar")
    };
    f.push(finding);
}

fn check_roster(app: &ClassApplication, ctx: &Context, f: &mut Vec<Finding>) {
    let mut first_seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut failed = false;
    for (i, t) in app.roster.iter().enumerate() {
        if let Some(first) = first_seen.get(&t.id_number.packed()) {
            failed = true;
            f.push(
                CO_ROSTER
                    .fail(
                        format!(
                            "第 {} 行学员与第 {} 行重复（{}）",
                            i + 1,
                            first + 1,
                            t.id_number.masked()
                        ),
                        format!(
                            "roster line {} repeats line {} ({})",
                            i + 1,
                            first + 1,
                            t.id_number.masked()
                        ),
                    )
                    .field(format!("roster[{i}].id_number")),
            );
        } else {
            first_seen.insert(t.id_number.packed(), i);
        }
        for e in ctx.enrolments.get(&i).into_iter().flatten() {
            if e.overlaps(app) {
                failed = true;
                f.push(
                    CO_ROSTER
                        .fail(
                            format!(
                                "第 {} 行学员已在 {} 班（{} 至 {}）参训，时间重叠",
                                i + 1,
                                e.class_id,
                                e.start_date,
                                e.end_date
                            ),
                            format!(
                                "roster line {} is enrolled in class {} ({} to {}), which overlaps",
                                i + 1,
                                e.class_id,
                                e.start_date,
                                e.end_date
                            ),
                        )
                        .field(format!("roster[{i}].id_number")),
                );
            }
        }
    }
    if !failed {
        f.push(
            CO_ROSTER
                .pass(
                    format!("{} 名学员身份证号、手机号、人员类别有效，无重复，无重叠班次", app.roster.len()),
                    format!("{} trainees with valid ID, mobile and target group, no repeats, no overlapping class", app.roster.len()),
                )
                .field("roster"),
        );
    }
}

/// Whole months from `from` to `to` (a class from 2022-06-01 to 2023-05-31 lasts 12 months).
fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let end = to.succ_opt().unwrap_or(to);
    let mut m =
        i64::from(end.year() - from.year()) * 12 + i64::from(end.month()) - i64::from(from.month());
    if end.day() < from.day() {
        m -= 1;
    }
    m
}

fn check_apprentice(app: &ClassApplication, params: &Parameters, f: &mut Vec<Finding>) {
    // Every class of the 企业新型学徒制 programme, whatever kind it declares.
    if app.programme != Programme::Apprenticeship {
        f.push(CO_APPRENTICE.pass("非企业新型学徒制，不适用", "not an apprenticeship class"));
        return;
    }
    let min = params.at_or_first(names::CO_APPRENTICE_MIN_MONTHS, app.start_date);
    let max = params.at_or_first(names::CO_APPRENTICE_MAX_MONTHS, app.start_date);
    let lvl = params.at_or_first(names::CO_APPRENTICE_MIN_LEVEL, app.start_date);
    let months = months_between(app.start_date, app.end_date);
    let duration_ok = months >= min.value && months <= max.value;
    f.push(
        CO_APPRENTICE
            .finding(
                duration_ok,
                format!(
                    "学徒制培养期限 {months} 个月，应为 {}–{} 个月",
                    min.value, max.value
                ),
                format!(
                    "apprenticeship lasts {months} months; expected {} to {}",
                    min.value, max.value
                ),
            )
            .field("end_date")
            .compare(
                "months",
                months,
                if duration_ok { "∈" } else { "∉" },
                format!("[{}, {}]", min.value, max.value),
            )
            .cite(&min)
            .cite(&max),
    );
    let level = app.level.map(|l| i64::from(l.number()));
    let level_ok = level.is_some_and(|n| n <= lvl.value);
    f.push(
        CO_APPRENTICE
            .finding(
                level_ok,
                "学徒制培养目标以中级工（四级）以上为主",
                "apprenticeships aim mainly at level 4 (中级工) and above",
            )
            .field("level")
            .compare(
                "level",
                level
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "none".into()),
                if level_ok { "≤" } else { ">" },
                lvl.value,
            )
            .cite(&lvl),
    );
}

fn check_clash(app: &ClassApplication, ctx: &Context, f: &mut Vec<Finding>) {
    let mut failed = false;
    // Each session's site normalised once: the pairwise check below compares
    // every pair of sessions (780 pairs for a 120-hour class).
    let sites: Vec<Option<String>> = app
        .sessions
        .iter()
        .map(|s| s.site.as_deref().map(normalize_site))
        .collect();
    for (i, s) in app.sessions.iter().enumerate() {
        for b in ctx.trainer_bookings.get(&s.trainer).into_iter().flatten() {
            if b.overlaps(s) {
                failed = true;
                f.push(
                    CO_CLASH
                        .fail(
                            format!(
                                "师资 {} 于 {} {}–{} 已在 {} 班授课",
                                s.trainer,
                                b.date,
                                b.start.format("%H:%M"),
                                b.end.format("%H:%M"),
                                b.class_id
                            ),
                            format!(
                                "trainer {} already teaches class {} on {} {}–{}",
                                s.trainer,
                                b.class_id,
                                b.date,
                                b.start.format("%H:%M"),
                                b.end.format("%H:%M")
                            ),
                        )
                        .field(format!("sessions[{i}].trainer")),
                );
            }
        }
        if let Some(site) = &sites[i] {
            for b in ctx.site_bookings.get(site).into_iter().flatten() {
                if b.overlaps(s) {
                    failed = true;
                    f.push(
                        CO_CLASH
                            .fail(
                                format!(
                                    "场地于 {} {}–{} 已被 {} 班占用",
                                    b.date,
                                    b.start.format("%H:%M"),
                                    b.end.format("%H:%M"),
                                    b.class_id
                                ),
                                format!(
                                    "the site is used by class {} on {} {}–{}",
                                    b.class_id,
                                    b.date,
                                    b.start.format("%H:%M"),
                                    b.end.format("%H:%M")
                                ),
                            )
                            .field(format!("sessions[{i}].site")),
                    );
                }
            }
        }
    }
    // Within the application itself: a trainer or a site in two sessions at once.
    for (i, a) in app.sessions.iter().enumerate() {
        for (j, b) in app.sessions.iter().enumerate().skip(i + 1) {
            let overlap = a.date == b.date && a.start < b.end && b.start < a.end;
            let same_site = || matches!((&sites[i], &sites[j]), (Some(x), Some(y)) if x == y);
            if overlap && (a.trainer == b.trainer || same_site()) {
                failed = true;
                f.push(
                    CO_CLASH
                        .fail(
                            format!("第 {} 与第 {} 节课时间重叠", i + 1, j + 1),
                            format!(
                                "sessions {} and {} overlap with the same trainer or site",
                                i + 1,
                                j + 1
                            ),
                        )
                        .field(format!("sessions[{j}]")),
                );
            }
        }
    }
    if !failed {
        f.push(
            CO_CLASH
                .pass("师资与场地无时间冲突", "no trainer or site is booked twice")
                .field("sessions"),
        );
    }
}

fn check_shared_phone(
    app: &ClassApplication,
    ctx: &Context,
    params: &Parameters,
    f: &mut Vec<Finding>,
) {
    let p = params.at_or_first(names::CO_SHARED_PHONE_LIMIT, app.start_date);
    let mut by_phone: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, t) in app.roster.iter().enumerate() {
        by_phone.entry(t.mobile.packed()).or_default().push(i);
    }
    let mut failed = false;
    for lines in by_phone.values() {
        let first = lines[0];
        let elsewhere = ctx.phone_users_elsewhere.get(&first).copied().unwrap_or(0);
        let users = lines.len() as i64 + i64::from(elsewhere);
        if users > p.value {
            failed = true;
            let shown: Vec<String> = lines.iter().map(|i| (i + 1).to_string()).collect();
            f.push(
                CO_SHARED_PHONE
                    .fail(
                        format!("手机号 {} 由 {users} 名学员共用（本班第 {} 行，在训班次另有 {elsewhere} 名）", app.roster[first].mobile.masked(), shown.join("、")),
                        format!("mobile {} is shared by {users} trainees (lines {} here, {elsewhere} in classes in training)", app.roster[first].mobile.masked(), shown.join(", ")),
                    )
                    .field(format!("roster[{first}].mobile"))
                    .compare("trainees_per_mobile", users, ">", p.value)
                    .cite(&p),
            );
        }
    }
    if !failed {
        f.push(
            CO_SHARED_PHONE
                .pass(
                    "每个手机号只属于一名学员",
                    "every mobile belongs to one trainee",
                )
                .field("roster")
                .cite(&p),
        );
    }
}

fn check_order(app: &ClassApplication, f: &mut Vec<Finding>) {
    let first_offline = app
        .sessions
        .iter()
        .filter(|s| s.mode == Mode::Offline)
        .map(|s| (s.date, s.start))
        .min();
    let late_online = app
        .sessions
        .iter()
        .enumerate()
        .filter(|(_, s)| s.mode == Mode::Online)
        .find(|(_, s)| first_offline.is_some_and(|fo| (s.date, s.start) > fo));
    match late_online {
        Some((i, s)) => f.push(
            CO_ORDER
                .fail(
                    format!("线上理论课（{}）安排在线下实操课之后", s.date),
                    format!(
                        "online theory on {} comes after offline sessions have started",
                        s.date
                    ),
                )
                .field(format!("sessions[{i}]")),
        ),
        None => f.push(CO_ORDER.pass(
            "线上理论课安排在线下课程之前",
            "online theory precedes offline sessions",
        )),
    }
}

fn check_credit_codes(app: &ClassApplication, f: &mut Vec<Finding>) {
    let mut codes = vec![
        ("institution", &app.institution),
        ("assessment_body", &app.assessment_body),
    ];
    if let Some(e) = &app.enterprise {
        codes.push(("enterprise.credit_code", &e.credit_code));
    }
    for (field, code) in codes {
        let ok = code.check_ok();
        f.push(
            REF_USCC
                .finding(
                    ok,
                    if ok {
                        format!("统一社会信用代码 {code} 校验通过")
                    } else {
                        format!("统一社会信用代码 {code} 校验位不符，请核实")
                    },
                    if ok {
                        format!("credit code {code} passes its check")
                    } else {
                        format!("credit code {code} fails its check character: verify it")
                    },
                )
                .field(field),
        );
    }
}

#[cfg(test)]
mod tests;
