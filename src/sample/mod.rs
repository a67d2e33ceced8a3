//! `kam sample`: a realistic synthetic workbook with every sheet, deterministic for a seed.
//!
//! Profit is heavy-tailed (Pareto) with one critical-dependency client (≈22 % of profit) and one
//! more key client (≈11 %); wallets and share of wallet are spread, some clients buy nothing yet;
//! DMU contacts have dossier gaps; KAMs differ in punctuality, preparation and follow-up; proposals
//! come with and without follow-up and expiry dates; tenders are prepared early or late;
//! complaints are open or resolved. Revenue and gross profit are left to Transactions.

#![allow(clippy::needless_range_loop)] // parallel arrays indexed by account are clearer here

pub mod rng;

use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use crate::error::{Error, Result};
use crate::model::value::{days_from_civil, days_to_excel_serial};
use rng::Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Number of accounts.
    pub accounts: usize,
    /// Number of KAMs.
    pub kams: usize,
    /// Random seed.
    pub seed: u64,
    /// Transaction lines (default 10 per account).
    pub transactions: Option<usize>,
    /// Activities (default 10 per account).
    pub activities: Option<usize>,
}

/// How many rows of each sheet were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleCounts {
    /// Accounts.
    pub accounts: usize,
    /// Transaction lines.
    pub transactions: usize,
    /// Contacts.
    pub contacts: usize,
    /// Activities.
    pub activities: usize,
    /// Tenders.
    pub tenders: usize,
    /// Managers.
    pub managers: usize,
    /// Plan items.
    pub plans: usize,
}

const ADJ: &[&str] = &[
    "Caspian",
    "Northern",
    "Silk Road",
    "Baltic",
    "Absheron",
    "Volga",
    "Atlas",
    "Granite",
    "Blue",
    "Green",
    "Golden",
    "United",
    "Prime",
    "Delta",
    "Summit",
    "Harbor",
    "Eastern",
    "Western",
    "Nova",
    "Apex",
    "Crystal",
    "Iron",
    "Urban",
    "Royal",
    "Pioneer",
    "Vector",
    "Polar",
    "Sunrise",
    "Meridian",
    "Orbit",
];
const NOUN: &[&str] = &[
    "Steel",
    "Pharma",
    "Foods",
    "Logistics",
    "Energy",
    "Telecom",
    "Builders",
    "Retail",
    "Motors",
    "Chemicals",
    "Textiles",
    "Hotels",
    "Clinics",
    "Dairy",
    "Glass",
    "Paper",
    "Plastics",
    "Bank",
    "Insurance",
    "Media",
    "Agro",
    "Mining",
    "Cement",
    "Water",
    "Software",
    "Airlines",
    "Shipping",
    "Furniture",
    "Electric",
    "Labs",
];
const SUFFIX: &[&str] = &["LLC", "JSC", "Group", "Holding", "Ltd", "& Co"];
const INDUSTRIES: &[&str] = &[
    "Manufacturing",
    "Pharmaceuticals",
    "Retail",
    "Construction",
    "Energy",
    "Telecom",
    "Food & Beverage",
    "Logistics",
    "Finance",
    "Healthcare",
];
const REGIONS: &[&str] = &["Baku", "Ganja", "Sumqayit", "Moscow", "Almaty", "Tbilisi"];
const FIRST: &[&str] = &[
    "Aysel", "Rashad", "Leyla", "Elvin", "Nigar", "Orkhan", "Anna", "Dmitry", "Olga", "Ivan",
    "Sevinj", "Tural", "Maria", "Kamran", "Gunel", "Sergey", "Farid", "Elena", "Murad", "Zaur",
];
const LAST: &[&str] = &[
    "Aliyeva",
    "Mammadov",
    "Huseynova",
    "Guliyev",
    "Ivanova",
    "Petrov",
    "Hasanova",
    "Ismayilov",
    "Smirnova",
    "Kuznetsov",
    "Rzayeva",
    "Abbasov",
    "Volkova",
    "Babayev",
    "Sokolova",
    "Jafarov",
];
const ROLES: &[&str] = &[
    "Executive",
    "Finance",
    "Technical",
    "HR",
    "User",
    "Procurement",
    "VIP",
    "KOL",
];
const HOBBIES: &[&str] = &[
    "chess",
    "football",
    "fishing",
    "opera",
    "tennis",
    "hiking",
    "cooking",
    "history books",
    "jazz",
    "gardening",
];
const VALUES: &[&str] = &[
    "reliability",
    "family first",
    "innovation",
    "punctuality",
    "loyalty",
    "quality",
];
const PRODUCTS: &[&str] = &[
    "Core service",
    "Premium service",
    "Spare parts",
    "Consumables",
    "Installation",
    "Training",
    "Support plan",
    "Licences",
];
const ATTITUDES: &[&str] = &[
    "mentor",
    "supporter",
    "neutral",
    "neutral",
    "non-supporter",
    "enemy",
];

struct KamStyle {
    late: f64,
    agenda: f64,
    follow_up: f64,
    expiry: f64,
    manners: f64,
}

fn xlsx_err(e: XlsxError) -> Error {
    Error::Usage(format!("cannot write the sample workbook: {e}"))
}

fn account_name(i: usize) -> String {
    let a = ADJ[i % ADJ.len()];
    let n = NOUN[(i / ADJ.len()) % NOUN.len()];
    let s = SUFFIX[(i / (ADJ.len() * NOUN.len())) % SUFFIX.len()];
    let round = i / (ADJ.len() * NOUN.len() * SUFFIX.len());
    if round == 0 {
        format!("{a} {n} {s}")
    } else {
        format!("{a} {n} {s} {}", round + 1)
    }
}

fn person(rng: &mut Rng) -> String {
    format!("{} {}", rng.pick(FIRST), rng.pick(LAST))
}

struct Writer<'a> {
    ws: &'a mut Worksheet,
    row: u32,
    date: &'a Format,
    datetime: &'a Format,
}

/// A cell value for the generator.
enum C<'s> {
    S(&'s str),
    O(String),
    N(f64),
    D(f64),
    T(f64),
    B(bool),
    E,
}

impl Writer<'_> {
    fn header(&mut self, names: &[&str]) -> Result<()> {
        for (c, n) in names.iter().enumerate() {
            self.ws.write_string(0, c as u16, *n).map_err(xlsx_err)?;
        }
        self.row = 1;
        Ok(())
    }
    fn row(&mut self, cells: &[C<'_>]) -> Result<()> {
        for (c, v) in cells.iter().enumerate() {
            let c = c as u16;
            match v {
                C::S(s) => self.ws.write_string(self.row, c, *s).map(|_| ()),
                C::O(s) => self.ws.write_string(self.row, c, s).map(|_| ()),
                C::N(n) => self.ws.write_number(self.row, c, *n).map(|_| ()),
                C::D(d) => self
                    .ws
                    .write_number_with_format(self.row, c, days_to_excel_serial(*d), self.date)
                    .map(|_| ()),
                C::T(d) => self
                    .ws
                    .write_number_with_format(self.row, c, days_to_excel_serial(*d), self.datetime)
                    .map(|_| ()),
                C::B(b) => self
                    .ws
                    .write_string(self.row, c, if *b { "yes" } else { "no" })
                    .map(|_| ()),
                C::E => Ok(()),
            }
            .map_err(xlsx_err)?;
        }
        self.row += 1;
        Ok(())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Writes a synthetic workbook to `path`.
pub fn write_sample(opts: &SampleOptions, path: &Path) -> Result<SampleCounts> {
    if opts.accounts == 0 || opts.kams == 0 {
        return Err(Error::Usage(
            "--accounts and --kams must be at least 1".into(),
        ));
    }
    if opts.accounts > 1_048_000 {
        return Err(Error::Usage(
            "--accounts must fit one Excel sheet (at most 1 048 000)".into(),
        ));
    }
    let n = opts.accounts;
    let n_tx = opts.transactions.unwrap_or(n * 10).min(1_048_000);
    let n_act = opts.activities.unwrap_or(n * 10).min(1_048_000);
    let mut rng = Rng::new(opts.seed);
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(2026, 1, 1).map_err(xlsx_err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_author("kam sample"),
    );
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let mut counts = SampleCounts::default();

    // KAM styles: the first is the methodology's "late mornings, weak paperwork, great results".
    let styles: Vec<KamStyle> = (0..opts.kams)
        .map(|k| {
            if k == 0 {
                KamStyle {
                    late: 0.5,
                    agenda: 0.3,
                    follow_up: 0.4,
                    expiry: 0.3,
                    manners: 0.0,
                }
            } else {
                KamStyle {
                    late: rng.uniform(0.0, 0.25),
                    agenda: rng.uniform(0.5, 1.0),
                    follow_up: rng.uniform(0.4, 1.0),
                    expiry: rng.uniform(0.5, 1.0),
                    manners: rng.uniform(0.0, 0.05),
                }
            }
        })
        .collect();

    // Accounts: heavy-tailed profit, then two large clients to make dependency visible.
    let mut gp: Vec<f64> = (0..n)
        .map(|_| round2(rng.pareto(2_000.0, 1.16).min(5.0e7)))
        .collect();
    let kam_of: Vec<usize> = (0..n)
        .map(|i| {
            if i < opts.kams {
                i
            } else {
                rng.int(0, opts.kams as i64 - 1) as usize
            }
        })
        .collect();
    let buys_nothing: Vec<bool> = (0..n).map(|i| i >= 2 && rng.chance(0.02)).collect();
    for (i, g) in gp.iter_mut().enumerate() {
        if buys_nothing[i] {
            *g = 0.0;
        }
    }
    if n >= 3 {
        let rest: f64 = gp[2..].iter().sum();
        // shares 22 % and 11 % of the total: g0 = 0.22 T, g1 = 0.11 T, rest = 0.67 T.
        let total = rest / 0.67;
        gp[0] = round2(0.22 * total);
        gp[1] = round2(0.11 * total);
    }
    let margin_rate: Vec<f64> = (0..n).map(|_| rng.uniform(0.12, 0.38)).collect();
    let revenue: Vec<f64> = (0..n).map(|i| round2(gp[i] / margin_rate[i])).collect();
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Accounts").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "Account ID",
            "Account name",
            "KAM",
            "Industry",
            "Region",
            "Level",
            "Wallet",
            "Reference",
            "Brand score",
            "Partnership",
            "Competence",
            "Innovator",
            "History",
            "Needs",
            "Development plans",
            "Strategic fit",
        ])?;
        for i in 0..n {
            let sow = if buys_nothing[i] {
                0.0
            } else if rng.chance(0.07) {
                rng.uniform(0.02, 0.08)
            } else {
                rng.uniform(0.15, 0.95)
            };
            let wallet = if buys_nothing[i] {
                round2(rng.pareto(20_000.0, 1.3))
            } else {
                round2(revenue[i] / sow)
            };
            let level = match rng.weighted(&[0.85, 0.10, 0.05]) {
                0 => "company",
                1 => "manager",
                _ => "department",
            };
            let id = format!("A{:06}", i + 1);
            let name = account_name(i);
            let kam = format!("K{:02}", kam_of[i] + 1);
            let filled = rng.chance(0.6);
            w.row(&[
                C::O(id),
                C::O(name),
                C::O(kam),
                C::S(rng.pick_str(INDUSTRIES)),
                C::S(rng.pick_str(REGIONS)),
                C::S(level),
                C::N(wallet),
                C::B(rng.chance(0.08)),
                C::N(rng.int(0, 5) as f64),
                C::N(rng.int(0, 5) as f64),
                C::N(rng.int(0, 5) as f64),
                C::B(rng.chance(0.025)),
                if filled {
                    C::S("Client since 2019; grew with our installation project.")
                } else {
                    C::E
                },
                if filled || rng.chance(0.3) {
                    C::S("Lower downtime; predictable supply.")
                } else {
                    C::E
                },
                if filled && rng.chance(0.7) {
                    C::S("Opening two new sites next year.")
                } else {
                    C::E
                },
                C::N(rng.int(1, 5) as f64),
            ])?;
        }
        counts.accounts = n;
    }

    // Transactions: revenue spread over lines in the four quarters to 2026-09-30.
    let start = days_from_civil(2025, 10, 1) as f64;
    let end = days_from_civil(2026, 9, 30) as f64;
    let buyers: Vec<usize> = (0..n).filter(|i| !buys_nothing[*i]).collect();
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Transactions").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "Date",
            "Account ID",
            "Type",
            "Product",
            "Quantity",
            "Unit price",
            "Amount",
            "Cost",
        ])?;
        if !buyers.is_empty() {
            let per = n_tx / buyers.len();
            let extra = n_tx % buyers.len();
            for (b, &i) in buyers.iter().enumerate() {
                let lines = per + usize::from(b < extra);
                if lines == 0 {
                    continue;
                }
                let id = format!("A{:06}", i + 1);
                let line_rev = revenue[i] / lines as f64;
                for _ in 0..lines {
                    let amount = round2(line_rev * rng.uniform(0.7, 1.3));
                    let is_return = rng.chance(0.03);
                    let qty = rng.int(1, 20) as f64;
                    let price = round2(amount / qty);
                    let cost = round2(amount - amount * margin_rate[i] * rng.uniform(0.9, 1.1));
                    let day = rng.uniform(start, end + 1.0).floor();
                    // One line in ten leaves the amount to quantity × unit price.
                    let blank_amount = rng.chance(0.1);
                    let (amount_cell, cost_cell) = if is_return {
                        (C::N(round2(amount * 0.2)), C::N(round2(cost * 0.2)))
                    } else if blank_amount {
                        (C::E, C::N(cost))
                    } else {
                        (C::N(amount), C::N(cost))
                    };
                    w.row(&[
                        C::D(day),
                        C::O(id.clone()),
                        C::S(if is_return { "Return" } else { "Invoice" }),
                        C::S(rng.pick_str(PRODUCTS)),
                        C::N(qty),
                        C::N(price),
                        amount_cell,
                        cost_cell,
                    ])?;
                    counts.transactions += 1;
                }
            }
        }
    }

    // Contacts: a DMU per account, larger for larger clients, with dossier gaps.
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Contacts").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "Account ID",
            "Name",
            "Role",
            "Influence",
            "Relationship",
            "Attitude",
            "Birthday",
            "Hobbies",
            "Family",
            "Values",
            "Last contact",
        ])?;
        for i in 0..n {
            let size = if i < 2 {
                6
            } else if n * 4 > 1_040_000 {
                1 // one sheet holds at most 1 048 576 rows
            } else {
                rng.int(1, 4) as usize
            };
            let id = format!("A{:06}", i + 1);
            let kam_good = kam_of[i] == 0;
            for r in 0..size {
                let role = if r == 0 {
                    "Executive"
                } else {
                    *rng.pick(ROLES)
                };
                let rel = if kam_good {
                    rng.int(4, 5)
                } else {
                    rng.int(0, 5)
                };
                let birthday = days_from_civil(
                    rng.int(1960, 1995),
                    rng.int(1, 12) as u32,
                    rng.int(1, 28) as u32,
                ) as f64;
                w.row(&[
                    C::O(id.clone()),
                    C::O(person(&mut rng)),
                    C::S(role),
                    C::N(rng.int(1, 5) as f64),
                    C::N(rel as f64),
                    C::S(rng.pick_str(ATTITUDES)),
                    if rng.chance(0.7) {
                        C::D(birthday)
                    } else {
                        C::E
                    },
                    if rng.chance(0.6) {
                        C::S(rng.pick_str(HOBBIES))
                    } else {
                        C::E
                    },
                    if rng.chance(0.5) {
                        C::S("married, two children")
                    } else {
                        C::E
                    },
                    if rng.chance(0.5) {
                        C::S(rng.pick_str(VALUES))
                    } else {
                        C::E
                    },
                    C::D(rng.uniform(start, end).floor()),
                ])?;
                counts.contacts += 1;
            }
        }
    }

    // Activities.
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Activities").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "Account ID",
            "KAM",
            "Type",
            "Date",
            "Planned start",
            "Actual start",
            "Agenda",
            "Argued",
            "Interrupted",
            "Bad manners",
            "Next step",
            "Confirmed",
            "Followed up",
            "Expiry",
            "DMU roles",
            "Resolved",
            "Amount",
            "Notes",
        ])?;
        let types = [
            "Meeting",
            "Call",
            "Proposal",
            "Complaint",
            "Reference letter",
            "Referral",
            "Deal",
        ];
        let weights = [0.40, 0.20, 0.18, 0.05, 0.03, 0.02, 0.12];
        for a in 0..n_act {
            let i = a % n;
            let k = kam_of[i];
            let st = &styles[k];
            let id = format!("A{:06}", i + 1);
            let kam = format!("K{:02}", k + 1);
            let t = rng.weighted(&weights);
            let day = rng.uniform(start, end + 1.0).floor();
            let mut cells: Vec<C<'_>> = vec![C::O(id), C::O(kam), C::S(types[t]), C::D(day)];
            cells.resize_with(18, || C::E);
            match t {
                0 => {
                    let planned = day + rng.int(9, 16) as f64 / 24.0;
                    let delay = if rng.chance(st.late) {
                        rng.int(6, 40)
                    } else {
                        rng.int(0, 4)
                    } as f64;
                    cells[4] = C::T(planned);
                    cells[5] = C::T(planned + delay / 1440.0);
                    cells[6] = C::B(rng.chance(st.agenda));
                    cells[7] = C::B(rng.chance(st.manners));
                    cells[8] = C::B(rng.chance(st.manners));
                    cells[9] = C::B(rng.chance(st.manners / 2.0));
                    cells[10] = C::B(rng.chance(0.7));
                }
                2 => {
                    let confirmed = rng.chance(0.5);
                    if confirmed {
                        cells[11] = C::D(day + rng.int(0, 2) as f64);
                    } else if rng.chance(st.follow_up) {
                        cells[12] = C::D(day + 1.0);
                    } else if rng.chance(0.5) {
                        cells[12] = C::D(day + rng.int(2, 6) as f64);
                    }
                    if rng.chance(st.expiry) {
                        cells[13] = C::D(day + rng.int(14, 60) as f64);
                    }
                    cells[14] = C::S(rng.pick_str(&[
                        "Executive",
                        "Finance, Technical",
                        "HR",
                        "Executive, Finance",
                    ]));
                    cells[16] = C::N(round2(revenue[i] * rng.uniform(0.05, 0.3)));
                }
                3 if rng.chance(0.75) => {
                    cells[15] = C::D(day + rng.int(1, 30) as f64);
                }
                6 => {
                    cells[16] = C::N(round2(revenue[i] * rng.uniform(0.05, 0.4)));
                }
                _ => {}
            }
            w.row(&cells)?;
            counts.activities += 1;
        }
    }

    // Tenders: preparation from 2 to 12 months ahead.
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Tenders").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "Account ID",
            "Tender",
            "Tender date",
            "Preparation start",
            "Value",
            "Outcome",
        ])?;
        let n_tenders = (n / 3).max(1);
        for t in 0..n_tenders {
            let i = (t * 3 + 1) % n;
            let date_t = rng.uniform(start, end + 365.0).floor();
            let lead_months = rng.int(2, 12) as f64;
            let outcome = if date_t > end {
                "Pending"
            } else {
                *rng.pick(&["Won", "Lost", "Won", "Cancelled"])
            };
            w.row(&[
                C::O(format!("A{:06}", i + 1)),
                C::O(format!(
                    "{} supply {}",
                    rng.pick(PRODUCTS),
                    2026 + (date_t > end) as i32
                )),
                C::D(date_t),
                C::D(date_t - (lead_months * 30.4).round()),
                C::N(round2(revenue[i] * rng.uniform(0.2, 1.0))),
                C::S(outcome),
            ])?;
            counts.tenders += 1;
        }
    }

    // Managers.
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Managers").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&[
            "KAM ID",
            "Name",
            "Region",
            "Level",
            "Plan",
            "Product knowledge",
            "Commission basis",
            "Commission rate",
            "Negotiation",
            "Listening",
        ])?;
        let mut kam_rev = vec![0.0; opts.kams];
        for i in 0..n {
            kam_rev[kam_of[i]] += revenue[i];
        }
        for k in 0..opts.kams {
            w.row(&[
                C::O(format!("K{:02}", k + 1)),
                C::O(person(&mut rng)),
                C::S(rng.pick_str(REGIONS)),
                C::O(format!("D{}", rng.int(1, 4))),
                C::N(round2(kam_rev[k] * rng.uniform(0.85, 1.2))),
                C::N(rng.int(2, 5) as f64),
                C::S(if rng.chance(0.7) { "margin" } else { "deal" }),
                C::N(if rng.chance(0.7) { 0.05 } else { 0.1 }),
                C::N(rng.int(2, 5) as f64),
                C::N(rng.int(2, 5) as f64),
            ])?;
            counts.managers += 1;
        }
    }

    // Plans: the KAM's own words for some of the largest accounts.
    {
        let ws = wb.add_worksheet_with_low_memory().map_err(xlsx_err)?;
        ws.set_name("Plans").map_err(xlsx_err)?;
        let mut w = Writer {
            ws,
            row: 0,
            date: &date,
            datetime: &datetime,
        };
        w.header(&["Account ID", "Kind", "Text", "Owner", "Due", "Status"])?;
        for i in 0..n.min(50) {
            if i > 1 && !rng.chance(0.5) {
                continue;
            }
            let id = format!("A{:06}", i + 1);
            let items: [(&str, &str); 5] = [
                (
                    "Objective",
                    "Grow our share of wallet to 60 % within two years",
                ),
                (
                    "Strength",
                    "Fast on-site service the client's engineers value",
                ),
                (
                    "Weakness",
                    "Our invoices are hard for their finance team to reconcile",
                ),
                (
                    "Value proposition",
                    "Guaranteed uptime with a single point of contact",
                ),
                (
                    "Action",
                    "Joint quarterly review with the client's operations director",
                ),
            ];
            for (kind, text) in items {
                let is_action = kind == "Action";
                w.row(&[
                    C::O(id.clone()),
                    C::S(kind),
                    C::S(text),
                    if is_action {
                        C::O(person(&mut rng))
                    } else {
                        C::E
                    },
                    if is_action {
                        C::D(end + rng.int(10, 90) as f64)
                    } else {
                        C::E
                    },
                    if is_action {
                        C::S(rng.pick_str(&["Open", "In progress", "Done"]))
                    } else {
                        C::E
                    },
                ])?;
                counts.plans += 1;
            }
        }
    }

    wb.save(path).map_err(|e| match e {
        XlsxError::IoError(io) => Error::io(format!("cannot write {}", path.display()), io),
        other => xlsx_err(other),
    })?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_for_many_accounts() {
        let names: std::collections::HashSet<String> = (0..20_000).map(account_name).collect();
        assert_eq!(names.len(), 20_000);
    }
}
