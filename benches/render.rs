//! Report rendering benchmark: account plans for every account and a review per KAM.
//!
//! Generates (once, cached in `target/bench/`) a workbook with `kam sample`: 10 000 accounts,
//! 100 000 transaction lines, 100 000 activities and 200 KAMs; imports and scores it once, then
//! renders and writes every report (`--all-plans`: 10 000 plans and 200 reviews, each in HTML
//! and Markdown, the portfolio summary and the index) into staging folders that are thrown
//! away at the end, alternating 2 and 1 threads and keeping the best of two each.
//! `KAM_RENDER_OUT=/dev/shm/x` writes to a tmpfs instead, to see the rendering without the disk.
//!
//! `cargo bench --bench render -- [ACCOUNTS [KAMS]]` (default: 10000 200)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Instant;

use kam::import::{ImportOptions, import_path};
use kam::output::Staging;
use kam::report::{self, Templates};
use kam::rules;
use kam::sample::{SampleOptions, write_sample};
use kam::score::Engine;
use kam::score::kams::KamEngine;

fn main() {
    // As the binary does; KAM_THP=1 keeps huge pages, to measure what turning them off saves.
    if std::env::var_os("KAM_THP").is_none() {
        kam::cli::prefer_small_pages();
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(10_000);
    let kams = args.get(1).copied().unwrap_or(200);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let book = dir.join(format!("render-{n}-{kams}.xlsx"));
    if !book.exists() {
        let opts = SampleOptions {
            accounts: n,
            kams,
            seed: 1,
            transactions: Some(n * 10),
            activities: Some(n * 10),
        };
        write_sample(&opts, &book).unwrap();
    }
    let ds = import_path(&book, &ImportOptions::default()).unwrap();
    let rules = rules::load(None, &[]).expect("default rules");
    let engine = Engine::new(&rules, &ds.account_extras.names).unwrap();
    let mut scored = engine.score(&ds, 0, false).unwrap();
    let kam_engine = KamEngine::new(&rules, &ds).expect("a KAM pack").unwrap();
    scored.managers = Some(
        kam_engine
            .score(&ds, &scored.accounts, 0, false, None)
            .unwrap(),
    );
    let mut templates = Templates::load(None, "en").unwrap();
    // KAM_RENDER_OUT picks the folder (e.g. on tmpfs, to separate rendering from the disk).
    let out = std::env::var_os("KAM_RENDER_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("render-out"));
    let mut best = [f64::MAX, f64::MAX];
    let mut written = report::Written::default();
    // Each pass writes a fresh folder; all are removed at the end, not between passes (ext4
    // skips inodes freed in the last seconds, which made back-to-back passes measure that).
    let mut folders = Vec::new();
    for (pass, jobs) in [2, 1, 2, 1].into_iter().enumerate() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .unwrap();
        let staging = Staging::begin(&out.join(format!("pass-{pass}"))).unwrap();
        let t = Instant::now();
        written = pool
            .install(|| {
                report::write_all(
                    &staging,
                    &mut templates,
                    &ds,
                    &scored,
                    &rules,
                    kam::output::scores::portfolio_json(&scored),
                    &report::Options {
                        all_plans: true,
                        no_plans: false,
                        previous: None,
                        strict: true,
                        prefix: "",
                    },
                    &|_| {},
                )
            })
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        best[jobs - 1] = best[jobs - 1].min(secs);
        folders.push(staging);
    }
    drop(folders); // not committed: the folders are removed
    let (t1, t2) = (best[0], best[1]);
    println!(
        "{} accounts, {} KAMs: {} plans and {} reviews (HTML + Markdown each), portfolio and index",
        ds.accounts.len(),
        ds.managers.len(),
        written.plans,
        written.reviews
    );
    println!(
        "  1 thread {t1:.2} s ({:.0} plans/s), 2 threads {t2:.2} s ({:.0} plans/s); speedup {:.2}x",
        written.plans as f64 / t1,
        written.plans as f64 / t2,
        t1 / t2
    );
}
