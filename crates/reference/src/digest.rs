//! Content digests (`algorithm:hex`) validated like the OCI go-digest package.

use std::fmt;
use std::str::FromStr;

/// Why a string is not an acceptable digest. The texts are go-digest's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("invalid checksum digest length")]
    InvalidLength,
    #[error("unsupported digest algorithm")]
    Unsupported,
}

/// A validated digest such as `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    value: String,
    colon: usize,
}

impl Digest {
    /// Parses and validates; only sha256, sha384 and sha512 are known, as in
    /// containers/image.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let colon = match input.find(':') {
            Some(i) if i > 0 && i + 1 < input.len() => i,
            _ => return Err(DigestError::InvalidFormat),
        };
        let (algorithm, encoded) = (&input[..colon], &input[colon + 1..]);
        let hex_len = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(if is_well_formed_unknown(input) {
                    DigestError::Unsupported
                } else {
                    DigestError::InvalidFormat
                });
            }
        };
        if encoded.len() != hex_len {
            return Err(DigestError::InvalidLength);
        }
        if !encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Self {
            value: input.to_owned(),
            colon,
        })
    }

    /// A sha256 digest from its 32 raw bytes.
    pub fn sha256_from_bytes(bytes: &[u8; 32]) -> Self {
        let mut value = String::with_capacity(71);
        value.push_str("sha256:");
        for b in bytes {
            value.push_str(&format!("{b:02x}"));
        }
        Self { value, colon: 6 }
    }

    pub fn algorithm(&self) -> &str {
        &self.value[..self.colon]
    }

    /// The hex part after the colon.
    pub fn encoded(&self) -> &str {
        &self.value[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// go-digest's grammar for digests of algorithms it does not implement:
/// such a digest is "unsupported" rather than "malformed".
fn is_well_formed_unknown(input: &str) -> bool {
    let Some((algorithm, encoded)) = input.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | '_' | '-'));
    algorithm_ok && encoded_ok
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
