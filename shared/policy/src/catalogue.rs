//! The occupation catalogue (REF-OCC), shipped as data in `data/occupations.toml`.
//!
//! For each occupation: levels trained, minimum class hours per level, the
//! teaching equipment a class needs (CO-EQUIP), the industries it serves
//! (CO-RELEVANT) and the recognised assessment bodies (CO-ASSESS).

use crate::data::FieldError;
use crate::ids::{CreditCode, OccupationCode, SkillLevel};
use crate::reference::{Certificate, Programme, TrainingKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A unit of equipment an occupation's class needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipmentNeed {
    /// Item name, as institutions declare it.
    pub item: String,
    /// One unit per this many trainees, rounded up.
    #[serde(default)]
    pub per_trainees: Option<u32>,
    /// This many units whatever the class size.
    #[serde(default)]
    pub per_class: Option<u32>,
}

impl EquipmentNeed {
    /// Units needed for a class of `trainees`.
    pub fn required_for(&self, trainees: u32) -> u32 {
        let by_trainees = self
            .per_trainees
            .filter(|n| *n > 0)
            .map(|n| trainees.div_ceil(n))
            .unwrap_or(0);
        by_trainees.max(self.per_class.unwrap_or(0))
    }
}

/// One occupation of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Occupation {
    /// National classification code.
    pub code: OccupationCode,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Whether the code was checked against the 2022 classification.
    pub verified: bool,
    /// Levels trained (level numbers).
    pub levels: Vec<SkillLevel>,
    /// Minimum class hours per level number.
    pub min_hours: BTreeMap<String, u32>,
    /// GB/T 4754 industry sections the occupation serves.
    pub industries: Vec<String>,
    /// Recognised assessment bodies.
    pub assessment_bodies: Vec<CreditCode>,
    /// Equipment a class needs.
    pub equipment: Vec<EquipmentNeed>,
}

impl Occupation {
    /// The catalogue's minimum hours for `level`, if it lists one.
    pub fn min_hours_for(&self, level: SkillLevel) -> Option<u32> {
        self.min_hours.get(&level.number().to_string()).copied()
    }

    /// Whether the occupation is trained at `level`.
    pub fn trains(&self, level: SkillLevel) -> bool {
        self.levels.contains(&level)
    }
}

/// A recognised assessment body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentBody {
    /// Its credit code.
    pub credit_code: CreditCode,
    /// Its name.
    pub name_zh: String,
}

/// A programme-wide training project that is not an occupation of the
/// national classification: SYB 创业培训 and 网络创业培训 (马兰花计划). A class
/// names it instead of an occupation; it trains no level and leads to its
/// own certificate (创业培训合格证书).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Id, as classes and subsidy entries name it (`syb`, `online_business`).
    pub id: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Kind of training a class of this project is (CO-KIND, CO-SIZE).
    pub kind: TrainingKind,
    /// Certificate a class of this project leads to.
    pub certificate: Certificate,
    /// Programmes (REF-PROGRAM) a class of this project may belong to.
    pub programmes: Vec<Programme>,
    /// Minimum class hours (CO-HOURS).
    pub min_hours: u32,
    /// GB/T 4754 sections it serves (CO-RELEVANT); empty: every section.
    #[serde(default)]
    pub industries: Vec<String>,
    /// Recognised assessment bodies (CO-ASSESS).
    pub assessment_bodies: Vec<CreditCode>,
    /// Equipment a class needs (CO-EQUIP).
    pub equipment: Vec<EquipmentNeed>,
    /// Where the figures come from.
    pub reference: String,
}

/// The whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Occupations.
    pub occupation: Vec<Occupation>,
    /// Training projects that are not occupations (SYB, 网络创业).
    #[serde(default)]
    pub project: Vec<Project>,
    /// Assessment bodies named by occupations.
    pub assessment_body: Vec<AssessmentBody>,
}

impl Catalogue {
    /// The catalogue shipped with this build.
    pub fn shipped() -> &'static Catalogue {
        &crate::data::PolicyData::shipped().catalogue
    }

    /// Reads the shipped catalogue anew, uncached.
    pub fn read_shipped() -> Catalogue {
        crate::data::PolicyData::read_shipped().catalogue
    }

    /// Parses a catalogue file.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The occupation with `code`.
    pub fn occupation(&self, code: &OccupationCode) -> Option<&Occupation> {
        self.occupation.iter().find(|o| &o.code == code)
    }

    /// The project with `id`.
    pub fn project(&self, id: &str) -> Option<&Project> {
        self.project.iter().find(|p| p.id == id)
    }

    /// Whether `id` is a project of the catalogue.
    pub fn has_project(&self, id: &str) -> bool {
        self.project(id).is_some()
    }

    /// The assessment body with `code`.
    pub fn assessment_body(&self, code: &CreditCode) -> Option<&AssessmentBody> {
        self.assessment_body.iter().find(|b| &b.credit_code == code)
    }

    /// The catalogue with `occupation` added or replaced (by code) and the
    /// `bodies` described (added or renamed by credit code), if the result
    /// checks ([`Catalogue::check`]); errors name fields as in the occupation
    /// (`min_hours.3`) or as `assessment_bodies[i]…` for a body.
    pub fn with_occupation(
        &self,
        occupation: Occupation,
        bodies: Vec<AssessmentBody>,
    ) -> Result<Catalogue, Vec<FieldError>> {
        let mut errs = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            if !crate::text::filled(&b.name_zh, 100) {
                errs.push(FieldError::new(
                    format!("assessment_bodies[{i}].name_zh"),
                    "must be 1 to 100 characters, not all blank",
                ));
            }
        }
        let mut next = self.clone();
        for b in bodies {
            next.assessment_body
                .retain(|a| a.credit_code != b.credit_code);
            next.assessment_body.push(b);
        }
        if let Err(e) = occupation.check(&next.assessment_body) {
            errs.extend(e.into_iter().map(|e| e.under("occupation")));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        match next
            .occupation
            .iter_mut()
            .find(|o| o.code == occupation.code)
        {
            Some(o) => *o = occupation,
            None => next.occupation.push(occupation),
        }
        Ok(next)
    }

    /// The catalogue with `project` added or replaced (by id) and the
    /// `bodies` described, if the result checks.
    pub fn with_project(
        &self,
        project: Project,
        bodies: Vec<AssessmentBody>,
    ) -> Result<Catalogue, Vec<FieldError>> {
        let mut errs = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            if !crate::text::filled(&b.name_zh, 100) {
                errs.push(FieldError::new(
                    format!("assessment_bodies[{i}].name_zh"),
                    "must be 1 to 100 characters, not all blank",
                ));
            }
        }
        let mut next = self.clone();
        for b in bodies {
            next.assessment_body
                .retain(|a| a.credit_code != b.credit_code);
            next.assessment_body.push(b);
        }
        if let Err(e) = project.check(&next.assessment_body) {
            errs.extend(e.into_iter().map(|e| e.under("project")));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        match next.project.iter_mut().find(|p| p.id == project.id) {
            Some(p) => *p = project,
            None => next.project.push(project),
        }
        Ok(next)
    }

    /// Every occupation checked ([`Occupation::check`]) against the
    /// described bodies, each code once.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, o) in self.occupation.iter().enumerate() {
            if !seen.insert(o.code.as_str()) {
                errs.push(FieldError::new(
                    format!("occupation[{i}].code"),
                    "listed twice",
                ));
            }
            if let Err(e) = o.check(&self.assessment_body) {
                errs.extend(e.into_iter().map(|e| e.under(&format!("occupation[{i}]"))));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, p) in self.project.iter().enumerate() {
            if !ids.insert(p.id.as_str()) {
                errs.push(FieldError::new(format!("project[{i}].id"), "listed twice"));
            }
            if let Err(e) = p.check(&self.assessment_body) {
                errs.extend(e.into_iter().map(|e| e.under(&format!("project[{i}]"))));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

impl Project {
    /// Checks a project entry: an id of 1 to 32 `a-z`, `0-9` or `_`, names
    /// filled, at least one programme, minimum hours 1 to 2,000, recognised
    /// assessment bodies among `bodies`, equipment with positive counts.
    pub fn check(&self, bodies: &[AssessmentBody]) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 32
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            errs.push(FieldError::new("id", "1 to 32 characters a-z, 0-9 or _"));
        }
        if !crate::text::filled(&self.name_zh, 50) {
            errs.push(FieldError::new(
                "name_zh",
                "must be 1 to 50 characters, not all blank",
            ));
        }
        if !crate::text::filled(&self.name_en, 100) {
            errs.push(FieldError::new(
                "name_en",
                "must be 1 to 100 characters, not all blank",
            ));
        }
        if !crate::text::filled(&self.reference, 300) {
            errs.push(FieldError::new(
                "reference",
                "must be 1 to 300 characters, not all blank",
            ));
        }
        if self.programmes.is_empty() {
            errs.push(FieldError::new(
                "programmes",
                "at least one programme (REF-PROGRAM)",
            ));
        }
        if !(1..=2_000).contains(&self.min_hours) {
            errs.push(FieldError::new("min_hours", "minimum hours are 1 to 2000"));
        }
        // The checks an occupation makes of the same fields.
        let as_occupation = Occupation {
            code: OccupationCode::parse("0-00-00-00").expect("a code"),
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            verified: false,
            levels: vec![SkillLevel::Five],
            min_hours: [("5".to_string(), 1)].into(),
            industries: if self.industries.is_empty() {
                vec!["A".into()]
            } else {
                self.industries.clone()
            },
            assessment_bodies: self.assessment_bodies.clone(),
            equipment: self.equipment.clone(),
        };
        if let Err(e) = as_occupation.check(bodies) {
            errs.extend(e.into_iter().filter(|e| !e.field.starts_with("name_")));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

impl Occupation {
    /// Checks an occupation entry: names filled, levels listed once, minimum
    /// hours (1 to 2,000) for every level it trains and for no other,
    /// industries as GB/T 4754 section letters, at least one recognised
    /// assessment body, each one of `bodies`, and every equipment need with
    /// an item and a positive count. Each problem names its field.
    pub fn check(&self, bodies: &[AssessmentBody]) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut err = |f: String, d: String| errs.push(FieldError::new(f, d));
        if !crate::text::filled(&self.name_zh, 50) {
            err(
                "name_zh".into(),
                "must be 1 to 50 characters, not all blank".into(),
            );
        }
        if !crate::text::filled(&self.name_en, 100) {
            err(
                "name_en".into(),
                "must be 1 to 100 characters, not all blank".into(),
            );
        }
        if self.levels.is_empty() {
            err("levels".into(), "at least one level is trained".into());
        }
        let mut levels = std::collections::BTreeSet::new();
        for (i, l) in self.levels.iter().enumerate() {
            if !levels.insert(l.number()) {
                err(
                    format!("levels[{i}]"),
                    format!("level {} is listed twice", l.number()),
                );
            }
        }
        for l in &levels {
            if !self.min_hours.contains_key(&l.to_string()) {
                err(
                    "min_hours".into(),
                    format!("no minimum hours for level {l}, which it trains"),
                );
            }
        }
        for (k, hours) in &self.min_hours {
            let field = format!("min_hours.{k}");
            match k.parse::<u8>() {
                Ok(n) if (1..=5).contains(&n) && k.len() == 1 => {
                    if !levels.contains(&n) {
                        err(
                            field.clone(),
                            format!("level {n} is not among the levels trained"),
                        );
                    }
                }
                _ => err(field.clone(), "keys are level numbers 1 to 5".into()),
            }
            if !(1..=2_000).contains(hours) {
                err(field, "minimum hours are 1 to 2000".into());
            }
        }
        if self.industries.is_empty() {
            err("industries".into(), "at least one GB/T 4754 section".into());
        }
        for (i, s) in self.industries.iter().enumerate() {
            let ok = s.len() == 1 && s.as_bytes()[0].is_ascii_uppercase() && s.as_str() <= "T";
            if !ok {
                err(
                    format!("industries[{i}]"),
                    "a GB/T 4754 section letter A to T".into(),
                );
            }
        }
        if self.assessment_bodies.is_empty() {
            err(
                "assessment_bodies".into(),
                "at least one recognised assessment body (CO-ASSESS)".into(),
            );
        }
        for (i, b) in self.assessment_bodies.iter().enumerate() {
            if !bodies.iter().any(|a| &a.credit_code == b) {
                err(
                    format!("assessment_bodies[{i}]"),
                    "not a described assessment body: describe it in assessment_bodies of the request".into(),
                );
            }
            if self.assessment_bodies[..i].contains(b) {
                err(format!("assessment_bodies[{i}]"), "listed twice".into());
            }
        }
        for (i, e) in self.equipment.iter().enumerate() {
            if !crate::text::filled(&e.item, 100) {
                err(
                    format!("equipment[{i}].item"),
                    "must be 1 to 100 characters, not all blank".into(),
                );
            }
            let positive = |n: Option<u32>| n.is_some_and(|n| n > 0);
            if !positive(e.per_trainees) && !positive(e.per_class) {
                err(
                    format!("equipment[{i}]"),
                    "per_trainees or per_class must be a positive number".into(),
                );
            }
            if e.per_trainees.is_some_and(|n| n > 1_000) || e.per_class.is_some_and(|n| n > 1_000) {
                err(format!("equipment[{i}]"), "counts are at most 1000".into());
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_toml_and_its_build_time_json_agree() {
        let from_toml = Catalogue::from_toml(include_str!("../data/occupations.toml")).unwrap();
        assert_eq!(&from_toml, Catalogue::shipped());
        let params = crate::Parameters::from_toml(include_str!("../data/parameters.toml")).unwrap();
        assert_eq!(&params, crate::Parameters::shipped());
    }

    #[test]
    fn shipped_catalogue_is_consistent() {
        let c = Catalogue::shipped();
        assert!(c.occupation.len() >= 8, "REF-OCC ships a real catalogue");
        for o in &c.occupation {
            assert!(!o.levels.is_empty(), "{} has levels", o.name_zh);
            assert!(
                !o.assessment_bodies.is_empty(),
                "{} has assessors",
                o.name_zh
            );
            assert!(!o.equipment.is_empty(), "{} has equipment", o.name_zh);
            for l in &o.levels {
                assert!(
                    o.min_hours_for(*l).is_some(),
                    "{} level {} hours",
                    o.name_zh,
                    l.number()
                );
            }
            for b in &o.assessment_bodies {
                assert!(b.check_ok(), "REF-USCC {b}");
                assert!(
                    c.assessment_body.iter().any(|a| &a.credit_code == b),
                    "{b} is described"
                );
            }
        }
    }

    #[test]
    fn co_equip_need_rounds_up_per_trainee_and_keeps_class_minimum() {
        let need = EquipmentNeed {
            item: "护理床".into(),
            per_trainees: Some(5),
            per_class: Some(2),
        };
        let cases = [(1, 2), (10, 2), (11, 3), (15, 3), (16, 4), (60, 12)];
        for (trainees, want) in cases {
            assert_eq!(
                need.required_for(trainees),
                want,
                "CO-EQUIP {trainees} trainees"
            );
        }
    }
}
