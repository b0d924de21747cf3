//! Marker near-misses: whatever line stands where `-- sluice:down` should be, a file that parses
//! never carries the down SQL in its up part when that line's comment begins like a marker.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// Judged independently of the parser: the first words of the line's first comment.
fn begins_like_marker(line: &str) -> bool {
    let lower = line.to_lowercase();
    let Some(at) = ["--", "#", "/*"].iter().filter_map(|m| lower.find(m)).min() else {
        return false;
    };
    let words: Vec<&str> = lower[at..]
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(2)
        .collect();
    match words.as_slice() {
        ["sluiceup" | "sluicedown", ..] => true,
        ["sluice", "up" | "down"] => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data).replace(['\n', '\r'], " ");
    let text = format!("-- sluice:up\nSELECT 1;\n{line}\nDROP TABLE sentinel_t;\n");
    let Ok(m) = sluice_core::migration::parse_text(Path::new("1_f.sql"), 1, "f".into(), &text) else {
        return;
    };
    if m.up.sql.contains("sentinel_t") && line.trim() != "-- sluice:down" {
        assert!(!begins_like_marker(&line), "near-miss accepted as a comment: {line:?}");
    }
});
