//! [`Error`]: everything that can go wrong in this crate.

use crate::{Alphabet, Finding, StoreError};

/// Why generating, naming, ensuring or rotating a secret failed.
///
/// Messages name the secret and say what to change; they never contain a
/// secret's value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name cannot be used for a secret.
    #[error("invalid secret name {name:?}: {problem}; {}", problem.hint())]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// The secret store failed or refused the operation.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The operating system's random number generator failed.
    #[error("cannot read random bytes from the kernel (getrandom(2)): {source}")]
    Random {
        /// The error reported by `getrandom(2)`.
        source: std::io::Error,
    },

    /// A generator was asked for fewer than 256 bits of entropy.
    #[error(
        "a {alphabet} secret of length {length} holds only {bits} bits of entropy; \
         at least {minimum} are required, so use a length of at least {minimum_length}"
    )]
    GeneratorTooWeak {
        /// The alphabet asked for.
        alphabet: Alphabet,
        /// The length asked for (characters for alphanumeric, random bytes
        /// for base64).
        length: usize,
        /// Entropy that length would give, rounded down.
        bits: u32,
        /// The minimum entropy in bits.
        minimum: u32,
        /// The smallest length that reaches `minimum`.
        minimum_length: usize,
    },

    /// A generator was asked for an unreasonably long secret.
    #[error("a {alphabet} secret of length {length} is longer than the maximum of {maximum}")]
    GeneratorTooLong {
        /// The alphabet asked for.
        alphabet: Alphabet,
        /// The length asked for.
        length: usize,
        /// The largest accepted length.
        maximum: usize,
    },

    /// A freshly generated value does not satisfy the policy it was
    /// generated for, so it was not stored. The policy's generator and its
    /// rules contradict each other.
    #[error(
        "the generator of the policy for {consumer} produces values the policy rejects \
         ({}); nothing was stored as secret `{name}`: change the policy's generator or rules",
        findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    PolicyContradiction {
        /// The secret that was to be created.
        name: String,
        /// The policy's consumer.
        consumer: String,
        /// What the policy found wrong with the generated value.
        findings: Vec<Finding>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a secret name.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than Podman allows.
    TooLong {
        /// Length of the name in bytes.
        bytes: usize,
        /// Podman's limit in bytes.
        maximum: usize,
    },
    /// The name contains a character Podman rejects (`=`, `/`, `,`, NUL).
    Forbidden {
        /// The offending character.
        character: char,
        /// Its byte offset in the name.
        offset: usize,
    },
    /// The name contains a character Podman accepts but that breaks its use
    /// elsewhere: whitespace splits a Quadlet `Secret=` line in two, control
    /// and non-ASCII characters are unreadable in listings, and other
    /// punctuation needs quoting in shells and unit files.
    NotPortable {
        /// The offending character.
        character: char,
        /// Its byte offset in the name.
        offset: usize,
    },
    /// The name does not start with an ASCII letter or digit (a leading `-`
    /// reads as a command-line option, a leading `.` hides files).
    BadStart {
        /// The first character.
        character: char,
    },
}

impl NameProblem {
    /// How to fix a name with this problem.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Empty => "give the secret a name",
            Self::TooLong { .. } => "shorten the name to at most 253 bytes",
            Self::Forbidden { .. } => {
                "Podman rejects `=`, `/`, `,` and NUL in secret names; use `-` instead"
            }
            Self::NotPortable { .. } => {
                "use only ASCII letters, digits, `-`, `_` and `.` (for example `postgres-password`)"
            }
            Self::BadStart { .. } => "start the name with an ASCII letter or digit",
        }
    }
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("the name is empty"),
            Self::TooLong { bytes, maximum } => {
                write!(
                    f,
                    "the name is {bytes} bytes long, more than Podman's {maximum}"
                )
            }
            Self::Forbidden { character, offset } => {
                write!(f, "{character:?} at byte {offset} is not allowed by Podman")
            }
            Self::NotPortable { character, offset } => write!(
                f,
                "{character:?} at byte {offset} is accepted by Podman but breaks Quadlet \
                 `Secret=` lines or shell use"
            ),
            Self::BadStart { character } => {
                write!(f, "the name starts with {character:?}")
            }
        }
    }
}
