//! Arbitrary bytes as a workbook: import must return a dataset or an error, never panic,
//! hang or exhaust memory. The first byte picks the name's extension (the format is told from
//! the bytes, the name only appears in messages).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: kam::panics::abort_unless_contained(),
    |data: &[u8]| {
    let (ext, bytes) = match data.split_first() {
        Some((b, rest)) => (["xlsx", "xls", "xlsb", "ods"][(*b % 4) as usize], rest),
        None => ("xlsx", data),
    };
    let opts = kam::import::ImportOptions {
        parallel: false,
        ..Default::default()
    };
    let _ = kam::import::import_bytes(&format!("fuzz.{ext}"), bytes, &opts);
    }
);
