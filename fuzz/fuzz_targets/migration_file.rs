//! The file loader: names and bytes as they come from disk.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    checks::migration_file(data, &dir);
});
