//! The fuzz targets' checks, as plain functions: cargo-fuzz runs them under libFuzzer
//! (`fuzz_targets/`), and `crates/sluice-core/tests/fuzz_stable.rs` runs them on stable Rust in
//! every test run with a seeded mutator, so the guards stand in CI without a nightly toolchain.
#![allow(dead_code)]

use sluice_core::dburl::DbUrl;
use sluice_core::lint::{lint, LintOptions};
use sluice_core::migration::parse_text;
use sluice_core::redact;
use sluice_core::target::{EngineKind, Target};
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
    matches!(
        words.as_slice(),
        ["sluiceup" | "sluicedown", ..] | ["sluice", "up" | "down"]
    )
}

/// Marker near-misses: whatever line stands where `-- sluice:down` should be, a file that parses
/// never carries the down SQL in its up part when that line's comment begins like a marker.
pub fn directive_near_miss(data: &[u8]) {
    let line = String::from_utf8_lossy(data).replace(['\n', '\r'], " ");
    let text = format!("-- sluice:up\nSELECT 1;\n{line}\nDROP TABLE sentinel_t;\n");
    let Ok(m) = parse_text(Path::new("1_f.sql"), 1, "f".into(), &text) else {
        return;
    };
    if m.up.sql.contains("sentinel_t") && line.trim() != "-- sluice:down" {
        assert!(
            !begins_like_marker(&line),
            "near-miss accepted as a comment: {line:?}"
        );
    }
}

/// The file loader: names and bytes as they come from disk (`name \0 contents`); it must not
/// panic.
pub fn migration_file(data: &[u8], dir: &Path) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(0);
    let name = String::from_utf8_lossy(&data[..split]).replace(['/', '\\'], "_");
    let _ = sluice_core::migration::parse_file_name(&name);
    let path = dir.join("1_fuzz.sql");
    if std::fs::write(&path, &data[split..]).is_ok() {
        let _ = sluice_core::migration::load_file(&path);
        let _ = sluice_core::migration::load_any(&path);
    }
}

/// The SQL front end: splitting, parsing into the IR and linting, for both dialects, on any text;
/// it must not panic.
pub fn sql_front_end(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for engine in [EngineKind::Postgres, EngineKind::MariaDb] {
        let _ = sluice_core::sql::split(engine, &text);
        if let Ok(m) = parse_text(Path::new("fuzz.sql"), 1, "fuzz".into(), &text) {
            let _ = lint(
                Target::new(engine, 15, 0),
                &[m],
                &LintOptions {
                    include_down: true,
                    ..Default::default()
                },
            );
        }
    }
}

/// URL redaction: any text standing for a URL, with a distinctive password put in its userinfo or
/// a password parameter, goes through every message path sluice-core has; the password never
/// shows. The input is `shape \0 password`; the shape's `{p}` marks where the password goes.
pub fn url_redaction(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (shape, pw) = text.split_once('\0').unwrap_or((&text, "Zq7kP2vX9m"));
    // A password distinctive enough to search for: fuzzed characters around a fixed core that no
    // shape word contains.
    let password = format!("{pw}Qx8Vb3Nw6");
    if !shape.contains("{p}") || shape.contains("Qx8Vb3Nw6") || password.contains('\0') {
        return;
    }
    let userinfo = format!("postgres://u:{password}@h/db");
    let param = format!("mysql://u@h/db?password={password}");
    for raw in [shape.replace("{p}", &password), userinfo, param] {
        // A password that also stands elsewhere (as the user name, say) is printed there as what
        // it is there: only a URL holding it once, as its secret, can be judged.
        if raw.matches(password.as_str()).count() != 1 {
            continue;
        }
        let mut out = vec![redact::url_text(&raw)];
        match DbUrl::parse(&raw) {
            Err(e) => {
                out.push(e.to_string());
                out.push(e.help().unwrap_or_default());
            }
            Ok(u) => {
                out.push(u.redacted());
                out.push(format!("{u:?}"));
                out.push(u.scrub(&format!("user {} at {}", u.username(), u.host())));
            }
        }
        // Only where the password sits in a URL's userinfo or a password parameter is it a secret
        // sluice can know of; elsewhere in a shape it is plain text.
        // (`u:pw@`, or `password=pw` as a parameter: after `?`, `&`, `;` or a space, not inside a
        // user name such as `upassword=pw:x@`).
        let is_secret = raw.contains(&format!(":{password}@"))
            || ["?", "&", ";", " "]
                .iter()
                .any(|sep| raw.contains(&format!("{sep}password={password}")));
        // Not judged: a password holding whitespace, `@` or `://` in a malformed URL, where no
        // reader can tell where it ends or where the URL begins.
        let findable = !password.chars().any(|c| c.is_whitespace() || c == '@')
            && !format!(":{password}").contains("://");
        if is_secret && findable {
            for m in &out {
                assert!(!m.contains("Qx8Vb3Nw6"), "{raw:?} -> {m:?}");
            }
        }
    }
}
