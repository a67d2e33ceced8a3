//! Integration tests: the real `kam` binary on workbooks under `tests/fixtures/`.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

fn kam() -> Command {
    Command::cargo_bin("kam").expect("binary built")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

struct Run {
    code: i32,
    stderr: String,
    out: PathBuf,
    _dir: TempDir,
}

impl Run {
    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    fn rejects(&self) -> Vec<String> {
        self.file("rejects.csv")
            .lines()
            .skip(1)
            .map(String::from)
            .collect()
    }
    /// accounts.csv as rows of (column → value) for the given columns.
    fn accounts(&self, columns: &[&str]) -> Vec<String> {
        let text = self.file("accounts.csv");
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header = rdr.headers().unwrap().clone();
        let idx: Vec<usize> = columns
            .iter()
            .map(|c| {
                header
                    .iter()
                    .position(|h| h == *c)
                    .unwrap_or_else(|| panic!("no column {c}"))
            })
            .collect();
        rdr.records()
            .map(|r| {
                let r = r.unwrap();
                idx.iter()
                    .map(|i| r.get(*i).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }
}

fn run(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = kam();
    cmd.current_dir(dir.path())
        .args(args)
        .arg("--out")
        .arg(&out);
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
        _dir: dir,
    }
}

fn run_file(rel: &str, extra: &[&str]) -> Run {
    let path = fixture(rel);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

const FIGURES: &[&str] = &[
    "id",
    "name",
    "kam_id",
    "level",
    "revenue",
    "gross_profit",
    "figures_source",
    "wallet",
];

#[test]
fn no_arguments_runs_the_embedded_sample() {
    let dir = tempfile::tempdir().unwrap();
    let o = kam().current_dir(dir.path()).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("kam-sample.xlsx (embedded): 30 accounts, 9 transaction lines, 19 contacts, 27 activities, 4 tenders, 5 managers, 8 plan items; 0 rows rejected, 0 cells doubtful"), "{stderr}");
    for f in [
        "accounts.csv",
        "rejects.csv",
        "import.json",
        "manifest.json",
    ] {
        assert!(dir.path().join("kam-out").join(f).is_file(), "{f}");
    }
}

#[test]
fn the_sample_imports_as_written_by_hand() {
    let r = run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.rejects().is_empty());
    let rows = r.accounts(FIGURES);
    assert_eq!(rows.len(), 30);
    assert_eq!(
        rows[0],
        "A01|Caspian Steel JSC|K1|company|10000000|2500000|accounts|12000000"
    );
    assert_eq!(
        rows[12],
        "A13|Royal Hotels|K4|manager|500000|150000|accounts|600000"
    );
    assert_eq!(
        rows[19],
        "A20|Harbor Insurance|K5|department|250000|50000|accounts|300000"
    );
    assert_eq!(
        rows[28],
        "A29|Caspian Electric Grid|K1|company|0|0|accounts|9000000"
    );
    let counts = r.accounts(&["id", "contacts", "activities", "tenders", "plan_items"]);
    assert_eq!(counts[0], "A01|4|5|1|6");
    assert_eq!(counts[3], "A04|3|3|1|0");
    // Gross profit sums to 10 000 000 exactly, by construction of the sample.
    let total: f64 = r
        .accounts(&["gross_profit"])
        .iter()
        .map(|v| v.parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 10_000_000.0);
}

#[test]
fn transactions_net_per_quarter_with_returns() {
    let ds =
        kam::import::import_bytes("s.xlsx", kam::SAMPLE_WORKBOOK, &Default::default()).unwrap();
    let q = |id: &str| -> Vec<String> {
        let a = ds.accounts.iter().find(|a| a.id == id).unwrap();
        a.quarters
            .iter()
            .map(|(k, f)| format!("{k}:{}/{}/{}", f.revenue, f.gross_profit, f.lines))
            .collect()
    };
    // A01: an invoice of 2 600 000 and a return of 100 000 in Q1 net to 2 500 000.
    assert_eq!(
        q("A01"),
        [
            "2026-Q1:2500000/625000/2",
            "2026-Q2:2500000/625000/1",
            "2026-Q3:2500000/625000/1",
            "2026-Q4:2500000/625000/1"
        ]
    );
    // A02: margin given directly.
    assert_eq!(
        q("A02"),
        ["2026-Q1:2000000/600000/1", "2026-Q3:2000000/600000/1"]
    );
    // A03: no amount, so quantity × unit price; margin = amount − cost.
    assert_eq!(
        q("A03"),
        ["2026-Q1:2000000/600000/1", "2026-Q3:1500000/450000/1"]
    );
    assert_eq!(ds.transaction_lines, 9);
}

#[test]
fn the_same_data_in_xls_xlsb_and_ods_imports_identically() {
    let xlsx = run_file("valid/kam-sample.xlsx", &[]);
    assert_eq!(xlsx.code, 0, "{}", xlsx.stderr);
    for other in [
        "valid/kam-sample.xls",
        "valid/kam-sample.xlsb",
        "valid/kam-sample.ods",
    ] {
        let r = run_file(other, &[]);
        assert_eq!(r.code, 0, "{other}: {}", r.stderr);
        assert_eq!(r.file("accounts.csv"), xlsx.file("accounts.csv"), "{other}");
        assert_eq!(r.file("rejects.csv"), xlsx.file("rejects.csv"), "{other}");
    }
    let lib = |rel: &str| kam::import::import_path(&fixture(rel), &Default::default()).unwrap();
    let a = lib("valid/kam-sample.xlsx");
    for other in [
        "valid/kam-sample.xls",
        "valid/kam-sample.xlsb",
        "valid/kam-sample.ods",
    ] {
        let b = lib(other);
        assert_eq!(a.accounts, b.accounts, "{other}");
        assert_eq!(a.contacts, b.contacts, "{other}");
        assert_eq!(a.activities, b.activities, "{other}");
        assert_eq!(a.tenders, b.tenders, "{other}");
        assert_eq!(a.managers, b.managers, "{other}");
        assert_eq!(a.plans, b.plans, "{other}");
    }
}

/// Columns compared for the Russian and Azerbaijani workbooks (same data, other languages).
const LANGUAGE_COLUMNS: &[&str] = &[
    "id",
    "name",
    "kam_id",
    "level",
    "revenue",
    "gross_profit",
    "figures_source",
    "wallet",
    "reference",
    "innovator",
    "contacts",
];

#[test]
fn russian_headers_import_without_mapping() {
    let r = run_file("valid/ru-headers.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.rejects().is_empty(), "{:?}", r.rejects());
    assert_eq!(
        r.accounts(LANGUAGE_COLUMNS),
        [
            "R1|ООО «Каспий Сталь»|M1|company|1200000.5|300000|accounts|2000000|yes|no|1",
            "R2|АО «Волга Фудс»|M1|department|800000|200000|accounts|1000000|no|no|1",
            // A numeric id, revenue and profit from Transactions (a return nets out).
            "17850|ИП Петров|M2|company|20000|8200|transactions|50000|no|yes|0",
            "R4|ЗАО «Норд»|M2|company|400000|100000|accounts||no|no|0",
        ]
    );
}

#[test]
fn azerbaijani_headers_import_without_mapping() {
    let r = run_file("valid/az-headers.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.rejects().is_empty(), "{:?}", r.rejects());
    assert_eq!(
        r.accounts(LANGUAGE_COLUMNS),
        [
            "R1|Xəzər Polad MMC|M1|company|1200000.5|300000|accounts|2000000|yes|no|1",
            "R2|Volqa Qida ASC|M1|department|800000|200000|accounts|1000000|no|no|1",
            "17850|Petrov FŞ|M2|company|20000|8200|transactions|50000|no|yes|0",
            "R4|Nord QSC|M2|company|400000|100000|accounts||no|no|0",
        ]
    );
    let ds =
        kam::import::import_path(&fixture("valid/az-headers.xlsx"), &Default::default()).unwrap();
    assert_eq!(ds.contacts[0].role.as_deref(), Some("executive"));
    assert_eq!(ds.contacts[1].role.as_deref(), Some("finance"));
}

#[test]
fn a_foreign_export_imports_through_its_mapping_file() {
    let r = run_file("valid/foreign.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.rejects().is_empty(), "{:?}", r.rejects());
    assert_eq!(
        r.accounts(&[
            "id",
            "name",
            "kam_id",
            "industry",
            "revenue",
            "gross_profit",
            "figures_source",
            "wallet",
            "strategic_fit",
            "source"
        ]),
        [
            "C-001|Alpha Industries|jdoe|Industrial|500000|150000|accounts|900000|5|'CRM Export'!A4",
            "C-002|Beta Retail|jdoe|Retail|250000|50000|accounts|260000|2|'CRM Export'!A5",
            "C-003|Gamma Health|asmith|Healthcare|125000|50000|accounts|1000000|4|'CRM Export'!A6",
        ]
    );
    assert!(r.stderr.contains("sheet 'Lookup' ignored"), "{}", r.stderr);
    let ds = kam::import::import_path(
        &fixture("valid/foreign.xlsx"),
        &kam::import::ImportOptions {
            mapping: Some(
                &kam::import::Mapping::load(&fixture("valid/foreign.mapping.yaml")).unwrap(),
            ),
            ..Default::default()
        },
    )
    .unwrap();
    let q: Vec<String> = ds.accounts[0]
        .quarters
        .iter()
        .map(|(k, f)| format!("{k}:{}/{}", f.revenue, f.gross_profit))
        .collect();
    assert_eq!(q, ["2026-Q1:1000/300"]);
    let json = r.file("import.json").replace(
        &fixture("valid/foreign.xlsx").display().to_string(),
        "[fixtures]/valid/foreign.xlsx",
    );
    insta::assert_snapshot!("foreign_import_json", json);
}

#[test]
fn a_plain_sales_export_is_scorable() {
    let r = run_file("valid/transactions-only.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.rejects().is_empty(), "{:?}", r.rejects());
    assert_eq!(
        r.accounts(&[
            "id",
            "name",
            "kam_id",
            "revenue",
            "gross_profit",
            "figures_source",
            "source"
        ]),
        [
            // 500 + 5 × 100 − 100 (credit note); (500 − 300) + (500 − 350) − (100 − 60).
            "C1|Kappa Foods|K7|900|310|transactions|Sales!A2",
            "C2|Lambda Steel|K8|1000|400|transactions|Sales!A3",
            // No cost on its only line: gross profit is unknown, not zero.
            "C3|Mu Pharma|K8|2000||transactions|Sales!A6",
        ]
    );
}

#[test]
fn unreadable_files_get_one_plain_sentence_and_exit_2() {
    let cases = [
        (
            "invalid/empty.xlsx",
            "the file is empty (0 bytes): export the workbook again",
        ),
        (
            "invalid/truncated.xlsx",
            "the file is damaged or incomplete (perhaps a download or copy was cut short): export or copy the workbook again",
        ),
        (
            "invalid/renamed-csv.xlsx",
            "this is a CSV (text) file, not a workbook: open it in Excel or LibreOffice and save it as .xlsx",
        ),
        (
            "invalid/password.xlsx",
            "the workbook is password-protected (encrypted), so kam cannot read it: open it in Excel, remove the password (File → Info → Protect Workbook) and save it again",
        ),
        (
            "invalid/missing-accounts.xlsx",
            "no Accounts sheet and no Transactions sheet to derive accounts from; its sheets are: Contacts, Customer list. Name the client sheet 'Accounts' (or Клиенты, Müştərilər), or say which sheet it is in a mapping file",
        ),
    ];
    for (rel, message) in cases {
        let r = run_file(rel, &[]);
        assert_eq!(r.code, 2, "{rel}");
        assert_eq!(
            r.stderr,
            format!("error: {}: {message}\n", fixture(rel).display()),
            "{rel}"
        );
        assert!(!r.out.exists(), "{rel}: no partial output");
    }
}

#[test]
fn duplicate_and_missing_ids_are_listed_with_both_rows() {
    let r = run_file("invalid/duplicate-ids.xlsx", &[]);
    assert_eq!(r.code, 0);
    let f = fixture("invalid/duplicate-ids.xlsx").display().to_string();
    assert_eq!(
        r.rejects(),
        [
            format!(
                "{f},Accounts,Accounts!A4,id,A1,row,duplicate account id `A1`: already used at Accounts!A2; this row is not used"
            ),
            format!(
                "{f},Accounts,Accounts!A5,id,,row,no account id: the row cannot be matched to anything; fill in the id or delete the row"
            ),
        ]
    );
    assert_eq!(r.accounts(&["id", "gross_profit"]), ["A1|100", "A2|50"]);
    assert!(r.stderr.contains("2 accounts, 0 transaction lines, 0 contacts, 0 activities, 0 tenders, 0 managers, 0 plan items; 2 rows rejected, 0 cells doubtful"), "{}", r.stderr);
}

#[test]
fn child_rows_for_unknown_accounts_are_rejected_with_a_suggestion() {
    let r = run_file("invalid/unknown-account.xlsx", &[]);
    let f = fixture("invalid/unknown-account.xlsx")
        .display()
        .to_string();
    assert_eq!(
        r.rejects(),
        [
            format!(
                "{f},Contacts,Contacts!A3,account_id,ACC-300,row,account `ACC-300` is not in Accounts (did you mean `ACC-100`?); this row is not used"
            ),
            format!(
                "{f},Contacts,Contacts!A4,account_id,ACC-20,row,account `ACC-20` is not in Accounts (did you mean `ACC-200`?); this row is not used"
            ),
        ]
    );
    assert_eq!(r.accounts(&["id", "contacts"]), ["ACC-100|1", "ACC-200|0"]);
}

#[test]
fn text_and_error_cells_in_money_columns_are_listed() {
    let r = run_file("invalid/text-in-money.xlsx", &[]);
    let f = fixture("invalid/text-in-money.xlsx").display().to_string();
    assert_eq!(
        r.rejects(),
        [
            format!(
                "{f},Accounts,Accounts!C2,revenue,about 5000,cell,\"`about 5000` is not an amount: write digits only, e.g. 1234.50\""
            ),
            format!(
                "{f},Accounts,Accounts!D3,gross_profit,n/a,cell,\"`n/a` is not an amount: write digits only, e.g. 1234.50\""
            ),
            format!(
                "{f},Accounts,Accounts!C4,revenue,#N/A,cell,\"error cell #N/A: fix the formula in the source, or clear the cell\""
            ),
            format!(
                "{f},Accounts,Accounts!D4,gross_profit,#DIV/0!,cell,\"error cell #DIV/0!: fix the formula in the source, or clear the cell\""
            ),
            format!(
                "{f},Accounts,Accounts!E4,wallet,TRUE,cell,yes/no where an amount was expected"
            ),
        ]
    );
    // The rows are kept; the doubtful cells are empty, the good ones read (12 000.50 and 12 000,50).
    assert_eq!(
        r.accounts(&["id", "revenue", "gross_profit", "wallet"]),
        ["A1||1000|12000.5", "A2|12000.5||30000", "A3|||"]
    );
}

#[test]
fn bad_dates_are_listed_and_the_lines_still_count() {
    let r = run_file("invalid/bad-dates.xlsx", &[]);
    assert_eq!(r.rejects().len(), 3);
    assert!(r.rejects()[0].ends_with("Transactions,Transactions!A3,date,31.02.2026,cell,`31.02.2026` is not a date: write 2026-03-15 or 15.03.2026"));
    assert!(r.rejects()[2].contains("Transactions!A5,date,2026-13-01"));
    assert_eq!(
        r.accounts(&["id", "revenue", "gross_profit"]),
        ["A1|1500|600"]
    );
    let ds =
        kam::import::import_path(&fixture("invalid/bad-dates.xlsx"), &Default::default()).unwrap();
    let q: Vec<String> = ds.accounts[0]
        .quarters
        .iter()
        .map(|(k, f)| format!("{k}:{}", f.revenue))
        .collect();
    assert_eq!(q, ["2026-Q1:600", "undated:900"]);
}

#[test]
fn strict_turns_rejects_into_exit_1_and_fail_fast_stops_at_the_first() {
    let r = run_file("invalid/duplicate-ids.xlsx", &["--strict"]);
    assert_eq!(r.code, 1);
    assert!(
        r.out.join("rejects.csv").is_file(),
        "strict still writes the output"
    );
    let clean = run(&["run", "--strict"]);
    assert_eq!(clean.code, 0);
    let r = run_file("invalid/duplicate-ids.xlsx", &["--fail-fast"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: stopped at the first problem (--fail-fast): {}: Accounts!A4: duplicate account id `A1`: already used at Accounts!A2; this row is not used\n",
            fixture("invalid/duplicate-ids.xlsx").display()
        )
    );
    assert!(!r.out.exists());
}

#[test]
fn a_failed_run_leaves_the_previous_output_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    kam()
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = fs::read_to_string(out.join("accounts.csv")).unwrap();
    kam()
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(fixture("invalid/truncated.xlsx"))
        .assert()
        .code(2);
    assert_eq!(
        fs::read_to_string(out.join("accounts.csv")).unwrap(),
        before
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("out")]);
}

#[test]
fn a_folder_not_written_by_kam_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("thesis.docx"), "precious").unwrap();
    let o = kam()
        .args(["run", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to replace"));
    assert_eq!(
        fs::read_to_string(dir.path().join("thesis.docx")).unwrap(),
        "precious"
    );
}

#[test]
fn mapping_errors_show_the_line_and_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("bad.mapping.yaml");
    fs::write(&map, "sheets:\n  Accounts:\n    sheet: CRM Export\n    header_row: 3\n    columns:\n      id: \"Cust No\"\n").unwrap();
    let o = kam()
        .args(["run", "--quiet", "--mapping"])
        .arg(&map)
        .arg(fixture("valid/foreign.xlsx"))
        .arg("--out")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let expected = format!(
        "error: {m}: column `Cust No` (for Accounts.id) is not in sheet 'CRM Export' (header row 3)\n --> {m}:6:12\n  |\n6 |       id: \"Cust No\"\n  |            ^^^^^^^\n  = hint: did you mean `Cust #`?\n",
        m = map.display()
    );
    assert_eq!(err, expected);

    fs::write(&map, "sheets:\n  Accounts:\n    sheet: crm export\n    derived:\n      gross_profit: revenue - cogs\n").unwrap();
    let o = kam()
        .args(["run", "--quiet", "--mapping"])
        .arg(&map)
        .arg(fixture("valid/foreign.xlsx"))
        .arg("--out")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let expected = format!(
        "error: {m}: the expression for `gross_profit` uses `cogs`, which sheet 'CRM Export' does not have\n --> {m}:5:31\n  |\n5 |       gross_profit: revenue - cogs\n  |                               ^^^^\n  = hint: did you mean `cogs_fy`?\n",
        m = map.display()
    );
    assert_eq!(err, expected);
}

#[test]
fn a_missing_file_suggests_the_near_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("valid/kam-sample.xlsx"),
        dir.path().join("clients.xlsx"),
    )
    .unwrap();
    let o = kam()
        .current_dir(dir.path())
        .args(["run", "client.xlsx", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: client.xlsx: no such file; did you mean ./clients.xlsx?\n"
    );
}

#[test]
fn several_workbooks_get_one_folder_each() {
    let r = run(&[
        "run",
        fixture("valid/ru-headers.xlsx").to_str().unwrap(),
        fixture("valid/az-headers.xlsx").to_str().unwrap(),
        "-j",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out.join("ru-headers/accounts.csv").is_file());
    assert!(r.out.join("az-headers/accounts.csv").is_file());
    assert!(
        r.file("manifest.json")
            .contains("\"output\": \"az-headers\"")
    );
}

#[test]
fn sample_is_deterministic_and_imports_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.xlsx");
    let b = dir.path().join("b.xlsx");
    let c = dir.path().join("c.xlsx");
    for (p, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        kam()
            .args([
                "sample",
                "--accounts",
                "300",
                "--kams",
                "7",
                "--seed",
                seed,
                "-q",
            ])
            .arg(p)
            .assert()
            .success();
    }
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "same seed, same bytes"
    );
    assert_ne!(fs::read(&a).unwrap(), fs::read(&c).unwrap());
    let ds = kam::import::import_path(&a, &Default::default()).unwrap();
    assert!(
        ds.rejects.is_empty(),
        "{:?}",
        &ds.rejects[..ds.rejects.len().min(3)]
    );
    assert_eq!(ds.accounts.len(), 300);
    assert_eq!(ds.managers.len(), 7);
    assert_eq!(ds.transaction_lines, 3000);
    assert_eq!(ds.activities.len(), 3000);
    // The generator plants one critical-dependency client (22 % of gross profit).
    let total: f64 = ds.accounts.iter().filter_map(|a| a.gross_profit).sum();
    let top = ds.accounts[0].gross_profit.unwrap() / total;
    assert!((0.19..0.25).contains(&top), "top share {top}");
    assert!(
        ds.accounts
            .iter()
            .any(|a| a.revenue.is_none() && a.wallet.is_some()),
        "some clients buy nothing yet"
    );
    assert!(
        ds.activities
            .iter()
            .any(|a| a.kind == "proposal" && a.expiry.is_none())
    );
    assert!(
        ds.activities
            .iter()
            .any(|a| a.kind == "complaint" && a.resolved.is_none())
    );
}

#[test]
fn schema_matches_the_docs() {
    let o = kam()
        .args(["schema", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let md = String::from_utf8(o.stdout).unwrap();
    let docs =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/workbook.md")).unwrap();
    assert!(
        docs.contains(&md),
        "docs/workbook.md is out of date: paste `kam schema --format markdown` into it"
    );
    let o = kam()
        .args(["schema", "--sheet", "Acounts"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean Accounts?"));
}

#[test]
fn help_reads_well() {
    let o = kam().arg("--help").output().unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    for word in ["run", "sample", "schema", "Run with no arguments"] {
        assert!(help.contains(word), "{help}");
    }
    for sub in ["run", "sample", "schema"] {
        let o = kam().args([sub, "--help"]).output().unwrap();
        assert!(o.status.success(), "{sub}");
    }
    let o = kam().args(["run", "--jobs", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn output_is_identical_for_any_jobs_value() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("s.xlsx");
    kam()
        .args([
            "sample",
            "--accounts",
            "400",
            "--kams",
            "9",
            "--seed",
            "3",
            "-q",
        ])
        .arg(&book)
        .assert()
        .success();
    let read = |jobs: &str| {
        let out = dir.path().join(format!("out-{jobs}"));
        kam()
            .args(["run", "-q", "--jobs", jobs, "--out"])
            .arg(&out)
            .arg(&book)
            .assert()
            .success();
        [
            "accounts.csv",
            "rejects.csv",
            "import.json",
            "manifest.json",
        ]
        .map(|f| fs::read(out.join(f)).unwrap())
    };
    assert_eq!(read("1"), read("2"));
    assert_eq!(read("2"), read("2"));
}
