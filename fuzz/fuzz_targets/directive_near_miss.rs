//! Marker near-misses: whatever line stands where `-- sluice:down` should be, a file that parses
//! never carries the down SQL in its up part when that line's comment begins like a marker.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::directive_near_miss(data));
