//! [`Alphabet`]: the characters a generated secret is made of.

use std::fmt;

/// The characters a generated secret is made of.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alphabet {
    /// Standard base64 with `=` padding (RFC 4648 section 4) of random
    /// bytes, as `openssl rand -base64 N` prints it but without the trailing
    /// newline. Contains `+`, `/` and `=`, which must be escaped in URLs.
    Base64,
    /// `A-Za-z0-9`, each character drawn uniformly. Safe in connection URLs,
    /// shells and configuration files without quoting.
    Alphanumeric,
}

impl fmt::Display for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base64 => "base64",
            Self::Alphanumeric => "alphanumeric",
        })
    }
}
