//! What [`check`](crate::check) finds wrong with a secret's value: [`Finding`],
//! told in the characters a consumer accepts ([`Charset`]) and the kinds of
//! characters found ([`CharKind`]), never in the value's own characters.

use std::fmt;

/// The characters a consumer accepts in a secret.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    /// Any bytes.
    Any,
    /// Visible ASCII: `!` to `~` (no space, no control characters).
    Printable,
    /// `A-Za-z0-9`, `+`, `/` and `=`.
    Base64,
    /// `A-Za-z0-9` only.
    Alphanumeric,
}

impl Charset {
    pub(crate) fn allows(self, byte: u8) -> bool {
        match self {
            Self::Any => true,
            Self::Printable => byte.is_ascii_graphic(),
            Self::Base64 => byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'='),
            Self::Alphanumeric => byte.is_ascii_alphanumeric(),
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Any => "any bytes",
            Self::Printable => "visible ASCII",
            Self::Base64 => "A-Za-z0-9+/=",
            Self::Alphanumeric => "A-Za-z0-9",
        })
    }
}

/// Something about a secret's value that does not satisfy a
/// [`Policy`](crate::Policy).
///
/// The [`Display`](fmt::Display) text describes the problem by counts and
/// kinds of characters only; it never contains the value or any of its
/// characters.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The value is empty.
    Empty,
    /// The value ends with a newline (`\n` or `\r\n`).
    TrailingNewline,
    /// The value contains whitespace (not counting a reported trailing
    /// newline).
    Whitespace {
        /// How many whitespace characters.
        count: usize,
    },
    /// The value contains characters outside the consumer's character set
    /// (not counting whitespace reported as [`Finding::Whitespace`]).
    Disallowed {
        /// The accepted set.
        charset: Charset,
        /// How many bytes fall outside it.
        count: usize,
        /// What kinds of characters they are.
        kinds: Vec<CharKind>,
    },
    /// The value is shorter than the consumer needs.
    TooShort {
        /// Its length in bytes.
        length: usize,
        /// The least accepted length.
        minimum: usize,
    },
    /// Even if every character were drawn at random from the smallest
    /// common set that contains them all (digits, hex, lower-case letters,
    /// alphanumerics, base64, visible ASCII or bytes), the value could not
    /// hold the entropy the consumer needs.
    LowEntropy {
        /// The most entropy the value can hold, in bits, rounded down.
        at_most_bits: u32,
        /// The least the policy accepts.
        minimum_bits: u32,
    },
}

/// A kind of character, for describing a [`Finding::Disallowed`] without
/// naming the characters.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CharKind {
    /// ASCII punctuation or symbols such as `+`, `/`, `=`.
    Symbol,
    /// Space, tab or a line break.
    Whitespace,
    /// Other ASCII control characters, including NUL.
    Control,
    /// Bytes outside ASCII (UTF-8 or otherwise).
    NonAscii,
}

impl CharKind {
    pub(crate) fn of(byte: u8) -> Option<Self> {
        match byte {
            b if b.is_ascii_alphanumeric() => None,
            b if b.is_ascii_punctuation() => Some(Self::Symbol),
            b if b.is_ascii_whitespace() => Some(Self::Whitespace),
            b if b.is_ascii_control() => Some(Self::Control),
            _ => Some(Self::NonAscii),
        }
    }
}

impl fmt::Display for CharKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Symbol => "symbols",
            Self::Whitespace => "whitespace",
            Self::Control => "control characters",
            Self::NonAscii => "non-ASCII bytes",
        })
    }
}

impl Finding {
    /// How to fix a secret with this finding.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::TrailingNewline => {
                "recreate it from input without the newline (`printf %s`, `openssl rand ... | tr -d '\\n'`), \
                 or rotate it to a generated value"
            }
            Self::Disallowed { .. } => "rotate it to a value generated for this consumer",
            Self::Empty
            | Self::Whitespace { .. }
            | Self::TooShort { .. }
            | Self::LowEntropy { .. } => "rotate it to a generated value",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the value is empty"),
            Self::TrailingNewline => f.write_str("the value ends with a newline"),
            Self::Whitespace { count } => {
                write!(f, "the value contains {count} whitespace character(s)")
            }
            Self::Disallowed {
                charset,
                count,
                kinds,
            } => {
                let kinds: Vec<String> = kinds.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the value has {count} character(s) outside {charset} ({})",
                    kinds.join(", ")
                )
            }
            Self::TooShort { length, minimum } => write!(
                f,
                "the value is {length} bytes long, shorter than the minimum of {minimum}"
            ),
            Self::LowEntropy {
                at_most_bits,
                minimum_bits,
            } => write!(
                f,
                "the value's length and characters hold at most {at_most_bits} bits of entropy, \
                 less than the {minimum_bits} required"
            ),
        }
    }
}
