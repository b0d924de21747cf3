//! URL redaction: any text standing for a URL, with a distinctive password put in its userinfo or
//! a password parameter, goes through every message path sluice-core has; the password never
//! shows. The input is `shape \0 password`; the shape's `{p}` marks where the password goes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::dburl::DbUrl;
use sluice_core::redact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (shape, pw) = text.split_once('\0').unwrap_or((&text, "Zq7kP2vX9m"));
    // A password distinctive enough to search for: fuzzed characters around a fixed core that no
    // shape word contains.
    let password = format!("{pw}Qx8Vb3Nw6");
    if !shape.contains("{p}") || shape.contains("Qx8Vb3Nw6") || password.contains('\0') {
        return;
    }
    let userinfo = format!("postgres://u:{}@h/db", password);
    let param = format!("mysql://u@h/db?password={}", password);
    for raw in [shape.replace("{p}", &password), userinfo, param] {
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
        let is_secret = raw.contains(&format!(":{password}@")) || raw.contains(&format!("password={password}"));
        if is_secret && !password.chars().any(|c| c.is_whitespace() || c == '@') {
            for m in &out {
                assert!(!m.contains("Qx8Vb3Nw6"), "{raw:?} -> {m:?}");
            }
        }
    }
});
