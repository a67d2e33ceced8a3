//! Scoring benchmark: import once, then score with the default pack, with tracing off and on,
//! with and without its Lua measure, on 1 and 2 threads. Prints accounts per second and the
//! ratios the closing notes quote (all measured in the same run).
//!
//! `cargo bench --bench scoring -- [ACCOUNTS ...]` (default: 100000 1000000)

use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use kam::import::{ImportOptions, import_path};
use kam::rules;
use kam::sample::{SampleOptions, write_sample};
use kam::score::Engine;

/// The default pack's `strategic_definitions` measure, written in Lua instead.
const LUA_MEASURE: &str = r#"
function strategic_definitions(account, ctx)
  local p = ctx.params
  local n = 0
  if account.reference or (account.brand_score or -1) >= p.reference_brand_score then n = n + 1 end
  if (account.partnership or -1) >= p.partner_score then n = n + 1 end
  if (account.competence or -1) >= p.competence_score then n = n + 1 end
  if account.innovator then n = n + 1 end
  return n
end
"#;

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
    // The default pack, and the same pack with one measure computed by a Lua function.
    let lua_dir = dir.join("rules-with-lua");
    std::fs::create_dir_all(&lua_dir).unwrap();
    let default_yaml = rules::DEFAULT_FILES[0].1;
    let start = default_yaml
        .find("  strategic_definitions:\n")
        .expect("the measure");
    let end = start
        + default_yaml[start..]
            .find("    description:")
            .expect("its description");
    let yaml = format!(
        "lua: [plugin.lua]\n{}  strategic_definitions:\n    lua: strategic_definitions\n{}",
        &default_yaml[..start],
        &default_yaml[end..]
    );
    std::fs::write(lua_dir.join("key-clients.yaml"), yaml).unwrap();
    std::fs::write(lua_dir.join("plugin.lua"), LUA_MEASURE).unwrap();
    let without_lua = rules::load(None, &[]).expect("default rules");
    let with_lua = rules::load(Some(&lua_dir), &[]).expect("rules with a Lua measure");

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
            ("default pack", &without_lua),
            ("with a Lua measure", &with_lua),
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
