//! Arbitrary text as a rule pack: loading and checking it must report problems, never panic.
//! When it loads, the pack scores the embedded sample (expressions, tables, Lua are exercised).
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: kam::panics::abort_unless_contained(),
    |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = vec![(PathBuf::from("fuzz/pack.yaml"), text.to_string())];
    let (rules, problems) = kam::rules::load_files(None, &files, &[]);
    if !problems.is_empty() {
        for p in &problems {
            let _ = p.to_string();
        }
        return;
    }
    let Ok(ds) = kam::import::import_bytes("sample.xlsx", kam::SAMPLE_WORKBOOK, &Default::default())
    else {
        return;
    };
    if let Ok(engine) = kam::score::Engine::new(&rules, &ds.account_extras.names) {
        let _ = engine.score(&ds, 1, true);
    }
    }
);
