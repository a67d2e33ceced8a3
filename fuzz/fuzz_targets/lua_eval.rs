//! Arbitrary Lua under kam's sandbox: compiling and calling `measure` must return a value or an
//! error within the instruction budget and memory limit, never panic, hang or escape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: kam::panics::abort_unless_contained(),
    |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = kam::rules::Limits {
        instructions: 100_000,
        memory: 16 << 20,
        time_ms: 250,
    };
    let Ok(mut vm) = kam::rules::lua::LuaVm::new(&[("fuzz.lua".to_string(), text.to_string())], limits)
    else {
        return;
    };
    vm.set_keys(&["share".to_string(), "name".to_string()], &[0, 1]);
    let slots = [
        kam::expr::V::Num(0.25),
        kam::expr::V::Str(std::borrow::Cow::Borrowed("Acme")),
    ];
    let _ = vm.measure("measure", &slots);
    let _ = vm.criterion("criterion", &slots);
    }
);
