//! The names rules can read, by scope. Account rules see the account's fields, its portfolio
//! facts, the `portfolio.*` aggregates, the workbook's extra columns, params, measures and
//! table outputs; KAM checks see per-KAM facts and params; portfolio checks see `portfolio.*`
//! and params. `docs/rules.md` lists them with their meaning.

/// Account fields and per-account aggregates: (name, meaning).
pub const ACCOUNT_FIELDS: &[(&str, &str)] = &[
    ("id", "account id"),
    ("name", "account name"),
    ("kam_id", "KAM id"),
    ("industry", "industry"),
    ("region", "region"),
    ("level", "key level: company, manager or department"),
    ("revenue", "revenue for the period"),
    ("gross_profit", "gross profit for the period"),
    ("wallet", "the client's budget for our category"),
    ("reference", "reference / well-known client (yes/no)"),
    ("brand_score", "brand standing score"),
    ("partnership", "partnership openness score"),
    ("competence", "competence score"),
    ("innovator", "innovator (yes/no)"),
    ("history", "dossier: history"),
    ("needs", "dossier: needs"),
    ("development_plans", "dossier: development plans"),
    ("contacts", "number of DMU contacts"),
    (
        "avg_relationship",
        "average relationship strength of the contacts",
    ),
    ("avg_influence", "average influence of the contacts"),
    (
        "weighted_relationship",
        "relationship strength averaged with influence as weight",
    ),
    ("activities", "number of activities"),
    ("tenders", "number of tenders"),
    ("tenders_won", "number of tenders won"),
    ("plan_items", "number of plan items the KAM wrote"),
];

/// Per-account facts from the portfolio pass: (name, meaning).
pub const ACCOUNT_FACTS: &[(&str, &str)] = &[
    (
        "share",
        "share of the portfolio on the basis (gross profit or revenue)",
    ),
    ("profit_share", "share of total gross profit"),
    ("revenue_share", "share of total revenue"),
    (
        "rank",
        "rank by the basis value, 1 = largest (ties by account id)",
    ),
    (
        "cum_share_before",
        "cumulative share of the accounts ranked above",
    ),
    ("cum_share", "cumulative share including this account"),
    ("abc", "ABC class: 'A', 'B' or 'C'"),
    ("pareto", "in the Pareto set (class A)"),
];

/// Portfolio aggregates: (name, meaning).
pub const PORTFOLIO_FACTS: &[(&str, &str)] = &[
    ("portfolio.accounts", "number of accounts"),
    ("portfolio.basis", "'gross_profit' or 'revenue'"),
    ("portfolio.total_gross_profit", "total gross profit"),
    ("portfolio.total_revenue", "total revenue"),
    ("portfolio.total_basis", "total on the basis"),
    (
        "portfolio.hhi",
        "Herfindahl–Hirschman index of the basis shares (0–1)",
    ),
    ("portfolio.hhi_10000", "the same ×10 000"),
    ("portfolio.top1_share", "share of the largest account"),
    ("portfolio.top5_share", "share of the five largest accounts"),
    ("portfolio.pareto_accounts", "accounts in the Pareto set"),
    ("portfolio.innovators", "accounts flagged innovator"),
    ("portfolio.innovator_share", "innovators / accounts"),
];

/// Per-KAM facts for `kam_checks`: (name, meaning).
pub const KAM_FACTS: &[(&str, &str)] = &[
    ("kam_id", "the KAM's id"),
    ("accounts", "accounts of the KAM"),
    (
        "key_accounts",
        "company-level accounts of the KAM in a band marked key",
    ),
    (
        "key_accounts_all_levels",
        "accounts of the KAM in a band marked key, any level",
    ),
];

/// True when a pack may not define `name` (it is a field or fact).
pub fn is_reserved(name: &str) -> bool {
    name == "points"
        || name.starts_with("portfolio.")
        || ACCOUNT_FIELDS
            .iter()
            .chain(ACCOUNT_FACTS)
            .any(|(n, _)| *n == name)
}
