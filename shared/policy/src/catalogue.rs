//! The occupation catalogue (REF-OCC), shipped as data in `data/occupations.toml`.
//!
//! For each occupation: levels trained, minimum class hours per level, the
//! teaching equipment a class needs (CO-EQUIP), the industries it serves
//! (CO-RELEVANT) and the recognised assessment bodies (CO-ASSESS).

use crate::ids::{CreditCode, OccupationCode, SkillLevel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

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

/// The whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Occupations.
    pub occupation: Vec<Occupation>,
    /// Assessment bodies named by occupations.
    pub assessment_body: Vec<AssessmentBody>,
}

/// `data/occupations.toml` as JSON, made by `build.rs`.
const SHIPPED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/occupations.json"));

impl Catalogue {
    /// The catalogue shipped with this build.
    pub fn shipped() -> &'static Catalogue {
        static C: OnceLock<Catalogue> = OnceLock::new();
        C.get_or_init(Self::read_shipped)
    }

    /// Reads the shipped catalogue anew, uncached: what a component instance
    /// pays on its first use (an instance lives for one request).
    pub fn read_shipped() -> Catalogue {
        serde_json::from_str(SHIPPED_JSON).expect("shipped catalogue is valid")
    }

    /// Parses a catalogue file.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The occupation with `code`.
    pub fn occupation(&self, code: &OccupationCode) -> Option<&Occupation> {
        self.occupation.iter().find(|o| &o.code == code)
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
