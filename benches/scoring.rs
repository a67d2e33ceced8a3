//! Scoring benchmark: import once, then score with the default pack, with tracing off and on,
//! with and without its Lua measure, on 1 and 2 threads. Prints accounts per second and the
//! ratios the closing notes quote (all measured in the same run).
//!
//! `cargo bench --bench scoring -- [ACCOUNTS ...]` (default: 100000 1000000)

use std::path::PathBuf;
use std::time::Instant;

use kam::import::{ImportOptions, import_path};
use kam::rules;
use kam::sample::{SampleOptions, write_sample};
use kam::score::Engine;

const NO_LUA_MEASURE: &str = "    expr: >-\n      if(coalesce(reference, false) or coalesce(brand_score, -1) >= reference_brand_score, 1, 0)\n      + if(coalesce(partnership, -1) >= partner_score, 1, 0)\n      + if(coalesce(competence, -1) >= competence_score, 1, 0)\n      + if(coalesce(innovator, false), 1, 0)\n";

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    // Rules without Lua: the same pack with the Lua measure written as an expression.
    let no_lua_dir = dir.join("rules-no-lua");
    std::fs::create_dir_all(&no_lua_dir).unwrap();
    let yaml = rules::DEFAULT_FILES[0]
        .1
        .replace("    lua: strategic_definitions\n", NO_LUA_MEASURE)
        .replace("lua: [key-clients.lua]\n", "");
    std::fs::write(no_lua_dir.join("key-clients.yaml"), yaml).unwrap();
    let with_lua = rules::load(None, &[]).expect("default rules");
    let without_lua = rules::load(Some(&no_lua_dir), &[]).expect("rules without Lua");

    for n in sizes {
        let book = dir.join(format!("scoring-{n}.xlsx"));
        if !book.exists() {
            let t = Instant::now();
            let opts = SampleOptions {
                accounts: n,
                kams: (n / 500).max(5),
                seed: 1,
                transactions: Some(n.min(1_000_000)),
                activities: Some((n / 5).min(1_000_000)),
            };
            write_sample(&opts, &book).unwrap();
            println!(
                "generated {} in {:.1} s",
                book.display(),
                t.elapsed().as_secs_f64()
            );
        }
        let t = Instant::now();
        let ds = import_path(&book, &ImportOptions::default()).unwrap();
        let import = t.elapsed().as_secs_f64();
        println!("\n{n} accounts: import {import:.2} s");
        let mut base = None;
        for (label, rules) in [
            ("with Lua measure", &with_lua),
            ("expressions only", &without_lua),
        ] {
            let engine = Engine::new(rules, &ds.account_extras.names).unwrap();
            for trace in [false, true] {
                // Alternate 1 and 2 threads, twice each, and keep the best of each: the machine is
                // shared, and the first run after a large free pays for the allocator.
                let mut times = [f64::MAX, f64::MAX];
                for jobs in [2, 1, 2, 1] {
                    let t = Instant::now();
                    let scored = engine.score(&ds, jobs, trace).unwrap();
                    let secs = t.elapsed().as_secs_f64();
                    assert_eq!(scored.accounts.len(), n);
                    drop(scored);
                    let slot = &mut times[jobs - 1];
                    *slot = slot.min(secs);
                }
                let [one, two] = [times[0], times[1]];
                if base.is_none() {
                    base = Some(two);
                }
                println!(
                    "  {label:<17} trace {:<3}: 1 thread {one:.2} s ({:.0} acc/s), 2 threads {two:.2} s ({:.0} acc/s), speedup {:.2}x, 2-thread scoring / import {:.0} %",
                    if trace { "on" } else { "off" },
                    n as f64 / one,
                    n as f64 / two,
                    one / two,
                    100.0 * two / import
                );
            }
        }
    }
}
