//! [`SecretValue`]: the bytes of a secret, wiped on drop and never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A secret's bytes.
///
/// The bytes are overwritten with zeros when the value is dropped, and
/// neither [`Debug`](fmt::Debug) nor [`Display`](fmt::Display) shows them:
/// both print `[redacted]`. [`SecretValue::expose`] is the only way to reach
/// the bytes, so every place that handles the plain value is easy to find.
///
/// Equality compares in constant time (for values of equal length), so a
/// comparison does not reveal how many leading bytes matched.
///
/// ```
/// use homelab_secrets::SecretValue;
///
/// let password = SecretValue::new("correct horse");
/// assert_eq!(format!("{password:?}"), "[redacted]");
/// assert_eq!(password.to_string(), "[redacted]");
/// assert_eq!(password.expose(), b"correct horse");
/// ```
#[derive(Clone)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Takes ownership of `bytes` as a secret.
    ///
    /// Passing a `Vec<u8>` moves it without copying; a `&str` or `&[u8]` is
    /// copied, and the caller remains responsible for the original.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The secret's bytes. This is the only way to read them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes in the secret.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.expose(), other.expose())
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

/// Compares two byte strings without an early exit on the first difference.
///
/// The lengths are not secret (a stored secret's size is visible anyway), so
/// unequal lengths return at once.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold back into a short-circuiting
    // comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value:?}"), "[redacted]");
        assert_eq!(format!("{value:#?}"), "[redacted]");
        assert_eq!(format!("{value}"), "[redacted]");
        assert!(!format!("{:?}", Some(&value)).contains("hunter2"));
    }

    #[test]
    fn equality_compares_bytes() {
        assert_eq!(SecretValue::new("abc"), SecretValue::new(b"abc".to_vec()));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abd"));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abcd"));
        assert_eq!(SecretValue::new(""), SecretValue::new(Vec::new()));
    }

    #[test]
    fn len_and_is_empty() {
        assert_eq!(SecretValue::new("abcd").len(), 4);
        assert!(SecretValue::new("").is_empty());
        assert!(!SecretValue::new("x").is_empty());
    }

    #[test]
    fn clone_is_independent_copy() {
        let a = SecretValue::new("abc");
        let b = a.clone();
        drop(a);
        assert_eq!(b.expose(), b"abc");
    }
}
