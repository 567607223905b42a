//! Reading simple-signing signatures from a lookaside store: numbered
//! files next to a configured URL, read from `signature-1` up to the first
//! one that is missing, as containers/image does.
//!
//! Only "missing" ends the list (ENOENT for files, 404 for http); any other
//! failure is an error, because a store that cannot be read must not look
//! like an image nobody signed. So is a store that does not end: like
//! containers/image, the reader gives up once it has read
//! [`MAX_LOOKASIDE_SIGNATURES`] without finding the end, and refuses the
//! image rather than judge it on those. The bytes read count against the
//! image's [`crate::MAX_SIGNATURE_BYTES_PER_IMAGE`].

use std::path::Path;

use criguard_policy::Signature;
use criguard_reference::Digest;
use criguard_registries::{
    LookasideBase, LookasideLocation, LookasideUrl, MAX_LOOKASIDE_SIGNATURES,
};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::clients::Tls;
use crate::digest::LimitedBody;
use crate::registry::Registry;
use crate::signatures::SignatureBudget;
use crate::transport::classify_transport;
use crate::{Error, MAX_SIGNATURE_SIZE};

impl Registry {
    /// The lookaside signatures of the manifest `manifest_digest` under
    /// `base` (registries.d's `lookaside` for the repository the image is
    /// pulled from), each parsed as a signature blob. Bounded by the
    /// per-request time-out and the operation deadline; a store with
    /// [`MAX_LOOKASIDE_SIGNATURES`] or more, or with more than
    /// [`crate::MAX_SIGNATURE_BYTES_PER_IMAGE`] in all, is an error.
    pub async fn lookaside_signatures(
        &self,
        base: &LookasideBase,
        manifest_digest: &Digest,
    ) -> Result<Vec<Signature>, Error> {
        let mut budget = SignatureBudget::new(manifest_digest.to_string());
        self.lookaside_signatures_within(base, manifest_digest, &mut budget)
            .await
    }

    /// [`Registry::lookaside_signatures`], counting the bytes against
    /// `budget`, which the image's attachments share.
    pub(crate) async fn lookaside_signatures_within(
        &self,
        base: &LookasideBase,
        manifest_digest: &Digest,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<Signature>, Error> {
        self.within_deadline(
            format!("reading lookaside signatures from {base}"),
            self.lookaside_signatures_inner(base, manifest_digest, budget),
        )
        .await
    }

    async fn lookaside_signatures_inner(
        &self,
        base: &LookasideBase,
        manifest_digest: &Digest,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<Signature>, Error> {
        let mut signatures = Vec::new();
        for number in 1..=MAX_LOOKASIDE_SIGNATURES {
            let url = base.signature_url(manifest_digest, number)?;
            let blob = match url.location()? {
                LookasideLocation::File(path) => read_file(&url, &path)?,
                LookasideLocation::Http(address) => self.read_http(&url, &address).await?,
            };
            let Some(blob) = blob else {
                return Ok(signatures);
            };
            budget.charge(blob.len())?;
            let signature = Signature::from_blob(&blob).map_err(|e| Error::LookasideParse {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            signatures.push(signature);
        }
        // containers/image fails when it would need a 129th probe, so a
        // store holding exactly 128 is refused, and so it is here.
        Err(Error::TooManySignatures {
            what: format!("lookaside signatures of {manifest_digest} at {base}"),
            count: MAX_LOOKASIDE_SIGNATURES,
            limit: MAX_LOOKASIDE_SIGNATURES - 1,
        })
    }

    async fn read_http(&self, url: &LookasideUrl, address: &str) -> Result<Option<Vec<u8>>, Error> {
        let timeout = self.config().timeout;
        let display = url.to_string();
        let host = reqwest::Url::parse(address)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| display.clone());
        let request = async {
            let mut response = self.lookaside_get(address, &display, &host).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Ok(None),
                status => {
                    return Err(Error::LookasideRead {
                        url: display.clone(),
                        message: format!("status {status}"),
                    });
                }
            }
            let too_large = |detail: String| Error::TooLarge {
                what: format!("signature {display}"),
                limit: MAX_SIGNATURE_SIZE,
                detail,
            };
            let mut body = LimitedBody::new(MAX_SIGNATURE_SIZE, response.content_length())
                .map_err(|len| too_large(format!("Content-Length is {len}")))?;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| read_error(&display, classify_transport(&host, timeout, &e)))?
            {
                if !body.push(&chunk) {
                    return Err(too_large(format!(
                        "more than {MAX_SIGNATURE_SIZE} bytes received"
                    )));
                }
            }
            Ok(Some(body.into_bytes()))
        };
        tokio::time::timeout(timeout, request)
            .await
            .unwrap_or_else(|_| {
                Err(read_error(
                    &display,
                    Error::TimedOut {
                        host: host.clone(),
                        timeout,
                    },
                ))
            })
    }

    /// `GET address`. An `https://` store is read with the registry's
    /// certificate-checking client: TLS is always verified (registries.conf's
    /// `insecure` is about registries, not lookaside stores, in
    /// containers/image too). An `http://` store is read with the plain-HTTP
    /// client, and only a redirect to HTTPS goes on with the checking one,
    /// so that a plain-HTTP store never loads the system trust store.
    /// Credentials in the URL are sent as basic authentication, as Go's HTTP
    /// client does.
    async fn lookaside_get(
        &self,
        address: &str,
        display: &str,
        host: &str,
    ) -> Result<reqwest::Response, Error> {
        const FOR: &str = "lookaside signature stores";
        let timeout = self.config().timeout;
        let transport =
            |e: reqwest::Error| read_error(display, classify_transport(host, timeout, &e));
        let plain = reqwest::Url::parse(address).is_ok_and(|u| u.scheme() == "http");
        if !plain {
            let client = self.clients.get(Tls::Verified, FOR)?;
            return client.get(address).send().await.map_err(transport);
        }
        let client = self.clients.get(Tls::PlainHttp, FOR)?;
        let response = client.get(address).send().await.map_err(transport)?;
        let onward = response
            .status()
            .is_redirection()
            .then(|| response.headers().get(LOCATION))
            .flatten()
            .and_then(|location| location.to_str().ok())
            .and_then(|location| response.url().join(location).ok())
            .filter(|next| next.scheme() != "http");
        match onward {
            None => Ok(response),
            Some(next) => {
                let client = self.clients.get(Tls::Verified, FOR)?;
                client.get(next).send().await.map_err(transport)
            }
        }
    }
}

fn read_error(url: &str, cause: Error) -> Error {
    Error::LookasideRead {
        url: url.to_owned(),
        message: cause.to_string(),
    }
}

/// A signature file, `None` when it does not exist. Read with the limit
/// applied to what is read, not to what the file claims.
fn read_file(url: &LookasideUrl, path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let error = |message: String| Error::LookasideRead {
        url: url.to_string(),
        message,
    };
    match criguard_files::read_limited(path, MAX_SIGNATURE_SIZE as u64) {
        Ok(body) => Ok(Some(body)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(criguard_files::ReadError::TooLarge { .. }) => Err(Error::TooLarge {
            what: format!("signature {url}"),
            limit: MAX_SIGNATURE_SIZE,
            detail: String::new(),
        }),
        Err(e) => Err(error(format!("{}: {e}", path.display()))),
    }
}
