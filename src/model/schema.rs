//! The workbook data model: sheets, their canonical fields, types and built-in header aliases.
//!
//! This table is the single source of truth for import (header matching), `kam schema` and
//! `docs/workbook.md`. Aliases are written naturally; matching ignores case, spaces and
//! punctuation (see [`normalize_key`]).

/// The sheets kam understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SheetKind {
    /// One row per client.
    Accounts,
    /// Raw sales lines.
    Transactions,
    /// The decision-making unit per account.
    Contacts,
    /// Meetings, calls, proposals, complaints, reference letters, referrals, deals.
    Activities,
    /// Tenders per account.
    Tenders,
    /// Key account managers.
    Managers,
    /// The KAM's own plan items per account.
    Plans,
}

impl SheetKind {
    /// All sheets in import order (Accounts first: child sheets refer to it).
    pub const ALL: [SheetKind; 7] = [
        SheetKind::Accounts,
        SheetKind::Managers,
        SheetKind::Transactions,
        SheetKind::Contacts,
        SheetKind::Activities,
        SheetKind::Tenders,
        SheetKind::Plans,
    ];

    /// The canonical sheet name.
    pub fn name(self) -> &'static str {
        match self {
            SheetKind::Accounts => "Accounts",
            SheetKind::Transactions => "Transactions",
            SheetKind::Contacts => "Contacts",
            SheetKind::Activities => "Activities",
            SheetKind::Tenders => "Tenders",
            SheetKind::Managers => "Managers",
            SheetKind::Plans => "Plans",
        }
    }

    /// Finds a sheet kind by its canonical name (case-, space- and punctuation-insensitive).
    pub fn from_name(name: &str) -> Option<SheetKind> {
        let key = normalize_key(name);
        SheetKind::ALL
            .into_iter()
            .find(|k| normalize_key(k.name()) == key)
    }

    /// Built-in sheet-name aliases (English, Russian, Azerbaijani).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            SheetKind::Accounts => &[
                "Accounts",
                "Clients",
                "Customers",
                "Key accounts",
                "Account list",
                "Клиенты",
                "Покупатели",
                "Контрагенты",
                "Аккаунты",
                "Müştərilər",
                "Hesablar",
            ],
            SheetKind::Transactions => &[
                "Transactions",
                "Sales",
                "Invoices",
                "Sales lines",
                "Orders",
                "Продажи",
                "Транзакции",
                "Реализация",
                "Отгрузки",
                "Satışlar",
                "Əməliyyatlar",
            ],
            SheetKind::Contacts => &[
                "Contacts",
                "DMU",
                "People",
                "Контакты",
                "ЛПР",
                "Kontaktlar",
                "Əlaqələr",
            ],
            SheetKind::Activities => &[
                "Activities",
                "Activity",
                "Meetings",
                "Interactions",
                "Активности",
                "Действия",
                "Встречи",
                "Fəaliyyətlər",
                "Görüşlər",
            ],
            SheetKind::Tenders => &["Tenders", "Тендеры", "Торги", "Tenderlər"],
            SheetKind::Managers => &[
                "Managers",
                "KAMs",
                "Key account managers",
                "Team",
                "Менеджеры",
                "Команда",
                "Menecerlər",
                "Komanda",
            ],
            SheetKind::Plans => &[
                "Plans",
                "Account plans",
                "Планы",
                "План",
                "Planlar",
                "Hesab planları",
            ],
        }
    }

    /// What the sheet holds, for `kam schema` and the docs.
    pub fn description(self) -> &'static str {
        match self {
            SheetKind::Accounts => {
                "One row per client. Required unless Transactions is present, in which case \
                 accounts are derived from the distinct account ids (and names) there."
            }
            SheetKind::Transactions => {
                "Raw sales lines, netted per account and per quarter (returns and credit notes \
                 subtract). Fills revenue and gross profit of accounts that do not state them."
            }
            SheetKind::Contacts => {
                "The decision-making unit (DMU) of each account and the dossier on each person."
            }
            SheetKind::Activities => {
                "What the KAM did: meetings, calls, proposals, complaints, reference letters, \
                 referrals and deals, one row each."
            }
            SheetKind::Tenders => "Tenders per account: date, preparation start, value, outcome.",
            SheetKind::Managers => {
                "Key account managers: development level, plan, assessments, commission terms."
            }
            SheetKind::Plans => {
                "The KAM's own judgement per account, one item per row: objectives, strategy, \
                 value proposition, SWOT notes and actions. kam carries it, never invents it."
            }
        }
    }

    /// The canonical fields of the sheet.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            SheetKind::Accounts => ACCOUNTS,
            SheetKind::Transactions => TRANSACTIONS,
            SheetKind::Contacts => CONTACTS,
            SheetKind::Activities => ACTIVITIES,
            SheetKind::Tenders => TENDERS,
            SheetKind::Managers => MANAGERS,
            SheetKind::Plans => PLANS,
        }
    }

    /// Index of a canonical field of this sheet.
    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name == name)
    }
}

/// How a field's cells are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// An identifier: numbers become text without `.0` (`17850.0` → `17850`).
    Id,
    /// Free text.
    Text,
    /// A number (counts, scores).
    Number,
    /// An amount of money; accepts `1 234,56`, `1,234.56`, `(120)` and currency signs.
    Money,
    /// A fraction; `15%` and plain `15` both read as 0.15, `0.15` stays 0.15.
    Percent,
    /// Yes/no: yes/no, true/false, 1/0, y/n, x, да/нет, bəli/xeyr, var/yox.
    Bool,
    /// A date or date-time (Excel serials in either date system, ISO text, `DD.MM.YYYY`).
    Date,
    /// One of a fixed set of values, each with aliases.
    Choice(&'static [ChoiceSpec]),
}

impl FieldKind {
    /// A short name for the kind, for `kam schema`.
    pub fn label(self) -> &'static str {
        match self {
            FieldKind::Id => "id",
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Money => "money",
            FieldKind::Percent => "percent",
            FieldKind::Bool => "yes/no",
            FieldKind::Date => "date",
            FieldKind::Choice(_) => "choice",
        }
    }
}

/// One allowed value of a choice field with the words that mean it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChoiceSpec {
    /// The canonical value.
    pub value: &'static str,
    /// Words that mean it (English, Russian, Azerbaijani).
    pub aliases: &'static [&'static str],
}

/// Whether a choice field accepts values outside its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Openness {
    /// Unknown values are rejected.
    Closed,
    /// Unknown values are kept as written.
    Open,
}

/// A canonical field of a sheet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSpec {
    /// Canonical name, as rules see it.
    pub name: &'static str,
    /// How cells are read.
    pub kind: FieldKind,
    /// A row without this field is rejected.
    pub required: bool,
    /// For choice fields: whether unknown values are kept.
    pub openness: Openness,
    /// Header aliases (English, Russian, Azerbaijani).
    pub aliases: &'static [&'static str],
    /// One-line description.
    pub doc: &'static str,
}

const fn f(
    name: &'static str,
    kind: FieldKind,
    aliases: &'static [&'static str],
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
        openness: Openness::Closed,
        aliases,
        doc,
    }
}

const fn req(
    name: &'static str,
    kind: FieldKind,
    aliases: &'static [&'static str],
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
        openness: Openness::Closed,
        aliases,
        doc,
    }
}

const fn open(
    name: &'static str,
    kind: FieldKind,
    aliases: &'static [&'static str],
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
        openness: Openness::Open,
        aliases,
        doc,
    }
}

const ACCOUNT_REF: &[&str] = &[
    "account id",
    "account",
    "account no",
    "account number",
    "client id",
    "customer id",
    "customer no",
    "customer number",
    "client",
    "customer",
    "код клиента",
    "id клиента",
    "клиент",
    "код контрагента",
    "контрагент",
    "покупатель",
    "müştəri kodu",
    "müştəri id",
    "müştəri",
];
const KAM_REF: &[&str] = &[
    "kam",
    "kam id",
    "manager",
    "manager id",
    "account manager",
    "key account manager",
    "owner",
    "sales rep",
    "менеджер",
    "ответственный менеджер",
    "код менеджера",
    "menecer",
    "menecer id",
    "menecer kodu",
    "hesab meneceri",
];

/// Key-client levels.
pub const LEVELS: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "company",
        aliases: &["company", "corporate", "компания", "компании", "şirkət"],
    },
    ChoiceSpec {
        value: "manager",
        aliases: &["manager", "kam", "менеджер", "менеджера", "menecer"],
    },
    ChoiceSpec {
        value: "department",
        aliases: &[
            "department",
            "division",
            "отдел",
            "отдела",
            "департамент",
            "şöbə",
        ],
    },
];

/// DMU roles.
pub const ROLES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "executive",
        aliases: &[
            "executive",
            "ceo",
            "director",
            "general manager",
            "owner",
            "economic buyer",
            "директор",
            "руководитель",
            "генеральный директор",
            "собственник",
            "rəhbər",
            "direktor",
            "icraçı",
        ],
    },
    ChoiceSpec {
        value: "finance",
        aliases: &[
            "finance",
            "cfo",
            "financial",
            "accountant",
            "финансы",
            "финансовый директор",
            "бухгалтер",
            "maliyyə",
            "mühasib",
        ],
    },
    ChoiceSpec {
        value: "technical",
        aliases: &[
            "technical",
            "engineer",
            "it",
            "cto",
            "technical buyer",
            "технический",
            "технический специалист",
            "инженер",
            "texniki",
            "mühəndis",
        ],
    },
    ChoiceSpec {
        value: "hr",
        aliases: &[
            "hr",
            "human resources",
            "personnel",
            "кадры",
            "hr директор",
            "персонал",
            "kadrlar",
            "insan resursları",
        ],
    },
    ChoiceSpec {
        value: "user",
        aliases: &["user", "user buyer", "пользователь", "istifadəçi"],
    },
    ChoiceSpec {
        value: "procurement",
        aliases: &[
            "procurement",
            "purchasing",
            "buyer",
            "закупки",
            "снабжение",
            "satınalma",
        ],
    },
    ChoiceSpec {
        value: "vip",
        aliases: &["vip", "administrator", "администратор", "inzibatçı"],
    },
    ChoiceSpec {
        value: "kol",
        aliases: &[
            "kol",
            "key opinion leader",
            "opinion leader",
            "лидер мнений",
            "ключевой лидер мнений",
            "rəy lideri",
        ],
    },
    ChoiceSpec {
        value: "coach",
        aliases: &[
            "coach",
            "champion",
            "mentor",
            "наставник",
            "союзник",
            "mentor",
        ],
    },
];

/// Activity types.
pub const ACTIVITY_TYPES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "meeting",
        aliases: &["meeting", "visit", "встреча", "визит", "görüş", "səfər"],
    },
    ChoiceSpec {
        value: "call",
        aliases: &["call", "phone call", "звонок", "zəng"],
    },
    ChoiceSpec {
        value: "proposal",
        aliases: &[
            "proposal",
            "offer",
            "quote",
            "quotation",
            "commercial proposal",
            "кп",
            "предложение",
            "коммерческое предложение",
            "təklif",
            "kommersiya təklifi",
        ],
    },
    ChoiceSpec {
        value: "complaint",
        aliases: &[
            "complaint",
            "claim",
            "жалоба",
            "претензия",
            "рекламация",
            "şikayət",
        ],
    },
    ChoiceSpec {
        value: "reference_letter",
        aliases: &[
            "reference letter",
            "reference",
            "testimonial",
            "рекомендательное письмо",
            "отзыв",
            "tövsiyə məktubu",
            "rəy məktubu",
        ],
    },
    ChoiceSpec {
        value: "referral",
        aliases: &[
            "referral",
            "introduction",
            "рекомендация клиента",
            "реферал",
            "yönləndirmə",
        ],
    },
    ChoiceSpec {
        value: "deal",
        aliases: &[
            "deal",
            "contract",
            "order",
            "сделка",
            "договор",
            "контракт",
            "sövdələşmə",
            "müqavilə",
        ],
    },
];

/// Tender outcomes.
pub const TENDER_OUTCOMES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "won",
        aliases: &[
            "won",
            "win",
            "awarded",
            "выигран",
            "победа",
            "выиграли",
            "qazanıldı",
            "qalib",
        ],
    },
    ChoiceSpec {
        value: "lost",
        aliases: &[
            "lost",
            "loss",
            "проигран",
            "проиграли",
            "uduzuldu",
            "məğlub",
        ],
    },
    ChoiceSpec {
        value: "pending",
        aliases: &[
            "pending",
            "open",
            "in progress",
            "ожидается",
            "в работе",
            "gözlənilir",
            "davam edir",
        ],
    },
    ChoiceSpec {
        value: "cancelled",
        aliases: &["cancelled", "canceled", "отменен", "отменён", "ləğv edildi"],
    },
];

/// Development levels of a KAM (situational leadership).
pub const DEV_LEVELS: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "D1",
        aliases: &["d1", "1", "enthusiastic beginner"],
    },
    ChoiceSpec {
        value: "D2",
        aliases: &["d2", "2", "disillusioned learner"],
    },
    ChoiceSpec {
        value: "D3",
        aliases: &["d3", "3", "capable but cautious"],
    },
    ChoiceSpec {
        value: "D4",
        aliases: &["d4", "4", "self-reliant", "self reliant"],
    },
];

/// Commission bases.
pub const COMMISSION_BASES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "margin",
        aliases: &["margin", "gross profit", "маржа", "marja"],
    },
    ChoiceSpec {
        value: "deal",
        aliases: &[
            "deal",
            "amount",
            "revenue",
            "agency fee",
            "сделка",
            "сумма",
            "агентское вознаграждение",
            "məbləğ",
        ],
    },
];

/// Kinds of plan items.
pub const PLAN_KINDS: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "objective",
        aliases: &["objective", "goal", "цель", "məqsəd"],
    },
    ChoiceSpec {
        value: "strategy",
        aliases: &["strategy", "стратегия", "strategiya"],
    },
    ChoiceSpec {
        value: "value_proposition",
        aliases: &[
            "value proposition",
            "ценностное предложение",
            "dəyər təklifi",
        ],
    },
    ChoiceSpec {
        value: "strength",
        aliases: &[
            "strength",
            "swot strength",
            "сильная сторона",
            "güclü tərəf",
        ],
    },
    ChoiceSpec {
        value: "weakness",
        aliases: &["weakness", "swot weakness", "слабая сторона", "zəif tərəf"],
    },
    ChoiceSpec {
        value: "opportunity",
        aliases: &["opportunity", "swot opportunity", "возможность", "imkan"],
    },
    ChoiceSpec {
        value: "threat",
        aliases: &["threat", "swot threat", "угроза", "təhdid"],
    },
    ChoiceSpec {
        value: "action",
        aliases: &[
            "action",
            "task",
            "step",
            "действие",
            "задача",
            "fəaliyyət",
            "tapşırıq",
        ],
    },
];

/// Statuses of plan actions.
pub const ACTION_STATUSES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "open",
        aliases: &[
            "open",
            "new",
            "planned",
            "todo",
            "to do",
            "открыто",
            "запланировано",
            "новое",
            "açıq",
            "planlaşdırılıb",
        ],
    },
    ChoiceSpec {
        value: "in_progress",
        aliases: &[
            "in progress",
            "doing",
            "started",
            "в работе",
            "выполняется",
            "icrada",
            "davam edir",
        ],
    },
    ChoiceSpec {
        value: "done",
        aliases: &[
            "done",
            "completed",
            "complete",
            "closed",
            "выполнено",
            "сделано",
            "завершено",
            "icra edildi",
            "tamamlandı",
        ],
    },
    ChoiceSpec {
        value: "cancelled",
        aliases: &[
            "cancelled",
            "canceled",
            "dropped",
            "отменено",
            "ləğv edildi",
        ],
    },
];

/// Transaction document types; `return` and `credit_note` net out.
pub const TX_TYPES: &[ChoiceSpec] = &[
    ChoiceSpec {
        value: "sale",
        aliases: &[
            "sale",
            "invoice",
            "order",
            "продажа",
            "реализация",
            "счет",
            "счёт",
            "satış",
            "faktura",
        ],
    },
    ChoiceSpec {
        value: "return",
        aliases: &["return", "refund", "возврат", "qaytarma", "geri qaytarma"],
    },
    ChoiceSpec {
        value: "credit_note",
        aliases: &[
            "credit note",
            "credit",
            "кредит нота",
            "кредит-нота",
            "корректировка",
            "kredit qeydi",
        ],
    },
];

use FieldKind::*;

/// Fields of the Accounts sheet.
pub const ACCOUNTS: &[FieldSpec] = &[
    req(
        "id",
        Id,
        &[
            "id",
            "account id",
            "account",
            "account no",
            "account number",
            "client id",
            "customer id",
            "customer no",
            "customer number",
            "код",
            "код клиента",
            "id клиента",
            "код контрагента",
            "kod",
            "müştəri kodu",
            "müştəri id",
        ],
        "Unique account id.",
    ),
    f(
        "name",
        Text,
        &[
            "name",
            "account name",
            "client",
            "customer",
            "client name",
            "customer name",
            "company",
            "название",
            "наименование",
            "клиент",
            "название клиента",
            "контрагент",
            "ad",
            "müştəri",
            "müştərinin adı",
            "şirkət",
            "şirkətin adı",
        ],
        "Client name.",
    ),
    f(
        "kam_id",
        Id,
        KAM_REF,
        "Id of the key account manager (Managers.id).",
    ),
    f(
        "industry",
        Text,
        &[
            "industry",
            "sector",
            "vertical",
            "отрасль",
            "сектор",
            "sahə",
            "sənaye",
        ],
        "Industry.",
    ),
    f(
        "region",
        Text,
        &[
            "region",
            "territory",
            "регион",
            "территория",
            "ərazi",
            "bölgə",
        ],
        "Region.",
    ),
    f(
        "level",
        Choice(LEVELS),
        &[
            "level",
            "key level",
            "key account level",
            "уровень",
            "уровень ключевого клиента",
            "səviyyə",
        ],
        "Level at which the client is key: company, manager or department (default company).",
    ),
    f(
        "revenue",
        Money,
        &[
            "revenue",
            "sales",
            "turnover",
            "net sales",
            "выручка",
            "оборот",
            "продажи",
            "gəlir",
            "dövriyyə",
            "satış",
        ],
        "Revenue for the period (else derived from Transactions).",
    ),
    f(
        "gross_profit",
        Money,
        &[
            "gross profit",
            "margin",
            "gp",
            "profit",
            "gross margin",
            "валовая прибыль",
            "маржа",
            "прибыль",
            "ümumi mənfəət",
            "marja",
            "mənfəət",
        ],
        "Gross profit for the period (else derived from Transactions).",
    ),
    f(
        "wallet",
        Money,
        &[
            "wallet",
            "budget",
            "category budget",
            "client budget",
            "wallet size",
            "potential",
            "бюджет",
            "бюджет клиента",
            "потенциал",
            "büdcə",
            "potensial",
        ],
        "The client's budget for our category.",
    ),
    f(
        "reference",
        Bool,
        &[
            "reference",
            "reference client",
            "reference account",
            "референс",
            "референтный",
            "референтный клиент",
            "referans",
            "istinad müştərisi",
        ],
        "A recognised name that opens doors (definition 3).",
    ),
    f(
        "brand_score",
        Number,
        &[
            "brand",
            "brand score",
            "brand standing",
            "известность",
            "бренд",
            "brend",
            "tanınma",
        ],
        "Brand standing score (0–5 by convention).",
    ),
    f(
        "partnership",
        Number,
        &[
            "partnership",
            "partner",
            "openness",
            "partnership score",
            "партнерство",
            "партнёрство",
            "открытость",
            "tərəfdaşlıq",
            "açıqlıq",
        ],
        "Partnership openness score (0–5 by convention, definition 4).",
    ),
    f(
        "competence",
        Number,
        &[
            "competence",
            "expertise",
            "competence score",
            "компетентность",
            "экспертиза",
            "səriştə",
            "kompetensiya",
        ],
        "How demanding and expert the client is (0–5, definition 5).",
    ),
    f(
        "innovator",
        Bool,
        &[
            "innovator",
            "early adopter",
            "инноватор",
            "новатор",
            "novator",
            "innovator müştəri",
        ],
        "Buys new products first (definition 6).",
    ),
    f(
        "history",
        Text,
        &["history", "account history", "история", "tarixçə"],
        "Dossier: history of the relationship.",
    ),
    f(
        "needs",
        Text,
        &["needs", "client needs", "потребности", "ehtiyaclar"],
        "Dossier: the client's needs.",
    ),
    f(
        "development_plans",
        Text,
        &[
            "development plans",
            "client plans",
            "планы развития",
            "планы клиента",
            "inkişaf planları",
        ],
        "Dossier: the client's own development plans.",
    ),
];

/// Fields of the Transactions sheet.
pub const TRANSACTIONS: &[FieldSpec] = &[
    f(
        "date",
        Date,
        &[
            "date",
            "invoice date",
            "document date",
            "posting date",
            "дата",
            "дата документа",
            "tarix",
            "sənəd tarixi",
        ],
        "Date of the sale.",
    ),
    req("account_id", Id, ACCOUNT_REF, "Account id (Accounts.id)."),
    f(
        "account_name",
        Text,
        &[
            "account name",
            "client name",
            "customer name",
            "название клиента",
            "наименование клиента",
            "müştərinin adı",
        ],
        "Account name (used when there is no Accounts sheet).",
    ),
    f(
        "kam_id",
        Id,
        KAM_REF,
        "KAM of the account (used when there is no Accounts sheet).",
    ),
    f(
        "type",
        Choice(TX_TYPES),
        &[
            "type",
            "document type",
            "doc type",
            "тип",
            "тип документа",
            "вид документа",
            "növ",
            "sənəd növü",
        ],
        "sale (default), return or credit_note; returns and credit notes subtract.",
    ),
    f(
        "product",
        Text,
        &[
            "product",
            "item",
            "sku",
            "товар",
            "продукт",
            "номенклатура",
            "məhsul",
        ],
        "Product.",
    ),
    f(
        "quantity",
        Number,
        &["quantity", "qty", "количество", "кол-во", "miqdar"],
        "Quantity.",
    ),
    f(
        "unit_price",
        Money,
        &[
            "unit price",
            "price",
            "цена",
            "цена за единицу",
            "qiymət",
            "vahid qiyməti",
        ],
        "Unit price (amount = quantity × unit price when amount is missing).",
    ),
    f(
        "amount",
        Money,
        &[
            "amount",
            "net amount",
            "sales amount",
            "sum",
            "total",
            "сумма",
            "сумма продажи",
            "məbləğ",
        ],
        "Net sales amount of the line.",
    ),
    f(
        "cost",
        Money,
        &[
            "cost",
            "cogs",
            "cost of sales",
            "себестоимость",
            "maya dəyəri",
        ],
        "Cost of the line (margin = amount − cost when margin is missing).",
    ),
    f(
        "margin",
        Money,
        &[
            "margin",
            "gross profit",
            "gp",
            "маржа",
            "валовая прибыль",
            "marja",
            "ümumi mənfəət",
        ],
        "Gross profit of the line.",
    ),
];

/// Fields of the Contacts sheet.
pub const CONTACTS: &[FieldSpec] = &[
    req("account_id", Id, ACCOUNT_REF, "Account id."),
    f(
        "name",
        Text,
        &[
            "name",
            "contact",
            "person",
            "full name",
            "contact name",
            "контакт",
            "фио",
            "имя",
            "контактное лицо",
            "ad",
            "ad soyad",
            "şəxs",
            "əlaqə şəxsi",
        ],
        "Person's name.",
    ),
    open(
        "role",
        Choice(ROLES),
        &[
            "role",
            "dmu role",
            "position",
            "title",
            "job title",
            "роль",
            "должность",
            "rol",
            "vəzifə",
        ],
        "DMU role: executive, finance, technical, hr, user, procurement, vip, kol, coach (other values kept).",
    ),
    f(
        "influence",
        Number,
        &["influence", "influence level", "влияние", "təsir"],
        "Influence on the decision (1–5 by convention).",
    ),
    f(
        "relationship",
        Number,
        &[
            "relationship",
            "relationship strength",
            "relation",
            "отношения",
            "сила отношений",
            "münasibət",
        ],
        "Strength of our relationship (0–5 by convention).",
    ),
    open(
        "attitude",
        Text,
        &[
            "attitude",
            "stance",
            "support",
            "отношение к нам",
            "позиция",
            "mövqe",
        ],
        "Attitude towards us: mentor, supporter, neutral, non-supporter, enemy.",
    ),
    f(
        "birthday",
        Date,
        &[
            "birthday",
            "date of birth",
            "birth date",
            "день рождения",
            "дата рождения",
            "doğum günü",
            "doğum tarixi",
        ],
        "Dossier: birthday.",
    ),
    f(
        "hobbies",
        Text,
        &[
            "hobbies",
            "interests",
            "хобби",
            "увлечения",
            "hobbi",
            "maraqlar",
        ],
        "Dossier: hobbies.",
    ),
    f(
        "family",
        Text,
        &["family", "семья", "ailə"],
        "Dossier: family.",
    ),
    f(
        "values",
        Text,
        &["values", "personal values", "ценности", "dəyərlər"],
        "Dossier: values.",
    ),
    f(
        "last_contact",
        Date,
        &[
            "last contact",
            "last contacted",
            "последний контакт",
            "son əlaqə",
        ],
        "Date of the last contact.",
    ),
];

/// Fields of the Activities sheet.
pub const ACTIVITIES: &[FieldSpec] = &[
    req("account_id", Id, ACCOUNT_REF, "Account id."),
    f(
        "kam_id",
        Id,
        KAM_REF,
        "KAM who did it (defaults to the account's KAM).",
    ),
    req(
        "type",
        Choice(ACTIVITY_TYPES),
        &[
            "type",
            "activity",
            "activity type",
            "тип",
            "вид",
            "тип активности",
            "növ",
            "fəaliyyət növü",
        ],
        "meeting, call, proposal, complaint, reference_letter, referral or deal.",
    ),
    f(
        "date",
        Date,
        &["date", "sent", "opened", "дата", "tarix"],
        "Date (proposal sent, complaint opened, meeting day).",
    ),
    f(
        "planned_start",
        Date,
        &[
            "planned start",
            "scheduled",
            "scheduled start",
            "planned",
            "плановое начало",
            "запланировано на",
            "planlaşdırılmış başlanğıc",
        ],
        "Meetings: planned start date-time.",
    ),
    f(
        "actual_start",
        Date,
        &[
            "actual start",
            "started",
            "фактическое начало",
            "faktiki başlanğıc",
        ],
        "Meetings: actual start date-time.",
    ),
    f(
        "agenda",
        Bool,
        &[
            "agenda",
            "prepared",
            "agenda prepared",
            "повестка",
            "подготовка",
            "gündəm",
        ],
        "Meetings: agenda prepared.",
    ),
    f(
        "argued",
        Bool,
        &["argued", "argument", "спорил", "mübahisə"],
        "Client feedback: the KAM argued.",
    ),
    f(
        "interrupted",
        Bool,
        &["interrupted", "interrupting", "перебивал", "sözü kəsdi"],
        "Client feedback: the KAM interrupted.",
    ),
    f(
        "bad_manners",
        Bool,
        &[
            "bad manners",
            "rude",
            "невежливость",
            "нетактичность",
            "kobudluq",
        ],
        "Client feedback: bad manners.",
    ),
    f(
        "next_step",
        Bool,
        &[
            "next step",
            "next step agreed",
            "следующий шаг",
            "növbəti addım",
        ],
        "A next step (call or meeting) was agreed.",
    ),
    f(
        "confirmed",
        Date,
        &[
            "confirmed",
            "confirmation",
            "подтверждено",
            "дата подтверждения",
            "təsdiqləndi",
        ],
        "Proposals: date the client confirmed receipt.",
    ),
    f(
        "followed_up",
        Date,
        &[
            "followed up",
            "follow up",
            "follow-up date",
            "дата звонка",
            "контрольный звонок",
            "izləmə",
        ],
        "Proposals: date of the follow-up call.",
    ),
    f(
        "expiry",
        Date,
        &[
            "expiry",
            "expires",
            "valid until",
            "expiry date",
            "срок действия",
            "действует до",
            "etibarlıdır",
            "son istifadə tarixi",
        ],
        "Proposals: expiry date.",
    ),
    f(
        "dmu_roles",
        Text,
        &[
            "dmu roles",
            "addressed to",
            "roles addressed",
            "адресаты",
            "для кого",
            "ünvanlanıb",
        ],
        "Proposals: DMU roles addressed (comma-separated).",
    ),
    f(
        "resolved",
        Date,
        &[
            "resolved",
            "closed",
            "resolution date",
            "решено",
            "дата решения",
            "həll edildi",
        ],
        "Complaints: date resolved.",
    ),
    f(
        "amount",
        Money,
        &["amount", "value", "deal value", "сумма", "məbləğ"],
        "Deals and proposals: value.",
    ),
    f(
        "margin",
        Money,
        &["margin", "gross profit", "маржа", "marja"],
        "Deals: gross profit.",
    ),
    f(
        "notes",
        Text,
        &[
            "notes",
            "comment",
            "comments",
            "примечание",
            "комментарий",
            "qeyd",
        ],
        "Free notes.",
    ),
];

/// Fields of the Tenders sheet.
pub const TENDERS: &[FieldSpec] = &[
    req("account_id", Id, ACCOUNT_REF, "Account id."),
    f(
        "kam_id",
        Id,
        KAM_REF,
        "KAM (defaults to the account's KAM).",
    ),
    f(
        "name",
        Text,
        &[
            "tender",
            "name",
            "subject",
            "lot",
            "предмет",
            "тендер",
            "лот",
            "mövzu",
        ],
        "What the tender is for.",
    ),
    f(
        "date",
        Date,
        &[
            "tender date",
            "date",
            "deadline",
            "дата тендера",
            "дата",
            "tender tarixi",
            "tarix",
        ],
        "Date of the tender.",
    ),
    f(
        "prep_start",
        Date,
        &[
            "preparation start",
            "prep start",
            "prepared from",
            "начало подготовки",
            "hazırlığın başlanması",
        ],
        "When preparation started.",
    ),
    f(
        "value",
        Money,
        &[
            "value",
            "amount",
            "tender value",
            "сумма",
            "стоимость",
            "dəyər",
            "məbləğ",
        ],
        "Value of the tender.",
    ),
    f(
        "outcome",
        Choice(TENDER_OUTCOMES),
        &["outcome", "result", "status", "результат", "итог", "nəticə"],
        "won, lost, pending or cancelled.",
    ),
];

/// Fields of the Managers sheet.
pub const MANAGERS: &[FieldSpec] = &[
    req(
        "id",
        Id,
        &[
            "id",
            "kam id",
            "kam",
            "manager id",
            "manager",
            "код",
            "код менеджера",
            "kod",
            "menecer kodu",
        ],
        "KAM id.",
    ),
    f(
        "name",
        Text,
        &[
            "name",
            "full name",
            "manager name",
            "фио",
            "имя",
            "менеджер",
            "ad",
            "ad soyad",
            "menecer",
        ],
        "Name.",
    ),
    f(
        "region",
        Text,
        &["region", "territory", "регион", "bölgə", "ərazi"],
        "Region.",
    ),
    f(
        "level",
        Choice(DEV_LEVELS),
        &[
            "level",
            "development level",
            "d level",
            "уровень",
            "уровень развития",
            "səviyyə",
            "inkişaf səviyyəsi",
        ],
        "Development level D1–D4.",
    ),
    f(
        "plan",
        Money,
        &[
            "plan",
            "target",
            "quota",
            "sales plan",
            "план",
            "план продаж",
            "hədəf",
        ],
        "Plan (target) for the period.",
    ),
    f(
        "product_knowledge",
        Number,
        &[
            "product knowledge",
            "product knowledge score",
            "знание продукта",
            "məhsul biliyi",
        ],
        "Product knowledge assessment (0–5 by convention).",
    ),
    f(
        "commission_basis",
        Choice(COMMISSION_BASES),
        &[
            "commission basis",
            "pay basis",
            "база комиссии",
            "база вознаграждения",
            "komissiya bazası",
        ],
        "margin or deal.",
    ),
    f(
        "commission_rate",
        Percent,
        &[
            "commission rate",
            "commission",
            "rate",
            "комиссия",
            "процент",
            "ставка",
            "komissiya",
            "faiz",
        ],
        "Commission rate.",
    ),
];

/// Fields of the Plans sheet.
pub const PLANS: &[FieldSpec] = &[
    req("account_id", Id, ACCOUNT_REF, "Account id."),
    req(
        "kind",
        Choice(PLAN_KINDS),
        &[
            "kind",
            "type",
            "section",
            "item",
            "раздел",
            "тип",
            "bölmə",
            "növ",
        ],
        "objective, strategy, value_proposition, strength, weakness, opportunity, threat or action.",
    ),
    req(
        "text",
        Text,
        &[
            "text",
            "description",
            "content",
            "item text",
            "текст",
            "описание",
            "mətn",
            "təsvir",
        ],
        "The KAM's words.",
    ),
    f(
        "owner",
        Text,
        &["owner", "responsible", "who", "ответственный", "məsul"],
        "Actions: owner.",
    ),
    f(
        "due",
        Date,
        &["due", "due date", "deadline", "срок", "son tarix", "müddət"],
        "Actions: due date.",
    ),
    f(
        "status",
        Choice(ACTION_STATUSES),
        &["status", "state", "статус", "состояние", "vəziyyət"],
        "Actions: open, in_progress, done or cancelled.",
    ),
];

/// Normalises a sheet or column name for matching: lowercase, letters and digits only.
///
/// `"Account ID"`, `"account_id"` and `"ACCOUNT-ID"` all give `"accountid"`.
pub fn normalize_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The name under which an extra (non-canonical) column is exposed to rules: lowercase words
/// joined by `_` (`"Strategic fit"` → `strategic_fit`).
pub fn snake_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(c.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    out
}

/// Resolves a written value of a choice field to its canonical value.
pub fn resolve_choice(choices: &[ChoiceSpec], written: &str) -> Option<&'static str> {
    let key = normalize_key(written);
    if key.is_empty() {
        return None;
    }
    choices
        .iter()
        .find(|c| {
            normalize_key(c.value) == key || c.aliases.iter().any(|a| normalize_key(a) == key)
        })
        .map(|c| c.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_ignore_case_space_and_punctuation() {
        assert_eq!(normalize_key("Account ID"), "accountid");
        assert_eq!(normalize_key("account_id"), "accountid");
        assert_eq!(normalize_key("  КОД  Клиента "), "кодклиента");
        assert_eq!(normalize_key("Müştəri kodu"), "müştərikodu");
        assert_eq!(snake_name("Strategic fit (1-5)"), "strategic_fit_1_5");
    }

    #[test]
    fn aliases_are_unambiguous_within_a_sheet() {
        for sheet in SheetKind::ALL {
            let mut seen = HashSet::new();
            for field in sheet.fields() {
                let mut own = HashSet::new();
                for alias in field.aliases.iter().chain(std::iter::once(&field.name)) {
                    let key = normalize_key(alias);
                    if own.insert(key.clone()) {
                        assert!(
                            seen.insert(key.clone()),
                            "{}: alias {alias:?} used twice",
                            sheet.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sheet_aliases_are_unambiguous() {
        let mut seen = HashSet::new();
        for sheet in SheetKind::ALL {
            for alias in sheet.aliases() {
                assert!(
                    seen.insert(normalize_key(alias)),
                    "sheet alias {alias:?} used twice"
                );
            }
        }
    }

    #[test]
    fn choices_resolve_in_three_languages() {
        assert_eq!(resolve_choice(ACTIVITY_TYPES, "Встреча"), Some("meeting"));
        assert_eq!(resolve_choice(ACTIVITY_TYPES, "görüş"), Some("meeting"));
        assert_eq!(
            resolve_choice(ACTIVITY_TYPES, "Reference letter"),
            Some("reference_letter")
        );
        assert_eq!(resolve_choice(TX_TYPES, "Credit-note"), Some("credit_note"));
        assert_eq!(resolve_choice(LEVELS, "şöbə"), Some("department"));
        assert_eq!(resolve_choice(LEVELS, "nonsense"), None);
    }
}
