//! The one place secrets are taken out of text before it is printed or stored.
//!
//! [`secrets`] works on the structure of what it is given, never on a known password: replacing a
//! known password by substring reveals it whenever it also occurs elsewhere (a password equal to the
//! user name turned `user "alice"` into `user "***"`). It hides the userinfo of anything URL-shaped
//! (`scheme://u:pw@h`, `scheme:/u:pw@h`, `u:pw@h/db`, ...) and the values of password-like
//! parameters (`?password=`, `pass=`, conninfo `password='...'`). It over-redacts rather than guess.
//!
//! [`sql_shape`] turns server-provided SQL (another session's query) into its literal-free form.

/// `text` with every URL userinfo password and every password-like parameter value replaced by `***`.
/// Whitespace separates URL-shaped tokens; use [`url_text`] for a string that is one URL as a whole.
pub fn secrets(text: &str) -> String {
    let text = keywords(text, false);
    // Tokens and the whitespace after each.
    let mut parts: Vec<(&str, &str)> = vec![];
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let t_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let ws_len = rest[t_end..]
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len() - t_end);
        parts.push((&rest[..t_end], &rest[t_end..t_end + ws_len]));
        rest = &rest[t_end + ws_len..];
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < parts.len() {
        let (token, ws) = parts[i];
        // `scheme://u:pass word@h`: the token ends in a "port" that is no number and has no `@`;
        // when a later token on the same line has one, the password ran over the spaces.
        if let Some(colon) = odd_port(token) {
            let joined = parts[i + 1..]
                .iter()
                .take_while(|(t, _)| authority_start(t).is_none())
                .position(|(t, _)| t.contains('@'))
                .filter(|&n| !parts[i..=i + n].iter().any(|(_, w)| w.contains('\n')))
                .map(|n| i + 1 + n);
            if let Some(j) = joined {
                let (last, last_ws) = parts[j];
                let at = last.rfind('@').unwrap_or(0);
                out.push_str(&token[..=colon]);
                out.push_str("***");
                out.push_str(&last[at..]);
                out.push_str(last_ws);
                i = j + 1;
                continue;
            }
            // No `@` follows: when the "port" ends the token, the rest of the line may be more of it.
            if !token[colon..].contains(['/', '?', '#']) {
                out.push_str(&token[..=colon]);
                out.push_str("***");
                let eol = parts[i..].iter().position(|(_, w)| w.contains('\n'));
                match eol {
                    Some(n) => {
                        let ws = parts[i + n].1;
                        out.push_str(&ws[ws.find('\n').unwrap_or(0)..]);
                        i += n + 1;
                    }
                    None => i = parts.len(),
                }
                continue;
            }
        }
        out.push_str(&userinfo(token));
        out.push_str(ws);
        i += 1;
    }
    out
}

/// Where the authority of a URL-shaped token starts: after `://`, after `scheme:/` (one slash, a
/// typo), or after a leading `//`; None for a token that is not URL-shaped.
fn authority_start(token: &str) -> Option<usize> {
    if let Some(p) = token.find("://") {
        return Some(p + 3);
    }
    if let Some(p) = token.find('/') {
        // Quotes or brackets may come before the scheme.
        let head = token[..p].trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        let scheme = head.strip_suffix(':').unwrap_or(head);
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
        if is_scheme || head.is_empty() {
            return Some(p + token[p..].len() - token[p..].trim_start_matches('/').len());
        }
    }
    None
}

/// The byte offset of the `:` before a non-numeric "port" of a URL-shaped token without `@`.
fn odd_port(token: &str) -> Option<usize> {
    let start = authority_start(token)?;
    let rest = &token[start..];
    if rest.contains('@') {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let colon = rest[..end].rfind(':')?;
    let port = &rest[colon + 1..end];
    let in_brackets = rest[..end].rfind(']').is_some_and(|b| b > colon);
    (!port.is_empty() && !in_brackets && !port.bytes().all(|b| b.is_ascii_digit()))
        .then_some(start + colon)
}

/// A string given as a database URL (which may be malformed in any way), fit for a message: spaces
/// in it do not end the URL, so a password with a space is hidden whole.
pub fn url_text(raw: &str) -> String {
    userinfo(&keywords(raw, true))
}

/// The password-parameter rule alone (`?password=…` hidden to the URL's end).
pub fn url_params(url: &str) -> String {
    keywords(url, true)
}

/// The userinfo rule alone, for a URL whose parameters are already redacted: a parsed URL can still
/// hide a password in its path (`postgres://u:1/pw@h/db` parses with host `u`, port 1).
pub fn url_userinfo(url: &str) -> String {
    userinfo(url)
}

/// The parameter names whose values are secrets.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(k.as_str(), "pass" | "pwd" | "secret" | "token")
        || k.contains("password")
        || k.contains("passwd")
}

/// Hides the value after every `key=` (with optional spaces around `=`) whose key is secret. A
/// quoted value (`'...'` or `"..."`, backslash escapes) is hidden to its closing quote, an unquoted
/// one to the next whitespace, or in a URL (`whole_url`) to its end: URL separators (`&`, `;`)
/// and spaces may be part of a mistyped password.
fn keywords(text: &str, whole_url: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_word = is_key_char(c) && (i == 0 || !is_key_char(chars[i - 1]));
        if !starts_word {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && is_key_char(chars[j]) {
            j += 1;
        }
        let key: String = chars[i..j].iter().collect();
        out.push_str(&key);
        let mut k = j;
        while k < chars.len() && chars[k] == ' ' {
            k += 1;
        }
        if k >= chars.len() || chars[k] != '=' || !is_secret_key(&key) {
            i = j;
            continue;
        }
        k += 1;
        while k < chars.len() && chars[k] == ' ' {
            k += 1;
        }
        out.push_str("=***");
        // A URL parameter in free text: its value may hold spaces typed by mistake; the line ends it.
        // (`;` and `/` too: a parameter typed with the wrong separator, `/db;password=…`.)
        let in_query = i > 0 && matches!(chars[i - 1], '?' | '&' | ';' | '/');
        i = match chars.get(k) {
            Some(&q @ ('\'' | '"')) => {
                let mut m = k + 1;
                loop {
                    match chars.get(m) {
                        None => break m,
                        Some('\\') => m += 2,
                        Some(&c) if c == q => {
                            if chars.get(m + 1) == Some(&q) {
                                m += 2;
                            } else {
                                break m + 1;
                            }
                        }
                        Some(_) => m += 1,
                    }
                }
                .min(chars.len())
            }
            _ => {
                let mut m = k;
                while m < chars.len()
                    && (whole_url || !chars[m].is_whitespace() || (in_query && chars[m] != '\n'))
                {
                    m += 1;
                }
                m
            }
        };
    }
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// One URL-shaped token with the password of its userinfo hidden. The userinfo ends at the last `@`
/// (a password may hold `@`; a host may not) and starts after `://`, or at the token's start when
/// there is none (`postgres:/u:pw@h` and `u:pw@h` alike); everything after its first `:` is hidden.
/// Without an `@`, a non-numeric "port" (`postgres://u:pw/db`, the `@` forgotten) is hidden too.
fn userinfo(token: &str) -> String {
    if token.is_empty() {
        return String::new();
    }
    if let Some(at) = token.rfind('@') {
        // The last `@` ends the userinfo (a password may hold an unencoded `@`); the scheme is the
        // first `://` before it. Text before that scheme is judged on its own: a mistyped value
        // can hold two URLs run together.
        let start = token[..at].find("://").map_or(0, |p| p + 3);
        let head = userinfo(&token[..start]);
        let info = &token[start..at];
        if let Some(colon) = info.find(':') {
            return format!("{head}{}***{}", &info[..=colon], &token[at..]);
        }
        return format!("{head}{}", &token[start..]);
    }
    if let Some(colon) = odd_port(token) {
        let rest = &token[colon..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        return format!("{}***{}", &token[..=colon], &rest[end..]);
    }
    token.to_string()
}

/// A name a server reports (user, application): control characters dropped (no terminal escape
/// sequences), at most `max_chars` characters.
pub fn label(s: &str, max_chars: usize) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() > max_chars {
        format!("{}…", clean.chars().take(max_chars).collect::<String>())
    } else {
        clean
    }
}

/// One session that holds a lock sluice waits for, as reported and stored: who and how long,
/// and what it runs without any literal.
#[allow(clippy::too_many_arguments)]
pub fn lock_holder(
    id_kind: &str,
    id: i64,
    user: &str,
    application: Option<&str>,
    state: &str,
    age_secs: i64,
    holds: Option<&str>,
    query: &str,
    dialect: Dialect,
) -> String {
    let app = application
        .filter(|a| !a.is_empty())
        .map(|a| format!(", application {}", label(a, 40)))
        .unwrap_or_default();
    let holds = holds
        .map(|m| format!(", holds {}", label(m, 40)))
        .unwrap_or_default();
    let shape = sql_shape(query, dialect, 120);
    let query = if shape.is_empty() {
        String::new()
    } else {
        format!(": {shape}")
    };
    format!(
        "{id_kind} {id} (user {}{app}, {}, transaction open {age_secs} s{holds}){query}",
        label(user, 40),
        label(state, 40)
    )
}

/// The SQL dialect of a server-provided query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
}

/// `sql` with every literal replaced by `?`: string literals ('', E'', X'', B'', N'', `_charset''`,
/// MariaDB "double-quoted" strings), dollar-quoted strings, numbers and hex/binary numbers. Comments
/// are dropped; whitespace collapses; control characters are dropped. What cannot be tokenised
/// safely (an unterminated literal or comment, or a quoted literal holding a backslash, whose end
/// depends on server settings) ends the text with `…`. At most `max_chars` characters are kept.
pub fn sql_shape(sql: &str, dialect: Dialect, max_chars: usize) -> String {
    let my = dialect == Dialect::MySql;
    let c: Vec<char> = sql.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut cut = false;
    let prev_ident = |out: &str| {
        out.chars()
            .last()
            .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '$')
    };
    // A quoted literal from `open` (the quote) on: the index after it, or None when it is
    // unterminated or holds a backslash without being an E'' string.
    let literal = |open: usize, backslash_escapes: bool| -> Option<usize> {
        let q = c[open];
        let mut m = open + 1;
        loop {
            match c.get(m) {
                None => return None,
                Some('\\') if backslash_escapes => m += 2,
                Some('\\') => return None,
                Some(&x) if x == q => {
                    if c.get(m + 1) == Some(&q) {
                        m += 2;
                    } else {
                        return Some(m + 1);
                    }
                }
                Some(_) => m += 1,
            }
        }
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            i += 1;
        } else if (ch == '-' && next == Some('-')) || (my && ch == '#') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            // PostgreSQL nests block comments; MariaDB does not, but a nested `/*` there is rare
            // and counting it only drops more.
            let mut depth = 0;
            let mut closed = false;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        closed = true;
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            if !closed {
                cut = true;
                break;
            }
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if ch == '\'' || (my && ch == '"') {
            match literal(i, false) {
                Some(end) => {
                    out.push('?');
                    i = end;
                }
                None => {
                    cut = true;
                    break;
                }
            }
        } else if ch == '"' || (my && ch == '`') {
            // A quoted identifier: kept, escapes and all.
            let q = ch;
            let mut m = i + 1;
            let end = loop {
                match c.get(m) {
                    None => break None,
                    Some(&x) if x == q && c.get(m + 1) == Some(&q) => m += 2,
                    Some(&x) if x == q => break Some(m + 1),
                    Some(_) => m += 1,
                }
            };
            let Some(end) = end else {
                cut = true;
                break;
            };
            out.extend(c[i..end].iter().filter(|x| !x.is_control()));
            i = end;
        } else if !my && ch == '$' && !prev_ident(&out) {
            // `$1` is a parameter; `$tag$ ... $tag$` a dollar-quoted string.
            let mut m = i + 1;
            while m < c.len() && (c[m].is_alphanumeric() || c[m] == '_') {
                m += 1;
            }
            let tag: String = c[i..m].iter().collect();
            if c.get(m) == Some(&'$') && !tag[1..].starts_with(|d: char| d.is_ascii_digit()) {
                let delim: Vec<char> = format!("{tag}$").chars().collect();
                let body = m + 1;
                let close = (body..=c.len().saturating_sub(delim.len()))
                    .find(|&p| c[p..].starts_with(&delim));
                match close {
                    Some(p) => {
                        out.push('?');
                        i = p + delim.len();
                    }
                    None => {
                        cut = true;
                        break;
                    }
                }
            } else {
                out.push_str(&tag);
                i = m;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && next.is_some_and(|d| d.is_ascii_digit()) && !prev_ident(&out))
        {
            if prev_ident(&out) {
                // Part of an identifier such as t1.
                out.push(ch);
                i += 1;
                continue;
            }
            let mut m = i;
            while m < c.len() && (c[m].is_alphanumeric() || c[m] == '_' || c[m] == '.') {
                if matches!(c[m], 'e' | 'E')
                    && matches!(c.get(m + 1), Some('+' | '-'))
                    && c.get(m + 2).is_some_and(|d| d.is_ascii_digit())
                {
                    m += 2;
                }
                m += 1;
            }
            out.push('?');
            i = m;
        } else if ch.is_alphabetic() || ch == '_' {
            let mut m = i;
            while m < c.len() && (c[m].is_alphanumeric() || c[m] == '_' || c[m] == '$') {
                m += 1;
            }
            let word: String = c[i..m].iter().collect();
            // A prefixed literal: E'', X'', B'', N'', U&'', _utf8mb4''.
            let (quote_at, escapes) = if c.get(m) == Some(&'\'') {
                (Some(m), !my && word.eq_ignore_ascii_case("e"))
            } else if !my
                && word.eq_ignore_ascii_case("u")
                && c.get(m) == Some(&'&')
                && c.get(m + 1) == Some(&'\'')
            {
                (Some(m + 1), false)
            } else {
                (None, false)
            };
            match quote_at {
                Some(q) => match literal(q, escapes) {
                    Some(end) => {
                        out.push('?');
                        i = end;
                    }
                    None => {
                        cut = true;
                        break;
                    }
                },
                None => {
                    out.push_str(&word);
                    i = m;
                }
            }
        } else {
            if !ch.is_control() {
                out.push(ch);
            }
            i += 1;
        }
    }
    let mut out = out.trim_end().to_string();
    if out.chars().count() > max_chars {
        out = out
            .chars()
            .take(max_chars)
            .collect::<String>()
            .trim_end()
            .to_string();
        cut = true;
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_literals_never_survive() {
        let pg = |s: &str| sql_shape(s, Dialect::Postgres, 500);
        let my = |s: &str| sql_shape(s, Dialect::MySql, 500);
        assert_eq!(
            pg("ALTER ROLE app PASSWORD 'hunter2'"),
            "ALTER ROLE app PASSWORD ?"
        );
        assert_eq!(
            pg("select  E'a\\'b', $$x$$, $q$y$q$, 1.5e-3, x'ff', \"Col\"\n from t1 where id = $1"),
            "select ?, ?, ?, ?, ?, \"Col\" from t1 where id = $1"
        );
        assert_eq!(
            pg("select 'a''b' -- note\n, 2 /* c /* d */ */"),
            "select ? , ?"
        );
        assert_eq!(pg("select 'open"), "select…");
        assert_eq!(pg("select 'a\\', 'secret'"), "select…");
        assert_eq!(pg("select $a$ open"), "select…");
        assert_eq!(
            my("SET PASSWORD FOR u = PASSWORD(\"hunter2\"), x = 0x1F, y = b'01', z = _utf8mb4'k' # c"),
            "SET PASSWORD FOR u = PASSWORD(?), x = ?, y = ?, z = ?"
        );
        assert_eq!(
            my("select `a``b` from t /*!100000 'x' */"),
            "select `a``b` from t"
        );
        assert_eq!(my("select 'a\\'b', 'secret'"), "select…");
        assert_eq!(my("select \u{1b}[31m 1"), "select [? ?");
        assert_eq!(
            pg(&format!("select {}", "a, ".repeat(200))).chars().count(),
            501
        );
    }

    #[test]
    fn keyword_values_and_userinfo_are_hidden() {
        assert_eq!(
            secrets("host=h password='a b\\' c' dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(secrets("x PASSWORD = pw y"), "x PASSWORD=*** y");
        assert_eq!(
            secrets("see `postgres://u:pw@h/db`"),
            "see `postgres://u:***@h/db`"
        );
        assert_eq!(secrets("postgres:/u:pw@h"), "postgres:***@h");
        assert_eq!(secrets("u:pw@h/db"), "u:***@h/db");
        assert_eq!(secrets("postgres://u:pw/db"), "postgres://u:***/db");
        assert_eq!(
            secrets("postgres://[::1]:5432/db"),
            "postgres://[::1]:5432/db"
        );
        assert_eq!(secrets("mail bob@example.com"), "mail bob@example.com");
        assert_eq!(url_text("mysql://u:a b@h/db"), "mysql://u:***@h/db");
        assert_eq!(
            secrets("at mysql://u:a b c@h/db: x"),
            "at mysql://u:***@h/db: x"
        );
        assert_eq!(
            secrets("mysql://h:3306/db: 'root'@'h'"),
            "mysql://h:3306/db: 'root'@'h'"
        );
    }
}
