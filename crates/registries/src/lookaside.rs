//! Lookaside signature locations: where the simple-signing signatures of one
//! repository live, and the URL of each numbered signature.

use std::fmt;
use std::path::PathBuf;

use criguard_reference::Digest;

use crate::Error;
use crate::go_url::GoUrl;

/// At most this many lookaside signatures are read for one image; a server
/// that keeps answering is broken or hostile (containers/image's limit).
/// Having read this many without finding the end is already an error, so a
/// store holds at most one fewer.
pub const MAX_LOOKASIDE_SIGNATURES: usize = 128;

/// The lookaside directory of one repository: the configured (or built-in)
/// URL with the repository path appended.
///
/// Parsing follows Go's `net/url`, so values containers/image accepts are
/// accepted here, including scheme-less paths that only fail when read; the
/// scheme is judged by [`LookasideUrl::location`], at read time, as upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookasideBase {
    url: GoUrl,
}

impl LookasideBase {
    pub(crate) fn new(url: GoUrl) -> Self {
        Self { url }
    }

    /// The URL of signature `number` (1, 2, …) of the image whose manifest
    /// has `manifest_digest`: `<base>@<algorithm>=<hex>/signature-<number>`.
    ///
    /// The digest is a validated [`Digest`], so it cannot smuggle `/` or
    /// `..` into the path (upstream validates it at this point for that
    /// reason). Numbers past [`MAX_LOOKASIDE_SIGNATURES`] are refused so that
    /// a reader looping until the first missing signature always stops.
    pub fn signature_url(
        &self,
        manifest_digest: &Digest,
        number: usize,
    ) -> Result<LookasideUrl, Error> {
        let mut url = self.url.clone();
        url.append_to_path(&signature_suffix(manifest_digest, number)?);
        Ok(LookasideUrl { url })
    }
}

/// Where signature `number` of `manifest_digest` lives in a lookaside
/// directory, relative to it: `<repository path>@<algorithm>=<hex>/signature-<number>`
/// (`repository_path` as `Reference::path` gives it, e.g. `library/busybox`).
/// For writers of file stores; readers use [`LookasideBase::signature_url`].
pub fn signature_path(
    repository_path: &str,
    manifest_digest: &Digest,
    number: usize,
) -> Result<String, Error> {
    Ok(format!(
        "{repository_path}{}",
        signature_suffix(manifest_digest, number)?
    ))
}

fn signature_suffix(manifest_digest: &Digest, number: usize) -> Result<String, Error> {
    if number == 0 {
        return Err(Error::SignatureNumberZero);
    }
    if number > MAX_LOOKASIDE_SIGNATURES {
        return Err(Error::TooManyLookasideSignatures);
    }
    Ok(format!(
        "@{}={}/signature-{number}",
        manifest_digest.algorithm(),
        manifest_digest.encoded()
    ))
}

/// Printed with any password redacted, as upstream logs and errors do.
impl fmt::Display for LookasideBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url.to_redacted_string())
    }
}

/// The location of one lookaside signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookasideUrl {
    url: GoUrl,
}

impl LookasideUrl {
    /// Where to read the signature from. Only `file`, `http` and `https`
    /// are readable; anything else (including a scheme-less path, which the
    /// configuration accepted) is refused here, with upstream's message.
    ///
    /// A `file:` URL is read from its path alone, ignoring any host, exactly
    /// like containers/image. An opaque URL (`file:relative`) is refused:
    /// upstream would read from a path made of the repository name below `/`.
    pub fn location(&self) -> Result<LookasideLocation, Error> {
        match self.url.scheme() {
            "file" => {
                if self.url.is_opaque() {
                    return Err(Error::OpaqueLookasideUrl {
                        url: self.to_string(),
                    });
                }
                match std::str::from_utf8(self.url.path()) {
                    Ok(path) => Ok(LookasideLocation::File(PathBuf::from(path))),
                    Err(_) => Err(Error::NonUtf8LookasidePath {
                        url: self.to_string(),
                    }),
                }
            }
            "http" | "https" => {
                if self.url.is_opaque() {
                    return Err(Error::OpaqueLookasideUrl {
                        url: self.to_string(),
                    });
                }
                Ok(LookasideLocation::Http(self.url.to_unredacted_string()))
            }
            _ => Err(Error::UnsupportedLookasideScheme {
                url: self.to_string(),
            }),
        }
    }
}

/// Printed with any password redacted, as upstream logs and errors do.
impl fmt::Display for LookasideUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url.to_redacted_string())
    }
}

/// Where a lookaside signature is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookasideLocation {
    /// A local file; a missing file ends the list of signatures.
    File(PathBuf),
    /// An `http` or `https` URL, credentials included; a 404 ends the list
    /// of signatures. Log the [`LookasideUrl`] instead, which is redacted.
    Http(String),
}

#[cfg(test)]
mod tests;
