//! What a consumer needs of a secret: [`Policy`], and [`check`] with its
//! [`Finding`]s.

use crate::finding::{CharKind, Charset, Finding};
use crate::{Generator, MIN_ENTROPY_BITS, SecretValue};

/// What one consumer of a secret needs of its value, and how to make a new
/// value that satisfies it.
///
/// Start from a preset or from [`Policy::new`] and adjust the fields:
///
/// ```
/// use homelab_secrets::{Charset, Generator, Policy};
///
/// let mut policy = Policy::new("backup encryption key");
/// policy.charset = Charset::Printable;
/// policy.min_length = 32;
/// assert_eq!(policy.generator, Generator::BASE64);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Who uses the secret, in words for messages ("the PostgreSQL
    /// password").
    pub consumer: String,
    /// The characters the consumer accepts.
    pub charset: Charset,
    /// The least length in bytes (a trailing newline not counted when it is
    /// reported on its own).
    pub min_length: usize,
    /// The least entropy in bits that the value's length and characters can
    /// hold (see [`Finding::LowEntropy`]).
    pub min_entropy_bits: u32,
    /// Whether spaces, tabs and line breaks inside the value are acceptable.
    pub allow_whitespace: bool,
    /// Whether a final `\n` is acceptable. It almost never is: it comes from
    /// piping `openssl rand` or `echo` into `podman secret create`, and the
    /// consumer then sees a password with a newline in it.
    pub allow_trailing_newline: bool,
    /// How [`ensure`](crate::ensure) makes a value when the secret is missing.
    pub generator: Generator,
}

impl Policy {
    /// A policy for any consumer: any characters but no whitespace and no
    /// trailing newline, at least 256 bits, generated as base64.
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            charset: Charset::Any,
            min_length: 1,
            min_entropy_bits: MIN_ENTROPY_BITS,
            allow_whitespace: false,
            allow_trailing_newline: false,
            generator: Generator::BASE64,
        }
    }

    /// The PostgreSQL password of an Immich database: alphanumeric only,
    /// because Immich puts it in a connection URL (`DB_URL`) where `+`, `/`
    /// and `=` break parsing; generated as 48 alphanumeric characters.
    pub fn postgres_password() -> Self {
        Self {
            charset: Charset::Alphanumeric,
            generator: Generator::ALPHANUMERIC,
            ..Self::new("the PostgreSQL password")
        }
    }

    /// The Valkey (Redis) password: visible ASCII without whitespace
    /// (Valkey's configuration splits on spaces); generated alphanumeric so
    /// it also fits a `redis://` URL.
    pub fn valkey_password() -> Self {
        Self {
            charset: Charset::Printable,
            generator: Generator::ALPHANUMERIC,
            ..Self::new("the Valkey password")
        }
    }

    /// A token-signing key such as Immich's JWT secret: visible ASCII, at
    /// least 256 bits; generated as base64 of 32 random bytes.
    pub fn signing_key() -> Self {
        Self {
            charset: Charset::Printable,
            ..Self::new("the token-signing key")
        }
    }
}

/// Checks a secret's value against a consumer's policy.
///
/// An empty list means the value is acceptable. The findings describe the
/// value only by length, counts and kinds of characters.
///
/// ```
/// use homelab_secrets::{Finding, Policy, SecretValue, check};
///
/// // What `openssl rand -base64 32 | podman secret create postgres-password -` stores.
/// let seed = SecretValue::new("q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=\n");
/// let findings = check(&seed, &Policy::postgres_password());
/// assert!(findings.contains(&Finding::TrailingNewline));
/// assert!(matches!(findings[1], Finding::Disallowed { count: 2, .. }));
/// assert!(findings.iter().all(|f| !f.to_string().contains("q2nO")));
/// ```
pub fn check(value: &SecretValue, policy: &Policy) -> Vec<Finding> {
    let Policy {
        consumer: _,
        charset,
        min_length,
        min_entropy_bits,
        allow_whitespace,
        allow_trailing_newline,
        generator: _,
    } = policy;

    let mut bytes = value.expose();
    if bytes.is_empty() {
        return vec![Finding::Empty];
    }
    let mut findings = Vec::new();
    if !allow_trailing_newline && bytes.ends_with(b"\n") {
        findings.push(Finding::TrailingNewline);
        bytes = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(bytes);
    }

    let whitespace = bytes.iter().filter(|b| b.is_ascii_whitespace()).count();
    if !allow_whitespace && whitespace > 0 {
        findings.push(Finding::Whitespace { count: whitespace });
    }

    let mut count = 0;
    let mut kinds = Vec::new();
    for &byte in bytes {
        if charset.allows(byte) || (!allow_whitespace && byte.is_ascii_whitespace()) {
            continue;
        }
        count += 1;
        if let Some(kind) = CharKind::of(byte)
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
    }
    if count > 0 {
        kinds.sort();
        findings.push(Finding::Disallowed {
            charset: *charset,
            count,
            kinds,
        });
    }

    if bytes.len() < *min_length {
        findings.push(Finding::TooShort {
            length: bytes.len(),
            minimum: *min_length,
        });
    }

    let bits = entropy_ceiling(bytes);
    if bits < f64::from(*min_entropy_bits) {
        findings.push(Finding::LowEntropy {
            at_most_bits: floor_bits(bits),
            minimum_bits: *min_entropy_bits,
        });
    }
    findings
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= bits, saturating
fn floor_bits(bits: f64) -> u32 {
    bits.floor() as u32
}

/// The most entropy `bytes` can hold: its length times the bits per
/// character of the smallest common set containing all its characters.
#[allow(clippy::cast_precision_loss)] // secrets are far shorter than 2^52
fn entropy_ceiling(bytes: &[u8]) -> f64 {
    let all = |f: fn(&u8) -> bool| bytes.iter().all(f);
    let set_size: f64 = if all(u8::is_ascii_digit) {
        10.0
    } else if all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        || all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    {
        16.0
    } else if all(u8::is_ascii_lowercase) || all(u8::is_ascii_uppercase) {
        26.0
    } else if all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        || all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        36.0
    } else if all(u8::is_ascii_alphabetic) {
        52.0
    } else if all(u8::is_ascii_alphanumeric) {
        62.0
    } else if all(|&b| Charset::Base64.allows(b) || b == b'-' || b == b'_') {
        // Standard and URL-safe base64 both have 64 symbols; padding adds none.
        64.0
    } else if all(|b| b.is_ascii_graphic() || *b == b' ') {
        95.0
    } else {
        256.0
    };
    bytes.len() as f64 * set_size.log2()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn findings(value: &str, policy: &Policy) -> Vec<Finding> {
        check(&SecretValue::new(value), policy)
    }

    const ALNUM_48: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKl";
    const BASE64_44: &str = "q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=";

    #[test]
    fn generated_values_satisfy_their_presets() {
        for policy in [
            Policy::postgres_password(),
            Policy::valkey_password(),
            Policy::signing_key(),
            Policy::new("anything"),
        ] {
            for _ in 0..50 {
                let value = policy.generator.generate().unwrap();
                assert_eq!(check(&value, &policy), [], "{}", policy.consumer);
            }
        }
    }

    #[test]
    fn the_journal_password_fails_the_postgres_policy() {
        let postgres = Policy::postgres_password();
        assert_eq!(
            findings(BASE64_44, &postgres),
            [Finding::Disallowed {
                charset: Charset::Alphanumeric,
                count: 2,
                kinds: vec![CharKind::Symbol]
            }]
        );
        // ... but is a fine signing key.
        assert_eq!(findings(BASE64_44, &Policy::signing_key()), []);
    }

    #[test]
    fn trailing_newline_is_reported_once_and_not_counted() {
        let value = format!("{ALNUM_48}\n");
        assert_eq!(
            findings(&value, &Policy::postgres_password()),
            [Finding::TrailingNewline]
        );
        let value = format!("{ALNUM_48}\r\n");
        assert_eq!(
            findings(&value, &Policy::postgres_password()),
            [Finding::TrailingNewline]
        );
        let mut lenient = Policy::postgres_password();
        lenient.allow_trailing_newline = true;
        lenient.allow_whitespace = true;
        assert_eq!(
            findings(&format!("{ALNUM_48}\n"), &lenient),
            [Finding::Disallowed {
                charset: Charset::Alphanumeric,
                count: 1,
                kinds: vec![CharKind::Whitespace]
            }]
        );
    }

    #[test]
    fn whitespace_inside() {
        let value = format!("{ALNUM_48} \t{ALNUM_48}");
        assert_eq!(
            findings(&value, &Policy::signing_key()),
            [Finding::Whitespace { count: 2 }]
        );
        let mut any = Policy::new("x");
        any.allow_whitespace = true;
        assert_eq!(findings(&value, &any), []);
    }

    #[test]
    fn kinds_of_disallowed_characters() {
        let value = format!("{ALNUM_48}é\u{1}+");
        assert_eq!(
            findings(&value, &Policy::postgres_password()),
            [Finding::Disallowed {
                charset: Charset::Alphanumeric,
                count: 4,
                kinds: vec![CharKind::Symbol, CharKind::Control, CharKind::NonAscii]
            }]
        );
    }

    #[test]
    fn short_and_weak_values() {
        assert_eq!(findings("", &Policy::postgres_password()), [Finding::Empty]);
        assert_eq!(
            findings("hunter2", &Policy::postgres_password()),
            [Finding::LowEntropy {
                at_most_bits: 36,
                minimum_bits: 256
            }]
        );
        let mut policy = Policy::postgres_password();
        policy.min_length = 64;
        assert_eq!(
            findings(ALNUM_48, &policy),
            [Finding::TooShort {
                length: 48,
                minimum: 64
            }]
        );
    }

    #[test]
    fn entropy_ceiling_per_character_set() {
        let per_char =
            |s: &str| entropy_ceiling(s.as_bytes()) / f64::from(u32::try_from(s.len()).unwrap());
        assert!((per_char("0123") - 10f64.log2()).abs() < 1e-9);
        assert!((per_char("deadbeef") - 4.0).abs() < 1e-9);
        assert!((per_char("DEADBEEF") - 4.0).abs() < 1e-9);
        assert!((per_char("abcxyz") - 26f64.log2()).abs() < 1e-9);
        assert!((per_char("abc123xyz") - 36f64.log2()).abs() < 1e-9);
        assert!((per_char("abcXYZ") - 52f64.log2()).abs() < 1e-9);
        assert!((per_char("aB3") - 62f64.log2()).abs() < 1e-9);
        assert!((per_char("aB3+/=") - 6.0).abs() < 1e-9);
        assert!((per_char("aB3!") - 95f64.log2()).abs() < 1e-9);
        assert!((per_char("aB3\u{1}") - 8.0).abs() < 1e-9);
        // `openssl rand -hex 32`: exactly 256 bits.
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(findings(&hex, &Policy::postgres_password()), []);
        // 43 alphanumerics is the shortest to reach 256 bits.
        assert_eq!(findings(&ALNUM_48[..43], &Policy::postgres_password()), []);
        assert!(matches!(
            findings(&ALNUM_48[..42], &Policy::postgres_password())[..],
            [Finding::LowEntropy {
                at_most_bits: 250,
                ..
            }]
        ));
    }

    #[test]
    fn every_finding_has_a_hint() {
        for finding in [
            Finding::Empty,
            Finding::TrailingNewline,
            Finding::Whitespace { count: 1 },
            Finding::TooShort {
                length: 1,
                minimum: 2,
            },
        ] {
            assert!(!finding.hint().is_empty());
        }
    }

    proptest! {
        /// Messages never contain the value: findings only count and
        /// classify. A marker that cannot arise from the message text itself
        /// is planted in random values.
        #[test]
        fn messages_never_reveal_the_value(
            prefix in proptest::collection::vec(any::<u8>(), 0..40),
            suffix in proptest::collection::vec(any::<u8>(), 0..40),
            newline in any::<bool>(),
        ) {
            let marker = b"Zq7Xk9Wv";
            let mut bytes = prefix;
            bytes.extend_from_slice(marker);
            bytes.extend(suffix);
            if newline {
                bytes.push(b'\n');
            }
            let value = SecretValue::new(bytes);
            for policy in [Policy::postgres_password(), Policy::valkey_password(), Policy::signing_key()] {
                for finding in check(&value, &policy) {
                    let text = format!("{finding} {finding:?} {}", finding.hint());
                    prop_assert!(!text.contains("Zq7Xk9Wv"));
                }
            }
        }

        #[test]
        fn check_reports_what_the_bytes_show(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                "[a-zA-Z0-9+/= \t]{0,60}\r?\n?".prop_map(String::into_bytes),
            ]
        ) {
            // Policy::new: any characters, no whitespace, no trailing
            // newline, at least one byte and 256 bits.
            let findings = check(&SecretValue::new(bytes.clone()), &Policy::new("x"));
            if bytes.is_empty() {
                prop_assert_eq!(findings, [Finding::Empty]);
                return Ok(());
            }
            let newline = bytes.ends_with(b"\n");
            let body = if newline {
                bytes.strip_suffix(b"\r\n").or_else(|| bytes.strip_suffix(b"\n")).unwrap()
            } else {
                &bytes[..]
            };
            let whitespace = body.iter().filter(|b| b.is_ascii_whitespace()).count();
            prop_assert_eq!(findings.contains(&Finding::TrailingNewline), newline);
            prop_assert_eq!(
                findings.iter().find_map(|f| match f {
                    Finding::Whitespace { count } => Some(*count),
                    _ => None,
                }),
                (whitespace > 0).then_some(whitespace)
            );
            let disallowed = findings
                .iter()
                .any(|f| matches!(f, Finding::Disallowed { .. } | Finding::Empty));
            prop_assert!(!disallowed, "{:?}", findings);
            prop_assert_eq!(
                findings.contains(&Finding::TooShort { length: 0, minimum: 1 }),
                body.is_empty()
            );
            // No byte holds more than 8 bits: fewer than 32 cannot hold 256.
            let low = findings.iter().find_map(|f| match f {
                Finding::LowEntropy { at_most_bits, .. } => Some(*at_most_bits),
                _ => None,
            });
            if body.len() < 32 {
                prop_assert!(low.is_some());
            }
            if let Some(bits) = low {
                prop_assert!(bits < 256 && u64::from(bits) <= 8 * body.len() as u64);
            }
            // Each kind of finding at most once.
            let kinds: std::collections::HashSet<_> = findings.iter().map(std::mem::discriminant).collect();
            prop_assert_eq!(kinds.len(), findings.len());
        }
    }
}
