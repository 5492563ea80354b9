//! SCRAM-SHA-256 password verifiers, computed on the host, so that `ALTER ROLE`
//! can set a PostgreSQL password without the cleartext ever reaching the
//! database: not in the statement, not in its logs, not in any process's
//! arguments.
//!
//! PostgreSQL stores a password as
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` and accepts that
//! same text in `ALTER ROLE ... PASSWORD '...'`, storing it as it is (RFC 5802,
//! RFC 7677; PostgreSQL's "Password Authentication" chapter).

use sha2::{Digest as _, Sha256};

/// PostgreSQL's default iteration count (`scram_iterations`).
pub(crate) const ITERATIONS: u32 = 4096;

const BLOCK: usize = 64;

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 8018): SCRAM's `Hi()`.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), as SCRAM writes salts and keys.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why no verifier can be made for a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifierError {
    /// PostgreSQL normalises non-ASCII passwords (`SASLprep`) before hashing; this
    /// tool only hashes passwords whose normal form is themselves.
    NotPrintableAscii,
    /// The kernel gave no random bytes for the salt.
    Random(rustix::io::Errno),
}

impl std::fmt::Display for VerifierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotPrintableAscii => f.write_str(
                "the password holds characters other than printable ASCII, which PostgreSQL would normalise first",
            ),
            Self::Random(e) => write!(f, "cannot read random bytes for a salt: {e}"),
        }
    }
}

/// The verifier PostgreSQL stores for `password`, with this salt and iteration
/// count.
pub(crate) fn verifier_with(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<String, VerifierError> {
    // Printable ASCII is its own SASLprep normal form.
    if password.is_empty() || !password.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(VerifierError::NotPrintableAscii);
    }
    let salted = hi(password, salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    Ok(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        base64(salt),
        base64(&stored_key),
        base64(&server_key)
    ))
}

/// The verifier for `password` with a fresh random 16-byte salt from the
/// kernel's CSPRNG.
pub(crate) fn verifier(password: &[u8]) -> Result<String, VerifierError> {
    let mut salt = [0u8; 16];
    let mut filled = 0;
    while filled < salt.len() {
        match rustix::rand::getrandom(&mut salt[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(VerifierError::Random(e)),
        }
    }
    verifier_with(password, &salt, ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        let hex = crate::backup::hex(&mac);
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    /// The SCRAM-SHA-256 example exchange of RFC 7677, section 3: password
    /// `pencil`, its salt and iteration count give the keys the server holds.
    #[test]
    fn verifier_matches_rfc_7677() {
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        assert_eq!(base64(&salt), "W22ZaJ0SNY7soEsUEjb6gQ==");
        let v = verifier_with(b"pencil", &salt, 4096).unwrap();
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn fresh_salts_differ_and_the_password_is_not_in_the_verifier() {
        let a = verifier(b"abcdefgh12345678").unwrap();
        let b = verifier(b"abcdefgh12345678").unwrap();
        assert_ne!(a, b);
        assert!(!a.contains("abcdefgh12345678"));
        assert!(a.starts_with("SCRAM-SHA-256$4096:"));
    }

    #[test]
    fn refuses_what_postgres_would_normalise() {
        assert_eq!(
            verifier_with("pässword".as_bytes(), b"salt", 1),
            Err(VerifierError::NotPrintableAscii)
        );
        assert_eq!(
            verifier_with(b"a\nb", b"salt", 1),
            Err(VerifierError::NotPrintableAscii)
        );
    }
}
