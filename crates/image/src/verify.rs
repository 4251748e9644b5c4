//! Verifying blobs while they stream: digest and size are checked as bytes arrive, and the
//! verdict is known the moment the stream ends.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::ImageError;

/// Reads through to an inner reader, hashing and counting; fails with `InvalidData` as soon
/// as more bytes arrive than the expected size.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    expected_size: Option<u64>,
    /// Shared with whoever reports progress.
    progress: Arc<AtomicU64>,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected_size: Option<u64>, progress: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
            expected_size,
            progress,
        }
    }

    /// Reads whatever the consumer left unread, then checks digest and size. Returns the
    /// number of bytes the blob had.
    pub fn finish(mut self, what: &str, expected_digest: &str) -> Result<u64, ImageError> {
        let mut sink = [0u8; 64 * 1024];
        loop {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                // A source that verifies too fails after the last byte; with every declared
                // byte in hand, our own digest says what is wrong.
                Err(_) if self.expected_size == Some(self.read) => break,
                Err(e) => {
                    let of = self
                        .expected_size
                        .map(|n| format!(" of {n}"))
                        .unwrap_or_default();
                    return Err(ImageError::Io {
                        context: format!("{what}: the stream failed after {}{of} bytes", self.read),
                        source: e,
                    });
                }
            }
        }
        if let Some(expected) = self.expected_size {
            if self.read != expected {
                return Err(ImageError::SizeMismatch {
                    what: what.to_string(),
                    expected,
                    actual: self.read,
                });
            }
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != expected_digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: expected_digest.to_string(),
                actual,
            });
        }
        Ok(self.read)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(expected) = self.expected_size {
            if self.read > expected {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("blob is longer than its declared {expected} bytes"),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[test]
    fn accepts_the_right_bytes_and_counts_them() {
        let progress = Arc::new(AtomicU64::new(0));
        let mut r = VerifyingReader::new(&b"hello world"[..], Some(11), progress.clone());
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.finish("blob", &digest(b"hello world")).unwrap(), 11);
        assert_eq!(progress.load(Ordering::Relaxed), 11);
    }

    #[test]
    fn refuses_wrong_digest_short_and_long_streams() {
        let p = Arc::new(AtomicU64::new(0));
        let wrong =
            VerifyingReader::new(&b"hello"[..], Some(5), p.clone()).finish("b", &digest(b"hellO"));
        assert!(matches!(wrong, Err(ImageError::DigestMismatch { .. })));
        let short =
            VerifyingReader::new(&b"hell"[..], Some(5), p.clone()).finish("b", &digest(b"hell"));
        assert!(matches!(
            short,
            Err(ImageError::SizeMismatch { actual: 4, .. })
        ));
        let mut long = VerifyingReader::new(&b"hello!"[..], Some(5), p);
        let mut buf = Vec::new();
        assert!(long.read_to_end(&mut buf).is_err());
    }
}
