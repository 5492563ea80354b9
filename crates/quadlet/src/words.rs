//! Splitting values into words and quoting words, as Quadlet reads command lines and
//! lists (`Exec=`, `PodmanArgs=`, `Secret=`, `Environment=`, ...).
//!
//! Words are separated by spaces, tabs and line breaks; `"..."` and `'...'` group
//! words with spaces; a backslash starts a C-style escape (`\n`, `\t`, `\\`, `\"`,
//! `\'`, `\s` for a space, `\xHH`, `\ooo`, `\uHHHH`, `\UHHHHHHHH`). An unbalanced
//! quote or a trailing backslash ends the last word. An empty word (`""`) ends the
//! list: the generator ignores it and everything after it.

use std::fmt::Write as _;

/// Why a value cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WordsError {
    /// A backslash followed by something that is not a known escape.
    #[error("unknown escape `\\{escape}` at character {position}; write `\\\\` for a backslash")]
    UnknownEscape {
        /// The text after the backslash (up to 9 characters).
        escape: String,
        /// 1-based character position of the backslash in the value.
        position: usize,
    },
}

const SEPARATORS: [char; 4] = [' ', '\t', '\n', '\r'];

/// Splits a value into words the way the generator reads command lines
/// (`Exec=`, `PodmanArgs=`) and word lists (`Secret=`, `Environment=`, `Mount=`).
///
/// ```
/// use homelab_quadlet::words::split;
///
/// assert_eq!(split(r#"sh -c "echo \"hi\"" 'a b'"#)?, ["sh", "-c", "echo \"hi\"", "a b"]);
/// # Ok::<(), homelab_quadlet::words::WordsError>(())
/// ```
///
/// # Errors
/// [`WordsError::UnknownEscape`] for a backslash escape the generator rejects (it
/// then ignores the whole line).
pub fn split(value: &str) -> Result<Vec<String>, WordsError> {
    let chars: Vec<char> = value.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && SEPARATORS.contains(&chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut ended_by_separator = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let position = i + 1;
                i += 1;
                if i >= chars.len() {
                    // A trailing backslash ends the word (relaxed mode).
                    break;
                }
                let (unescaped, used) =
                    unescape(&chars[i..]).ok_or_else(|| WordsError::UnknownEscape {
                        escape: chars[i..].iter().take(9).collect(),
                        position,
                    })?;
                word.push(unescaped);
                i += used;
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if SEPARATORS.contains(&c) => {
                    ended_by_separator = true;
                    break;
                }
                Some(_) | None => word.push(c),
            }
            i += 1;
        }
        if word.is_empty() {
            // The generator stops at an empty word.
            return Ok(words);
        }
        words.push(word);
        if !ended_by_separator {
            return Ok(words);
        }
    }
}

/// Decodes the escape after a backslash; returns the character and how many input
/// characters it used.
fn unescape(rest: &[char]) -> Option<(char, usize)> {
    let hex = |n: usize| -> Option<u32> {
        if rest.len() <= n {
            return None;
        }
        let mut value = 0u32;
        for c in &rest[1..=n] {
            value = value * 16 + c.to_digit(16)?;
        }
        Some(value)
    };
    let simple = match rest[0] {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '"' => Some('"'),
        '\'' => Some('\''),
        's' => Some(' '),
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c, 1));
    }
    match rest[0] {
        'x' => {
            let v = hex(2).filter(|v| *v != 0)?;
            Some((char::from_u32(v)?, 3))
        }
        'u' => {
            let v = hex(4).filter(|v| *v != 0)?;
            Some((char::from_u32(v).unwrap_or('\u{fffd}'), 5))
        }
        'U' => {
            let v = hex(8).filter(|v| *v != 0)?;
            Some((char::from_u32(v)?, 9))
        }
        '0'..='7' => {
            if rest.len() < 3 {
                return None;
            }
            let mut v = 0u32;
            for c in &rest[..3] {
                v = v * 8 + c.to_digit(8)?;
            }
            if v == 0 || v > 255 {
                return None;
            }
            Some((char::from_u32(v)?, 3))
        }
        _ => None,
    }
}

fn needs_quoting(word: &str) -> bool {
    word.is_empty()
        || word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
}

/// A word written so that [`split`] reads it back as one word: unchanged when it
/// needs nothing, else in double quotes with `\`, `"` and control characters
/// escaped.
///
/// ```
/// use homelab_quadlet::words::{quote, split};
///
/// assert_eq!(quote("plain"), "plain");
/// assert_eq!(quote("a b"), r#""a b""#);
/// assert_eq!(split(&quote("say \"hi\"\n"))?, ["say \"hi\"\n"]);
/// # Ok::<(), homelab_quadlet::words::WordsError>(())
/// ```
pub fn quote(word: &str) -> String {
    if !needs_quoting(word) {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words joined into one value that [`split`] reads back as the same words.
///
/// Empty words cannot be written (the generator stops at an empty word); they are
/// skipped.
///
/// ```
/// use homelab_quadlet::words::join;
///
/// assert_eq!(join(["pg_isready", "-U", "immich"]), "pg_isready -U immich");
/// assert_eq!(join(["sh", "-c", "exit 0"]), r#"sh -c "exit 0""#);
/// ```
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for word in words {
        let word = word.as_ref();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&quote(word));
    }
    out
}

/// Splits a systemd list value (`After=`, `WantedBy=`): on whitespace, quotes
/// grouping and removed, backslashes kept as they are.
pub fn split_list(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in value.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                started = true;
            }
            None if SEPARATORS.contains(&c) => {
                if started {
                    if word.is_empty() {
                        return words;
                    }
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            None => {
                word.push(c);
                started = true;
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_generator() {
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("  a   b ").unwrap(), ["a", "b"]);
        assert_eq!(split(r#"a "b c" d"#).unwrap(), ["a", "b c", "d"]);
        assert_eq!(split(r#"x"y z"w"#).unwrap(), ["xy zw"]);
        assert_eq!(
            split(r"a\sb \x41 \101 \u00e9").unwrap(),
            ["a b", "A", "A", "é"]
        );
        assert_eq!(split(r#""unbalanced a"#).unwrap(), ["unbalanced a"]);
        assert_eq!(split(r"trailing\").unwrap(), ["trailing"]);
        // An empty word ends the list.
        assert_eq!(split(r#"a "" b"#).unwrap(), ["a"]);
        assert!(matches!(
            split(r"a \q").unwrap_err(),
            WordsError::UnknownEscape { position: 3, .. }
        ));
        assert!(split(r"\x00").is_err());
    }

    #[test]
    fn quote_round_trips() {
        for word in [
            "a", "a b", "\"", "'", "\\", "a\nb", "\u{1}", "é ü", "%h", "$HOME",
        ] {
            assert_eq!(split(&quote(word)).unwrap(), [word], "{word:?}");
        }
        let words = ["sh", "-c", "echo 'a' \"b\""];
        assert_eq!(split(&join(words)).unwrap(), words);
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("a.service  b.target"), ["a.service", "b.target"]);
        assert_eq!(split_list("\"a b\" c"), ["a b", "c"]);
        assert!(split_list("").is_empty());
    }
}
