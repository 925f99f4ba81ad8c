//! Closed reference lists of the plan: target groups (REF-GROUP), fund sources
//! (REF-FUND), programmes (REF-PROGRAM), certificate and training kinds, and
//! the cross-cutting topics every class must weave in (CO-TOPICS).
//!
//! In JSON each is its `snake_case` English name; the Chinese name is available
//! for user-facing text.

use serde::{Deserialize, Serialize};

macro_rules! closed_list {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $zh:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The Chinese name used in user-facing text.
            pub fn name_zh(self) -> &'static str {
                match self { $($name::$variant => $zh,)+ }
            }

            /// The `snake_case` identifier used in JSON and keys.
            pub fn id(self) -> String {
                serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            }
        }
    };
}

closed_list! {
    /// Target groups of subsidised training (REF-GROUP, plan 一(二), 二(二), 二(三)2).
    TargetGroup {
        /// 企业职工 (incl. dispatched and de-facto employees).
        EnterpriseEmployee => "企业职工",
        /// 脱贫劳动力.
        PovertyAlleviated => "脱贫劳动力",
        /// 就业困难人员 (incl. disabled).
        EmploymentDifficulty => "就业困难人员",
        /// 两后生 (rural; urban 低保 families).
        LiangHouSheng => "两后生",
        /// 灵活就业人员.
        FlexibleEmployment => "灵活就业人员",
        /// 毕业年度高校毕业生.
        GraduateThisYear => "毕业年度高校毕业生",
        /// 离校2年内未就业高校毕业生 (incl. 技工院校).
        UnemployedGraduate => "离校2年内未就业高校毕业生",
        /// 到达退休年龄未按月领取养老保险人员.
        RetirementAgeWithoutPension => "到达退休年龄未按月领取养老保险人员",
        /// 退捕渔民.
        RetiredFisher => "退捕渔民",
        /// 搬迁劳动力.
        RelocatedWorker => "搬迁劳动力",
        /// 退役军人.
        Veteran => "退役军人",
        /// 农村转移就业劳动力.
        RuralMigrantWorker => "农村转移就业劳动力",
    }
}

closed_list! {
    /// Fund sources (REF-FUND, plan 三).
    FundSource {
        /// 就业补助资金.
        EmploymentSubsidy => "就业补助资金",
        /// 失业保险基金.
        UnemploymentInsurance => "失业保险基金",
        /// 职业技能提升行动专账结余资金.
        SkillsActionBalance => "职业技能提升行动专账结余资金",
        /// 财政资金.
        Fiscal => "财政资金",
        /// 东西部合作资金.
        EastWestCooperation => "东西部合作资金",
    }
}

closed_list! {
    /// Programmes a class belongs to (REF-PROGRAM, plan 二(三)1–8).
    Programme {
        /// 职业技能提升行动 (enterprise staff).
        SkillsUpgradeAction => "职业技能提升行动",
        /// 乡村振兴技能人才计划.
        RuralRevitalisation => "乡村振兴技能人才计划",
        /// 马兰花计划 (SYB and online entrepreneurship).
        Malanhua => "马兰花计划",
        /// 高校毕业生职业技能提升计划.
        GraduateSkills => "高校毕业生职业技能提升计划",
        /// 康养云师傅.
        KangyangYunShifu => "康养云师傅",
        /// 技工院校专项培训.
        TechnicalSchool => "技工院校专项培训",
        /// 企业新型学徒制.
        Apprenticeship => "企业新型学徒制",
    }
}

closed_list! {
    /// What a class leads to.
    Certificate {
        /// 职业资格证书.
        VocationalQualification => "职业资格证书",
        /// 职业技能等级证书.
        SkillLevel => "职业技能等级证书",
        /// 专项职业能力证书 / 培训合格证书: entry-level, kept under control (CO-ENTRY).
        TrainingCompletion => "培训合格证书",
        /// 创业培训合格证书 (SYB, 网络创业).
        Entrepreneurship => "创业培训合格证书",
    }
}

closed_list! {
    /// Kind of training, which sets size limits (CO-SIZE) and duration rules (CO-APPRENTICE).
    TrainingKind {
        /// 职业技能培训.
        Skills => "职业技能培训",
        /// 创业培训 (SYB, 网络创业).
        Entrepreneurship => "创业培训",
        /// 企业新型学徒制.
        Apprenticeship => "企业新型学徒制",
    }
}

closed_list! {
    /// Topics a schedule must include (CO-TOPICS, plan 二(五)); `occupation` is the trade itself.
    Topic {
        /// The occupation's own content.
        Occupation => "职业技能",
        /// 法律法规.
        LawAndRegulations => "法律法规",
        /// 禁毒.
        DrugControl => "禁毒",
        /// 防艾.
        HivPrevention => "防艾",
        /// 智能手机使用.
        SmartphoneUse => "智能手机使用",
        /// 国家通用语言文字 / 普通话.
        Putonghua => "国家通用语言文字（普通话）",
    }
}

impl Topic {
    /// The topics CO-TOPICS requires.
    pub const REQUIRED: &'static [Topic] = &[
        Topic::LawAndRegulations,
        Topic::DrugControl,
        Topic::HivPrevention,
        Topic::SmartphoneUse,
        Topic::Putonghua,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_group_fund_programme_lists_are_complete() {
        assert_eq!(TargetGroup::ALL.len(), 12, "REF-GROUP");
        assert_eq!(FundSource::ALL.len(), 5, "REF-FUND");
        assert_eq!(Programme::ALL.len(), 7, "REF-PROGRAM");
        assert_eq!(TargetGroup::LiangHouSheng.id(), "liang_hou_sheng");
        assert_eq!(FundSource::Fiscal.name_zh(), "财政资金");
    }

    #[test]
    fn ref_group_rejects_unknown_groups() {
        let ok: Result<TargetGroup, _> = serde_json::from_str("\"veteran\"");
        let bad: Result<TargetGroup, _> = serde_json::from_str("\"tourist\"");
        assert_eq!(ok.unwrap(), TargetGroup::Veteran, "REF-GROUP");
        assert!(bad.is_err(), "REF-GROUP unknown group");
    }
}
