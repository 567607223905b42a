//! The kubelet's registry credentials (`PullImageRequest.auth`).

use base64::Engine as _;
use criguard_cri::v1::AuthConfig;
use criguard_reference::Digest;
use criguard_registry::Credentials;
use criguard_registry::digest::sha256;

/// The kubelet's credentials, as a registry client takes them. A request
/// without any means "use the auth file".
pub(crate) fn credentials(auth: Option<&AuthConfig>) -> Result<Option<Credentials>, String> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if !auth.registry_token.is_empty() {
        return Ok(Some(Credentials::Bearer(auth.registry_token.clone())));
    }
    if !auth.username.is_empty() {
        return Ok(Some(Credentials::Basic {
            username: auth.username.clone(),
            password: auth.password.clone(),
        }));
    }
    if !auth.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("the credentials' auth field is not base64 of USER:PASSWORD")?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err("the credentials' auth field is not USER:PASSWORD".to_owned());
        };
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    if !auth.identity_token.is_empty() {
        return Err(
            "identity-token credentials are not supported for signature fetches".to_owned(),
        );
    }
    Ok(None)
}

/// Tells credentials apart without keeping them as a key in the clear.
pub(crate) fn credentials_key(credentials: &Credentials) -> Digest {
    let text = match credentials {
        Credentials::Anonymous => "anonymous".to_owned(),
        Credentials::Basic { username, password } => format!("basic\0{username}\0{password}"),
        Credentials::Bearer(token) => format!("bearer\0{token}"),
    };
    sha256(text.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn kubelet_credentials() {
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.to_owned(),
            password: p.to_owned(),
        };
        assert_eq!(credentials(None).unwrap(), None);
        assert_eq!(credentials(Some(&AuthConfig::default())).unwrap(), None);
        let auth = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p:q"),
            ..AuthConfig::default()
        };
        assert_eq!(credentials(Some(&auth)).unwrap(), Some(basic("u", "p:q")));
        let both = AuthConfig {
            username: "a".to_owned(),
            password: "b".to_owned(),
            auth: "ignored".to_owned(),
            ..AuthConfig::default()
        };
        assert_eq!(credentials(Some(&both)).unwrap(), Some(basic("a", "b")));
        let token = AuthConfig {
            registry_token: "t".to_owned(),
            ..AuthConfig::default()
        };
        assert_eq!(
            credentials(Some(&token)).unwrap(),
            Some(Credentials::Bearer("t".to_owned()))
        );
        for bad in [
            AuthConfig {
                auth: "!!".to_owned(),
                ..AuthConfig::default()
            },
            AuthConfig {
                identity_token: "x".to_owned(),
                ..AuthConfig::default()
            },
        ] {
            assert!(credentials(Some(&bad)).is_err());
        }
        assert_ne!(
            credentials_key(&basic("a", "b")),
            credentials_key(&basic("a", "c"))
        );
    }
}
