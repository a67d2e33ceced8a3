//! Arbitrary bytes as the `<sheetData>` of a one-sheet .xlsx (or its whole sheet part, and
//! after `\0sst\0` its shared strings; see `kam::import::xlsx::compare_with_calamine`):
//! kam's own cell reader (`import::xlsx`) must give exactly the rows, declared size and errors
//! calamine gives, never panic, and hand the sheet to calamine where it cannot read on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: kam::panics::abort_unless_contained(),
    |data: &[u8]| {
    if let Err(difference) = kam::import::xlsx::compare_with_calamine(data) {
        panic!("kam's .xlsx reader differs from calamine:\n{difference}");
    }
    }
);
