//! When a voucher may be used and when it may be paid: VO-OPEN, and the
//! settlement gates VO-FLOW, VO-ENDED, VO-CALLS, VO-4EYES with SC-DENY.
//!
//! A voucher is used (redeemed) when its class starts, so not before the
//! district office's 开班前验证 has opened the class (VO-OPEN). It is paid
//! (settled) once, and only when everything that could still stop the payment
//! is over: the voucher is redeemed (VO-FLOW), the last class day is past
//! (VO-ENDED), the 培训后考核 has passed and a certificate number is given
//! (VO-FLOW), every spot-check call of the class in every run is closed
//! (VO-CALLS), no finding holds the trainee or the class (SC-DENY), and the
//! officer who settles did not record the assessment themselves (VO-4EYES,
//! `vo_four_eyes`).

use super::{Action, VoucherState, rules, transition};
use crate::checks::ClassStatus;
use crate::decision::Decision;
use crate::params::{Parameters, names};
use chrono::NaiveDate;

/// VO-OPEN: whether vouchers of a class with `status` may be redeemed: only
/// once its pre-opening check has passed (the class is in training or beyond).
pub fn may_redeem(status: ClassStatus) -> bool {
    match status {
        ClassStatus::InTraining | ClassStatus::Assessed => true,
        ClassStatus::Approved | ClassStatus::Rejected => false,
    }
}

/// What settlement is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleFacts {
    /// The voucher's state.
    pub state: VoucherState,
    /// Whether the class's 培训后考核 is recorded as passed.
    pub assessed: bool,
    /// The certificate number given (trimmed; empty when none).
    pub certificate_no: String,
    /// Whether the trainee has an open spot-check finding.
    pub own_finding: bool,
    /// Open findings on other trainees of the class.
    pub other_findings: usize,
    /// The class's last class day.
    pub last_day: NaiveDate,
    /// Spot-check call tasks of the class, over every run, not closed yet.
    pub open_calls: usize,
    /// Who recorded the passed 培训后考核 (token subject), if anyone did.
    pub assessed_by: Option<String>,
    /// Who settles (token subject).
    pub settled_by: String,
    /// The legal date (today).
    pub on: NaiveDate,
}

/// VO-FLOW, VO-ENDED, VO-CALLS, VO-4EYES and SC-DENY: whether a voucher may be
/// settled, every gate explained, passed or not.
pub fn decide_settlement(f: &SettleFacts, params: &Parameters) -> Decision {
    let flow = rules::VO_FLOW;
    let mut findings = Vec::new();
    findings.push(match transition(f.state, Action::Settle) {
        Ok(_) => flow.pass("券已使用，可结算", "the voucher is redeemed"),
        Err(_) => flow
            .fail(
                format!("券状态为“{}”，只有“已使用”的券可以结算", f.state.name_zh()),
                format!(
                    "the voucher is {}; only a redeemed voucher can be settled",
                    f.state.id()
                ),
            )
            .compare("state", f.state.id(), "≠", "redeemed")
            .field("state"),
    });
    let ended = rules::VO_ENDED;
    findings.push(if f.on > f.last_day {
        ended.pass("培训已结束", "the last class day is past")
    } else {
        ended
            .fail(
                format!("培训尚未结束（最后一个培训日为 {}），不能结算", f.last_day),
                format!(
                    "the class's last day, {}, is not past; settlement waits until the day after",
                    f.last_day
                ),
            )
            .compare("today", f.on, "≤", f.last_day)
            .field("class.end_date")
    });
    findings.push(if f.assessed {
        flow.pass(
            "培训后考核已记录",
            "the post-training assessment is recorded",
        )
    } else {
        flow.fail(
            "班级尚未记录培训后考核，不能结算",
            "the class's post-training assessment is not recorded",
        )
        .field("class.checks")
    });
    findings.push(if crate::text::filled(&f.certificate_no, 64) {
        flow.pass("已填写证书编号", "a certificate number is given")
    } else {
        flow.fail(
            "结算须填写证书编号（1 至 64 个字符）",
            "settlement needs a certificate number of 1 to 64 characters",
        )
        .field("certificate_no")
    });
    let calls = rules::VO_CALLS;
    findings.push(if f.open_calls == 0 {
        calls.pass("班级电话抽查已全部完成", "every spot-check call of the class is closed")
    } else {
        calls
            .fail(
                format!("班级尚有 {} 个电话抽查任务未完成，暂不能结算", f.open_calls),
                format!(
                    "{} spot-check call(s) of the class are still open; settlement waits until every call is answered or the trainee is unreachable",
                    f.open_calls
                ),
            )
            .compare("open_calls", f.open_calls, ">", 0)
            .field("class.spot_checks")
    });
    let deny = rules::SC_DENY;
    findings.push(if f.own_finding {
        deny.fail(
            "该学员本人有未整改的电话抽查问题，券被冻结",
            "the trainee has an open spot-check finding; the voucher is held",
        )
        .field("class.findings")
    } else {
        deny.pass("学员本人无未整改问题", "no open finding on the trainee")
    });
    findings.push(if f.other_findings > 0 {
        deny.fail(
            format!(
                "班级其他学员有 {} 个未整改的电话抽查问题，整班暂停结算",
                f.other_findings
            ),
            format!(
                "the class has {} open spot-check finding(s) on other trainees; settlement of the class stops",
                f.other_findings
            ),
        )
        .compare("open_findings", f.other_findings, ">", 0)
        .field("class.findings")
    } else {
        deny.pass("班级无其他未整改问题", "no open finding on the class")
    });
    let four_eyes = params.at_or_first(names::VO_FOUR_EYES, f.on);
    let eyes = rules::VO_4EYES;
    let same = f.assessed_by.as_deref() == Some(f.settled_by.as_str());
    findings.push(if four_eyes.value == 0 {
        eyes.pass("未要求双人复核", "four-eyes settlement is off")
            .cite(&four_eyes)
    } else if same {
        eyes.fail(
            "记录培训后考核的工作人员不能结算本班的培训券",
            "the officer who recorded the post-training assessment may not settle the class's vouchers; another officer must",
        )
        .field("class.checks")
        .cite(&four_eyes)
    } else {
        eyes.pass(
            "结算人与考核记录人不同",
            "the settling officer did not record the assessment",
        )
        .cite(&four_eyes)
    });
    Decision::from_findings(f.on, findings)
}

#[cfg(test)]
mod tests;
