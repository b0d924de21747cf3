//! The SQL front end: splitting, parsing into the IR and linting, for both dialects, on any text.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sql_front_end(data));
