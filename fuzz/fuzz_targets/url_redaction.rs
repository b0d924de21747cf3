//! URL redaction: any text standing for a URL, with a distinctive password put in its userinfo or
//! a password parameter, goes through every message path sluice-core has; the password never
//! shows. The input is `shape \0 password`; the shape's `{p}` marks where the password goes.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::url_redaction(data));
