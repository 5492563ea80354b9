//! Generating secrets from the kernel's CSPRNG: [`Generator`].

use zeroize::Zeroizing;

use crate::alphabet::Alphabet;
use crate::{Error, SecretValue, random};

/// The least entropy, in bits, a [`Generator`] may produce.
pub const MIN_ENTROPY_BITS: u32 = 256;

/// The longest secret a [`Generator`] produces, in random bytes (base64) or
/// characters (alphanumeric).
const MAX_LENGTH: usize = 4096;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Makes new secret values from the kernel's CSPRNG (`getrandom(2)`), with
/// at least [`MIN_ENTROPY_BITS`] bits of entropy.
///
/// ```
/// use homelab_secrets::{Alphabet, Generator};
///
/// let password = Generator::ALPHANUMERIC.generate()?;
/// assert_eq!(password.len(), 48);
/// assert!(password.expose().iter().all(u8::is_ascii_alphanumeric));
///
/// // What `openssl rand -base64 32` gives, minus the newline.
/// let token = Generator::BASE64.generate()?;
/// assert_eq!(token.len(), 44);
///
/// // Too short to hold 256 bits:
/// assert!(Generator::alphanumeric(20).is_err());
/// # Ok::<(), homelab_secrets::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    alphabet: Alphabet,
    length: usize,
}

impl Generator {
    /// 48 alphanumeric characters: about 285 bits.
    pub const ALPHANUMERIC: Self = Self {
        alphabet: Alphabet::Alphanumeric,
        length: 48,
    };

    /// 32 random bytes in base64: 44 characters, 256 bits.
    pub const BASE64: Self = Self {
        alphabet: Alphabet::Base64,
        length: 32,
    };

    /// A generator of `characters` alphanumeric characters.
    ///
    /// Fails when that is fewer than 43 characters (256 bits) or more than
    /// 4096.
    pub fn alphanumeric(characters: usize) -> Result<Self, Error> {
        Self::checked(Alphabet::Alphanumeric, characters)
    }

    /// A generator of `random_bytes` random bytes, base64-encoded.
    ///
    /// Fails when that is fewer than 32 bytes (256 bits) or more than 4096.
    pub fn base64(random_bytes: usize) -> Result<Self, Error> {
        Self::checked(Alphabet::Base64, random_bytes)
    }

    fn checked(alphabet: Alphabet, length: usize) -> Result<Self, Error> {
        let generator = Self { alphabet, length };
        if length > MAX_LENGTH {
            return Err(Error::GeneratorTooLong {
                alphabet,
                length,
                maximum: MAX_LENGTH,
            });
        }
        let bits = generator.entropy_bits();
        if bits < f64::from(MIN_ENTROPY_BITS) {
            return Err(Error::GeneratorTooWeak {
                alphabet,
                length,
                bits: floor_bits(bits),
                minimum: MIN_ENTROPY_BITS,
                minimum_length: min_length(alphabet),
            });
        }
        Ok(generator)
    }

    /// The alphabet of the generated values.
    pub fn alphabet(&self) -> Alphabet {
        self.alphabet
    }

    /// The length in the generator's own unit: characters for
    /// [`Alphabet::Alphanumeric`], random bytes for [`Alphabet::Base64`].
    pub fn length(&self) -> usize {
        self.length
    }

    /// Length of every generated value in bytes (all generated characters
    /// are ASCII).
    pub fn output_len(&self) -> usize {
        match self.alphabet {
            Alphabet::Alphanumeric => self.length,
            Alphabet::Base64 => self.length.div_ceil(3) * 4,
        }
    }

    /// Entropy of each generated value in bits.
    #[allow(clippy::cast_precision_loss)] // lengths are at most 4096
    pub fn entropy_bits(&self) -> f64 {
        match self.alphabet {
            Alphabet::Alphanumeric => self.length as f64 * 62f64.log2(),
            Alphabet::Base64 => self.length as f64 * 8.0,
        }
    }

    /// A new random value.
    ///
    /// Intermediate buffers are zeroized, and the output is written into a
    /// buffer of its final size, so no copy of the value is left behind.
    pub fn generate(&self) -> Result<SecretValue, Error> {
        let mut out = Vec::with_capacity(self.output_len());
        match self.alphabet {
            Alphabet::Alphanumeric => alphanumeric_into(self.length, &mut out)?,
            Alphabet::Base64 => {
                let mut raw = Zeroizing::new(vec![0u8; self.length]);
                random::fill(&mut raw)?;
                base64_into(&raw, &mut out);
            }
        }
        debug_assert_eq!(out.len(), self.output_len());
        debug_assert_eq!(out.capacity(), self.output_len());
        Ok(SecretValue::new(out))
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= bits < 2^32
fn floor_bits(bits: f64) -> u32 {
    bits.floor() as u32
}

/// The smallest length reaching [`MIN_ENTROPY_BITS`].
fn min_length(alphabet: Alphabet) -> usize {
    (1..=MAX_LENGTH)
        .find(|&length| {
            Generator { alphabet, length }.entropy_bits() >= f64::from(MIN_ENTROPY_BITS)
        })
        .unwrap_or(MAX_LENGTH)
}

/// Appends `count` uniformly drawn alphanumeric characters to `out`.
///
/// Random bytes of 248 or more are thrown away: 248 = 4 * 62, so every kept
/// byte maps onto the 62 characters exactly four times and `byte % 62` has
/// no bias.
fn alphanumeric_into(count: usize, out: &mut Vec<u8>) -> Result<(), Error> {
    const LIMIT: u8 = 248;
    // Enough for 48 characters with room for rejected bytes (each byte is
    // rejected with probability 8/256) in the common case.
    let mut pool = Zeroizing::new([0u8; 64]);
    let target = out.len() + count;
    while out.len() < target {
        random::fill(&mut pool[..])?;
        for &byte in pool.iter() {
            if out.len() == target {
                break;
            }
            if byte < LIMIT {
                out.push(ALPHANUMERIC[usize::from(byte % 62)]);
            }
        }
    }
    Ok(())
}

/// Appends the standard, padded base64 encoding of `bytes` to `out`.
fn base64_into(bytes: &[u8], out: &mut Vec<u8>) {
    let sextet = |value: u32, shift: u32| BASE64[((value >> shift) & 0x3f) as usize];
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend([sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend([sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend([sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn encode(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        base64_into(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A decoder for tests only, written independently of the encoder.
    fn decode(text: &str) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let value = |c: u8| BASE64.iter().position(|&x| x == c);
        let mut out = Vec::new();
        let mut bits = 0u32;
        let mut held = 0;
        let trimmed = text.trim_end_matches('=');
        if text.len() - trimmed.len() > 2 {
            return None;
        }
        for c in trimmed.bytes() {
            bits = bits << 6 | u32::try_from(value(c)?).ok()?;
            held += 6;
            if held >= 8 {
                held -= 8;
                out.push(u8::try_from((bits >> held) & 0xff).ok()?);
            }
        }
        // Leftover bits of a canonical encoding are zero.
        (bits & ((1 << held) - 1) == 0).then_some(out)
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(input.as_bytes()), expected, "input {input:?}");
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), bytes.len().div_ceil(3) * 4);
            prop_assert_eq!(decode(&text), Some(bytes));
        }

        #[test]
        fn accepted_lengths_reach_256_bits(length in 0usize..5000) {
            for result in [Generator::alphanumeric(length), Generator::base64(length)] {
                match result {
                    Ok(generator) => {
                        prop_assert!(generator.entropy_bits() >= 256.0);
                        prop_assert!(generator.length() <= MAX_LENGTH);
                    }
                    Err(Error::GeneratorTooWeak { bits, .. }) => prop_assert!(bits < 256),
                    Err(Error::GeneratorTooLong { .. }) => prop_assert!(length > MAX_LENGTH),
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }

    #[test]
    fn length_limits() {
        assert!(Generator::alphanumeric(42).is_err());
        assert_eq!(Generator::alphanumeric(43).unwrap().output_len(), 43);
        assert!(Generator::base64(31).is_err());
        assert_eq!(Generator::base64(32).unwrap(), Generator::BASE64);
        assert_eq!(
            Generator::alphanumeric(48).unwrap(),
            Generator::ALPHANUMERIC
        );
        assert!(matches!(
            Generator::alphanumeric(4097),
            Err(Error::GeneratorTooLong { .. })
        ));
        let error = Generator::alphanumeric(20).unwrap_err();
        assert!(
            error.to_string().contains("at least 43"),
            "message names the fix: {error}"
        );
        assert_eq!(min_length(Alphabet::Base64), 32);
        assert_eq!(min_length(Alphabet::Alphanumeric), 43);
    }

    #[test]
    fn presets_hold_256_bits() {
        assert!(Generator::ALPHANUMERIC.entropy_bits() >= 256.0);
        assert!((Generator::BASE64.entropy_bits() - 256.0).abs() < f64::EPSILON);
        assert_eq!(Generator::BASE64.output_len(), 44);
    }

    #[test]
    fn base64_secret_has_openssl_shape() {
        for _ in 0..200 {
            let value = Generator::BASE64.generate().unwrap();
            let text = std::str::from_utf8(value.expose()).unwrap();
            assert_eq!(text.len(), 44);
            // 32 bytes leave one byte over: exactly one `=` of padding.
            assert!(text.ends_with('=') && !text.ends_with("=="));
            assert!(!text.ends_with('\n'));
            assert_eq!(decode(text).map(|raw| raw.len()), Some(32));
        }
    }

    #[test]
    fn alphanumeric_secret_has_only_alphanumerics() {
        for length in [43, 48, 64, 200] {
            let generator = Generator::alphanumeric(length).unwrap();
            for _ in 0..100 {
                let value = generator.generate().unwrap();
                assert_eq!(value.len(), length);
                assert!(value.expose().iter().all(u8::is_ascii_alphanumeric));
            }
        }
    }

    #[test]
    fn no_repeats_over_many_draws() {
        for generator in [Generator::ALPHANUMERIC, Generator::BASE64] {
            let mut seen = HashSet::new();
            for _ in 0..20_000 {
                let value = generator.generate().unwrap();
                assert!(
                    seen.insert(value.expose().to_vec()),
                    "{generator:?} repeated a value"
                );
            }
        }
    }

    /// Pearson's chi-square statistic of `counts` against a uniform
    /// distribution.
    #[allow(clippy::cast_precision_loss)]
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&observed| (observed as f64 - expected).powi(2) / expected)
            .sum()
    }

    /// A bound the statistic of a uniform source exceeds with negligible
    /// probability: the mean (degrees of freedom) plus 12 standard
    /// deviations. A biased generator (say `% 62` without rejection, which
    /// favours the first 8 characters by 25%) lands far above it.
    #[allow(clippy::cast_precision_loss)]
    fn loose_bound(categories: usize) -> f64 {
        let df = (categories - 1) as f64;
        df + 12.0 * (2.0 * df).sqrt()
    }

    #[test]
    fn alphanumeric_characters_are_roughly_uniform() {
        let mut counts = [0u64; 62];
        for _ in 0..4_000 {
            let value = Generator::ALPHANUMERIC.generate().unwrap();
            for &c in value.expose() {
                let index = ALPHANUMERIC.iter().position(|&x| x == c).unwrap();
                counts[index] += 1;
            }
        }
        let statistic = chi_square(&counts);
        assert!(
            statistic < loose_bound(62),
            "chi-square {statistic:.1} over 62 characters, counts {counts:?}"
        );
    }

    #[test]
    fn the_bound_catches_modulo_bias() {
        // What a naive `byte % 62` would produce: byte values 0..=255 spread
        // over 62 characters, the first 8 getting one extra byte value each.
        let mut counts = [0u64; 62];
        for _ in 0..(4_000 * 48 / 256) {
            for byte in 0..=255u8 {
                counts[usize::from(byte % 62)] += 1;
            }
        }
        assert!(chi_square(&counts) > loose_bound(62));
    }

    #[test]
    fn base64_characters_are_roughly_uniform() {
        let mut counts = [0u64; 64];
        for _ in 0..4_000 {
            let value = Generator::BASE64.generate().unwrap();
            // The first 42 characters carry 6 random bits each; the 43rd
            // carries 4 and the 44th is padding.
            for &c in &value.expose()[..42] {
                let index = BASE64.iter().position(|&x| x == c).unwrap();
                counts[index] += 1;
            }
        }
        let statistic = chi_square(&counts);
        assert!(
            statistic < loose_bound(64),
            "chi-square {statistic:.1} over 64 characters, counts {counts:?}"
        );
    }

    #[test]
    fn each_position_varies() {
        // Catches a generator that fills some position with a constant.
        let values: Vec<_> = (0..200)
            .map(|_| Generator::ALPHANUMERIC.generate().unwrap())
            .collect();
        for position in 0..48 {
            let distinct: HashSet<u8> = values.iter().map(|v| v.expose()[position]).collect();
            // 200 uniform draws from 62 characters hit far more than 20.
            assert!(
                distinct.len() > 20,
                "position {position}: {} distinct",
                distinct.len()
            );
        }
    }
}
