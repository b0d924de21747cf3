//! The file loader: names and bytes as they come from disk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let split = data.iter().position(|b| *b == 0).unwrap_or(0);
    let name = String::from_utf8_lossy(&data[..split]).replace(['/', '\\'], "_");
    let _ = sluice_core::migration::parse_file_name(&name);
    let path = dir.join("1_fuzz.sql");
    if std::fs::write(&path, &data[split..]).is_ok() {
        let _ = sluice_core::migration::load_file(&path);
        let _ = sluice_core::migration::load_any(&path);
    }
});
