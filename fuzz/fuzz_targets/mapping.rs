//! Arbitrary text as a mapping file: parsing must report problems, never panic; a mapping that
//! parses is applied to the embedded sample.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: kam::panics::abort_unless_contained(),
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
