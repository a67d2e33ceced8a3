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

/// What KAM rules (measures, tables, criteria, mistakes of a `scope: kams` pack) read about
/// each KAM besides the metrics, params and the Managers sheet's extra columns.
pub const KAM_FIELDS: &[(&str, &str)] = &[
    ("kam_id", "the KAM's id"),
    ("name", "the KAM's name (Managers sheet)"),
    ("region", "region"),
    ("level", "development level recorded: 'D1' … 'D4'"),
    ("plan", "sales plan for the period"),
    ("product_knowledge", "product knowledge assessment score"),
    ("commission_basis", "'margin' or 'deal'"),
    ("commission_rate", "commission rate (fraction)"),
    ("accounts", "accounts of the KAM"),
    (
        "key_accounts",
        "company-level accounts of the KAM in a band marked key",
    ),
    (
        "key_accounts_all_levels",
        "accounts of the KAM in a band marked key, any level",
    ),
    ("period", "the period judged, e.g. '2026' or '2026-Q3'"),
    ("period_start", "first day of the period"),
    ("period_end", "last day of the period"),
    (
        "as_of",
        "the day the data runs to: the period's end, or the latest activity if earlier",
    ),
    ("activities_in_period", "the KAM's activities in the period"),
    (
        "activities_outside_period",
        "the KAM's activities outside the period (ignored)",
    ),
    (
        "tenders_outside_period",
        "tenders of the KAM outside the period (ignored)",
    ),
    (
        "pay",
        "pay for the period (sum of the deal lines that are known)",
    ),
    ("pay.deals", "deal rows the pay rules looked at"),
    ("pay.unknown", "deal rows whose pay is not known"),
    (
        "dossier.completeness",
        "average dossier completeness of the accounts judged",
    ),
    ("dossier.accounts", "accounts whose dossier is judged"),
    ("mistakes.observed", "number of mistakes observed"),
    ("mistakes.known", "number of mistakes that could be judged"),
];

/// Names every row of a KAM metric sees besides its own sheet's fields: the account it belongs
/// to, the KAM, and the period.
pub const ROW_COMMON: &[(&str, &str)] = &[
    ("account.id", "the row's account id"),
    ("account.name", "the row's account name"),
    ("account.level", "the account's key level"),
    (
        "account.key",
        "the account is in a band marked key (yes/no)",
    ),
    ("account.band", "the account's band"),
    ("account.gross_profit", "the account's gross profit"),
    ("kam.id", "the KAM's id"),
    ("kam.level", "the KAM's recorded level"),
    ("kam.commission_basis", "'margin' or 'deal'"),
    ("kam.commission_rate", "the KAM's commission rate"),
    ("period_start", "first day of the period"),
    ("period_end", "last day of the period"),
    ("as_of", "the day the data runs to"),
];

/// Activity row fields (`over: activities`).
pub const ACTIVITY_ROW: &[(&str, &str)] = &[
    (
        "kind",
        "meeting, call, proposal, complaint, reference_letter, referral or deal",
    ),
    ("date", "date"),
    ("planned_start", "planned start (date and time)"),
    ("actual_start", "actual start (date and time)"),
    ("agenda", "agenda prepared (yes/no)"),
    ("argued", "client feedback: argued (yes/no)"),
    ("interrupted", "client feedback: interrupted (yes/no)"),
    ("bad_manners", "client feedback: bad manners (yes/no)"),
    ("next_step", "next step agreed (yes/no)"),
    ("confirmed", "date the client confirmed the proposal"),
    ("followed_up", "date the proposal was followed up"),
    ("expiry", "proposal expiry date"),
    ("dmu_roles", "DMU roles the proposal addresses"),
    ("resolved", "date the complaint was resolved"),
    ("amount", "amount"),
    ("margin", "margin"),
    ("notes", "notes"),
    ("minutes_late", "actual start − planned start, in minutes"),
    (
        "days_to_confirm",
        "business days from the proposal to the client's confirmation",
    ),
    (
        "days_to_follow_up",
        "business days from the proposal to the follow-up",
    ),
    ("days_open", "business days from the date to as_of"),
    (
        "days_to_resolve",
        "calendar days from the complaint to its resolution",
    ),
    (
        "days_valid",
        "calendar days from the proposal to its expiry",
    ),
];

/// Contact row fields (`over: contacts`).
pub const CONTACT_ROW: &[(&str, &str)] = &[
    ("name", "contact name"),
    (
        "role",
        "DMU role: executive, finance, technical, hr, user, procurement, vip, kol, coach",
    ),
    ("influence", "influence score"),
    ("relationship", "relationship strength score"),
    ("attitude", "attitude towards us"),
    ("birthday", "birthday"),
    ("hobbies", "hobbies"),
    ("family", "family"),
    ("values", "values"),
    ("last_contact", "date of the last contact"),
    (
        "days_since_contact",
        "calendar days from the last contact to as_of",
    ),
];

/// Tender row fields (`over: tenders`).
pub const TENDER_ROW: &[(&str, &str)] = &[
    ("name", "subject"),
    ("date", "tender date"),
    ("prep_start", "preparation start"),
    ("value", "value"),
    ("outcome", "won, lost, pending or cancelled"),
    (
        "prep_months",
        "calendar months from the preparation start to the tender",
    ),
];

/// Account row fields (`over: accounts`).
pub const ACCOUNT_ROW: &[(&str, &str)] = &[
    ("id", "account id"),
    ("name", "account name"),
    ("level", "key level"),
    ("industry", "industry"),
    ("region", "region"),
    ("revenue", "revenue (Accounts sheet, or Transactions)"),
    (
        "gross_profit",
        "gross profit (Accounts sheet, or Transactions)",
    ),
    ("wallet", "the client's budget for our category"),
    ("share_of_wallet", "revenue / wallet"),
    ("reference", "reference client (yes/no)"),
    ("history", "dossier: history"),
    ("needs", "dossier: needs"),
    ("development_plans", "dossier: development plans"),
    ("key", "in a band marked key (yes/no)"),
    ("band", "band"),
    ("score", "key-client score"),
    ("revenue_period", "revenue in the period from Transactions"),
    (
        "revenue_previous",
        "revenue in the previous period from Transactions",
    ),
    (
        "gross_profit_period",
        "gross profit in the period from Transactions",
    ),
    (
        "gross_profit_previous",
        "gross profit in the previous period from Transactions",
    ),
    ("contacts", "DMU contacts"),
    ("meetings", "meetings in the period"),
    ("proposals", "proposals in the period"),
    ("deals", "deals in the period"),
    ("complaints", "complaints in the period"),
    ("open_complaints", "complaints in the period not resolved"),
    ("reference_letters", "reference letters in the period"),
    ("referrals", "referrals in the period"),
    ("dossier_completeness", "share of the dossier items filled"),
    ("dossier_gaps", "the dossier items missing, named"),
];

/// True when a KAM pack may not define `name` (it is a KAM field).
pub fn is_reserved_kam(name: &str) -> bool {
    name == "points" || KAM_FIELDS.iter().any(|(n, _)| *n == name)
}

/// True when a pack may not define `name` (it is a field or fact).
pub fn is_reserved(name: &str) -> bool {
    name == "points"
        || name.starts_with("portfolio.")
        || ACCOUNT_FIELDS
            .iter()
            .chain(ACCOUNT_FACTS)
            .any(|(n, _)| *n == name)
}
