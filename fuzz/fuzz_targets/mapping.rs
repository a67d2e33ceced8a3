//! Arbitrary text as a mapping file: parsing must report problems, never panic; a mapping that
//! parses is applied to the embedded sample.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // As kam's binary: a panic inside a contained reader section is an error for that
        // workbook; any other panic is a finding (abort, so libFuzzer saves the input).
        std::panic::set_hook(Box::new(|info| {
            if kam::panics::is_contained() {
                return;
            }
            eprintln!("{info}");
            std::process::abort();
        }));
    },
    |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mapping) = kam::import::Mapping::parse(Path::new("fuzz.mapping.yaml"), text) else {
        return;
    };
    let opts = kam::import::ImportOptions {
        mapping: Some(&mapping),
        parallel: false,
        ..Default::default()
    };
    let _ = kam::import::import_bytes("sample.xlsx", kam::SAMPLE_WORKBOOK, &opts);
    }
);
