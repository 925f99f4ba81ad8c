//! Registry entries the class-opening rules are decided against: institutions
//! on file (CO-INST), trainers on the provincial platform (CO-TRAINER),
//! courseware and its approval (CO-ONLINE), and the ministry's planned-textbook
//! catalogue (CO-TEXTBOOK). Officers maintain them through the registry routes.

use crate::ids::{AreaCode, CreditCode, OccupationCode};
use serde::{Deserialize, Serialize};

/// Filing status of a training institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstitutionStatus {
    /// 已报备: on file and may open classes.
    Filed,
    /// 暂停: suspended by the district office.
    Suspended,
    /// 黑名单: blacklisted.
    Blacklisted,
}

/// A training institution (培训机构).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    /// Unified social credit code.
    pub credit_code: CreditCode,
    /// Name.
    pub name: String,
    /// Filing status.
    pub status: InstitutionStatus,
    /// Districts whose office it is on file with (报备).
    pub filed_districts: Vec<AreaCode>,
    /// Occupations it is qualified to assess (职业鉴定/评价资质), if any.
    #[serde(default)]
    pub assessment_qualifications: Vec<OccupationCode>,
}

/// Registration status of a trainer on the provincial platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerStatus {
    /// Registered on 云南省职业技能网络培训平台.
    Registered,
    /// Registration revoked.
    Revoked,
}

/// A trainer (培训师资).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trainer {
    /// Platform registration number.
    pub registration_no: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: TrainerStatus,
}

/// Review status of online courseware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoursewareStatus {
    /// Under review.
    Pending,
    /// Approved and published on the provincial platform.
    Approved,
    /// Failed review: may not be used for subsidised training.
    Rejected,
}

/// Online courseware (线上课件).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Courseware {
    /// Platform id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Review status.
    pub status: CoursewareStatus,
}

/// A title of the ministry's planned-textbook catalogue (职业培训规划教材选用目录).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueTextbook {
    /// ISBN as printed.
    pub isbn: String,
    /// Title.
    pub title: String,
}

/// Normalises an ISBN for comparison: digits and `X` only.
pub fn normalize_isbn(isbn: &str) -> String {
    isbn.chars()
        .filter(|c| c.is_ascii_digit() || *c == 'X' || *c == 'x')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Registry ids are short printable strings: at most 64 characters of letters, digits, `-` and `_`.
pub fn registry_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
