//! Explained decisions: every rule checked, passed or not, with the figures
//! compared, the parameter values that decided (`name@since`), the source
//! paragraph, the severity, and messages in Chinese and English.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What a failed rule does to the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The class is not approved / the voucher is not issued.
    Block,
    /// Approved, but the finding is shown and recorded.
    Warn,
}

/// The result of one rule on one subject (the class, a roster line, a trainer…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id from POLICY.md, for example `CO-HOURS`.
    pub rule: String,
    /// Whether the rule held.
    pub passed: bool,
    /// What a failure does.
    pub severity: Severity,
    /// JSON path of the field concerned, when there is one (`roster[16].id_number`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The observed figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// The limit it was compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The comparison in one line, for example `class_hours: 96 < 120`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    /// Parameter values that decided, as `name@since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
    /// Source paragraph of the rule.
    pub source: String,
    /// Message in Chinese.
    pub message_zh: String,
    /// Message in English.
    pub message_en: String,
}

/// Static facts about a rule: its id, severity and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Rule id.
    pub id: &'static str,
    /// Severity of a failure.
    pub severity: Severity,
    /// Source paragraph.
    pub source: &'static str,
}

impl Rule {
    /// A finding of this rule; fill in details with the builder methods.
    pub fn finding(
        &self,
        passed: bool,
        message_zh: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            passed,
            severity: self.severity,
            field: None,
            observed: None,
            limit: None,
            comparison: None,
            parameters: Vec::new(),
            source: self.source.to_string(),
            message_zh: message_zh.into(),
            message_en: message_en.into(),
        }
    }

    /// A passing finding.
    pub fn pass(&self, message_zh: impl Into<String>, message_en: impl Into<String>) -> Finding {
        self.finding(true, message_zh, message_en)
    }

    /// A failing finding.
    pub fn fail(&self, message_zh: impl Into<String>, message_en: impl Into<String>) -> Finding {
        self.finding(false, message_zh, message_en)
    }
}

impl Finding {
    /// Names the field concerned.
    pub fn field(mut self, path: impl Into<String>) -> Self {
        self.field = Some(path.into());
        self
    }

    /// Records the observed value, the limit and the comparison line.
    pub fn compare(
        mut self,
        what: &str,
        observed: impl std::fmt::Display,
        op: &str,
        limit: impl std::fmt::Display,
    ) -> Self {
        self.comparison = Some(format!("{what}: {observed} {op} {limit}"));
        self.observed = Some(observed.to_string());
        self.limit = Some(limit.to_string());
        self
    }

    /// Cites a parameter value.
    pub fn cite(mut self, applied: &crate::params::Applied) -> Self {
        self.parameters.push(applied.label());
        self
    }

    /// Overrides the severity (CO-TEXTBOOK is warn or block by case).
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Whether this finding stops the decision.
    pub fn blocks(&self) -> bool {
        !self.passed && self.severity == Severity::Block
    }

    /// Whether this finding is a warning to show.
    pub fn warns(&self) -> bool {
        !self.passed && self.severity == Severity::Warn
    }
}

/// Outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No blocking finding.
    Approved,
    /// At least one blocking finding.
    Rejected,
}

/// Which version of the bureau's policy data a decision was evaluated
/// against: its number and the SHA-256 of its data ([`crate::data`]), so that
/// an old decision can be explained after the data changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Version number, from 1 (the shipped defaults).
    pub version: u64,
    /// SHA-256 (hex) of the version's data.
    pub digest: String,
}

impl PolicyRef {
    /// `policy@3`, as findings cite it.
    pub fn label(&self) -> String {
        format!("policy@{}", self.version)
    }
}

/// A decision with every finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved or rejected.
    pub outcome: Outcome,
    /// The legal date the parameters were taken at.
    pub evaluated_on: NaiveDate,
    /// The policy version the rules read (absent in decisions made before
    /// policy data was versioned, and in decisions that read no policy data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// Rule ids that blocked, in order of first appearance.
    pub blocking_rules: Vec<String>,
    /// Rule ids that warned, in order of first appearance.
    pub warning_rules: Vec<String>,
    /// Every finding, passed or not.
    pub findings: Vec<Finding>,
}

impl Decision {
    /// Builds a decision from findings: rejected when any finding blocks.
    pub fn from_findings(evaluated_on: NaiveDate, findings: Vec<Finding>) -> Self {
        let mut blocking_rules: Vec<String> = Vec::new();
        let mut warning_rules: Vec<String> = Vec::new();
        for f in &findings {
            let list = if f.blocks() {
                &mut blocking_rules
            } else if f.warns() {
                &mut warning_rules
            } else {
                continue;
            };
            if !list.contains(&f.rule) {
                list.push(f.rule.clone());
            }
        }
        let outcome = if blocking_rules.is_empty() {
            Outcome::Approved
        } else {
            Outcome::Rejected
        };
        Self {
            outcome,
            evaluated_on,
            policy: None,
            blocking_rules,
            warning_rules,
            findings,
        }
    }

    /// The same decision, naming the policy version it was evaluated against.
    pub fn under(mut self, policy: &PolicyRef) -> Self {
        self.policy = Some(policy.clone());
        self
    }

    /// Findings of one rule.
    pub fn of(&self, rule: &str) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.rule == rule)
    }

    /// Whether `rule` failed at least once.
    pub fn failed(&self, rule: &str) -> bool {
        self.of(rule).any(|f| !f.passed)
    }

    /// Whether `rule` was checked and never failed.
    pub fn passed(&self, rule: &str) -> bool {
        self.of(rule).next().is_some() && !self.failed(rule)
    }
}
