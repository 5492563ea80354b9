//! Random bytes from the operating system.

use rustix::io::Errno;
use rustix::rand::{GetRandomFlags, getrandom};

use crate::Error;

/// Fills `buf` from the kernel's CSPRNG.
///
/// `getrandom(2)` with no flags blocks until the kernel's pool is
/// initialised and then never returns weak bytes; it may return fewer bytes
/// than asked for or be interrupted by a signal, so this loops.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match getrandom(&mut buf[filled..], GetRandomFlags::empty()) {
            Ok(0) => {
                return Err(Error::Random {
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "getrandom(2) returned no bytes",
                    ),
                });
            }
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            Err(errno) => {
                return Err(Error::Random {
                    source: errno.into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_whole_buffer_with_varying_bytes() {
        // Large enough that getrandom(2) may return short reads.
        let mut buf = vec![0u8; 1 << 20];
        fill(&mut buf).unwrap();
        // A zero run of 64 bytes at the end would mean the loop stopped early;
        // its probability for random bytes is 2^-512.
        assert!(buf[buf.len() - 64..].iter().any(|&b| b != 0));
        let mut other = vec![0u8; 64];
        fill(&mut other).unwrap();
        assert_ne!(&buf[..64], &other[..]);
    }

    #[test]
    fn empty_buffer_is_fine() {
        fill(&mut []).unwrap();
    }
}
