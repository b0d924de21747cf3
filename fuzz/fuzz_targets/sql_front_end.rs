//! The SQL front end: splitting, parsing into the IR and linting, for both dialects, on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::analysis::{lint, LintOptions};
use sluice_core::migration::parse_text;
use sluice_core::target::{EngineKind, Target};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for engine in [EngineKind::Postgres, EngineKind::MariaDb] {
        let _ = sluice_core::sql::split(engine, &text);
        if let Ok(m) = parse_text(Path::new("fuzz.sql"), 1, "fuzz".into(), &text) {
            let _ = lint(Target::new(engine, 15, 0), &[m], &LintOptions { include_down: true, ..Default::default() });
        }
    }
});
