//! Valid sample data for tests across the workspace (feature `fixtures`).
//!
//! [`valid_class`] is a class that passes every rule with no warning; tests
//! change one thing and watch one rule. ID numbers and mobiles are generated
//! with valid check characters and are nobody's.

use crate::class_opening::*;
use crate::ids::{AreaCode, CreditCode, IdNumber, Mobile, OccupationCode, SkillLevel};
use crate::reference::{Certificate, Programme, TargetGroup, Topic, TrainingKind};
use crate::registry::{CatalogueTextbook, Institution, InstitutionStatus, Trainer, TrainerStatus};
use chrono::{Duration, NaiveDate, NaiveTime};

/// The institution of the fixtures (on file with 五华区).
pub const INSTITUTION: &str = "52530102MJ1D4567X6";
/// A second institution, on file with 盘龙区.
pub const OTHER_INSTITUTION: &str = "52530103MJ2H8901XQ";
/// The fixture's assessment body, recognised for 养老护理员.
pub const ASSESSOR: &str = "12530100MB0A1234X0";
/// The textbook in the catalogue.
pub const TEXTBOOK_ISBN: &str = "978-7-111-21382-6";

/// A valid ID number for roster line `i` (born 1980 onwards in 五华区). Different `salt`s give different people.
pub fn id_number(i: usize, salt: u32) -> IdNumber {
    let birth = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
        + Duration::days((i as i64) + i64::from(salt) * 997);
    let body = format!("530102{}{:03}", birth.format("%Y%m%d"), (i % 1000));
    let check = crate::ids::check_character(body.as_bytes()) as char;
    IdNumber::parse(format!("{body}{check}")).expect("generated ID is valid")
}

/// A valid mobile for roster line `i`.
pub fn mobile(i: usize, salt: u32) -> Mobile {
    Mobile::parse(format!("139{:04}{:04}", salt % 10_000, i % 10_000))
        .expect("generated mobile is valid")
}

/// A roster of `n` trainees.
pub fn roster(n: usize, salt: u32) -> Vec<Trainee> {
    (0..n)
        .map(|i| Trainee {
            name: format!("学员{:03}", i + 1),
            id_number: id_number(i, salt),
            mobile: mobile(i, salt),
            group: if i % 2 == 0 {
                TargetGroup::PovertyAlleviated
            } else {
                TargetGroup::FlexibleEmployment
            },
        })
        .collect()
}

/// A 养老护理员 level-5 class of `n` trainees, 15 days of 8 hours from 2022-06-13, filed 2022-06-01.
pub fn valid_class(n: usize) -> (ClassApplication, Context) {
    valid_class_from(
        "2022-06-13".parse().unwrap(),
        "2022-06-01".parse().unwrap(),
        n,
        0,
    )
}

/// Like [`valid_class`], starting on `start`, filed on `today`; `salt` varies people, trainers and site.
pub fn valid_class_from(
    start: NaiveDate,
    today: NaiveDate,
    n: usize,
    salt: u32,
) -> (ClassApplication, Context) {
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let trainers = [
        format!("YN-T-{:04}", salt * 2 + 1),
        format!("YN-T-{:04}", salt * 2 + 2),
    ];
    let site = format!("昆明市五华区教场中路 8 号 {} 室", 201 + salt);
    let sessions = (0..15)
        .map(|d| Session {
            date: start + Duration::days(d),
            start: t(8, 30),
            end: t(17, 30),
            class_hours: 8,
            mode: Mode::Offline,
            topics: if d == 0 {
                vec![
                    Topic::Occupation,
                    Topic::LawAndRegulations,
                    Topic::DrugControl,
                    Topic::HivPrevention,
                    Topic::SmartphoneUse,
                    Topic::Putonghua,
                ]
            } else {
                vec![Topic::Occupation]
            },
            trainer: trainers[(d % 2) as usize].clone(),
            courseware: None,
            site: Some(site.clone()),
        })
        .collect();
    let app = ClassApplication {
        institution: CreditCode::parse(INSTITUTION).unwrap(),
        district: AreaCode::parse("530102").unwrap(),
        title: "养老护理员（五级）技能培训班".into(),
        programme: Programme::KangyangYunShifu,
        kind: TrainingKind::Skills,
        certificate: Certificate::SkillLevel,
        occupation: Some(OccupationCode::parse("4-10-01-05").unwrap()),
        project: None,
        level: Some(SkillLevel::Five),
        start_date: start,
        end_date: start + Duration::days(14),
        sessions,
        trainers: trainers
            .iter()
            .enumerate()
            .map(|(i, no)| TrainerRef {
                registration_no: no.clone(),
                name: format!("讲师{}", i + 1),
            })
            .collect(),
        textbooks: vec![Textbook {
            title: "养老护理员（基础知识）".into(),
            isbn: Some(TEXTBOOK_ISBN.into()),
        }],
        equipment: vec![
            EquipmentItem {
                item: "护理床".into(),
                quantity: 12,
            },
            EquipmentItem {
                item: "模拟人".into(),
                quantity: 6,
            },
            EquipmentItem {
                item: "轮椅".into(),
                quantity: 2,
            },
        ],
        assessment_body: CreditCode::parse(ASSESSOR).unwrap(),
        enterprise: None,
        roster: roster(n, salt),
    };
    let ctx = Context {
        today,
        institution: Some(institution()),
        trainers: trainers
            .iter()
            .map(|no| {
                (
                    no.clone(),
                    Trainer {
                        registration_no: no.clone(),
                        name: "讲师".into(),
                        status: TrainerStatus::Registered,
                    },
                )
            })
            .collect(),
        textbooks: vec![textbook()],
        ..Context::default()
    };
    (app, ctx)
}

/// The fixtures' assessment body of 创业培训 (SYB, 网络创业).
pub const ENTREPRENEURSHIP_ASSESSOR: &str = "12530100MB0E7890X2";

/// A 马兰花计划 class of project `project` (`syb` or `online_business`) of `n`
/// trainees, 10 days of 8 hours from 2022-06-13, filed 2022-06-01, with the
/// equipment both projects need for up to 60 trainees.
pub fn valid_project_class(project: &str, n: usize) -> (ClassApplication, Context) {
    let (mut app, ctx) = valid_class(n);
    app.title = "创业培训（马兰花计划）".into();
    app.occupation = None;
    app.project = Some(project.into());
    app.level = None;
    app.kind = TrainingKind::Entrepreneurship;
    app.certificate = Certificate::Entrepreneurship;
    app.programme = Programme::Malanhua;
    app.sessions.truncate(10);
    app.end_date = app.start_date + Duration::days(9);
    app.equipment = vec![
        EquipmentItem {
            item: "投影仪".into(),
            quantity: 1,
        },
        EquipmentItem {
            item: "SYB 学员手册".into(),
            quantity: 60,
        },
        EquipmentItem {
            item: "计算机".into(),
            quantity: 60,
        },
    ];
    app.assessment_body = CreditCode::parse(ENTREPRENEURSHIP_ASSESSOR).unwrap();
    (app, ctx)
}

/// The fixture institution's registry entry.
pub fn institution() -> Institution {
    Institution {
        credit_code: CreditCode::parse(INSTITUTION).unwrap(),
        name: "昆明市五华区示例职业培训学校".into(),
        status: InstitutionStatus::Filed,
        filed_districts: vec![AreaCode::parse("530102").unwrap()],
        assessment_qualifications: vec![],
    }
}

/// The fixture textbook's catalogue entry.
pub fn textbook() -> CatalogueTextbook {
    CatalogueTextbook {
        isbn: TEXTBOOK_ISBN.into(),
        title: "养老护理员（基础知识）".into(),
    }
}
