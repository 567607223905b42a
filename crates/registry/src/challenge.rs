//! What a registry's `/v2/` ping says about authentication, and the answer
//! of a token server, read without I/O.
//!
//! containers/image pings a registry once per image it reads and then
//! authenticates from the challenge it got: the first `Basic` or `Bearer`
//! challenge in the `WWW-Authenticate` headers decides, and a Bearer token
//! is asked of the challenge's `realm` with its `service` and the
//! repository's scope. criguard does the same with the ping that also
//! chose HTTPS or HTTP, so that reading an image costs no second ping and
//! no second HTTP client.

use serde::Deserialize;

/// The most bytes of a token server's answer that are read
/// (containers/image's `iolimits.MaxAuthTokenBodySize`).
pub(crate) const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// The most challenges looked at in one ping's answer; registries send one.
const MAX_CHALLENGES: usize = 16;

/// How to authenticate to a registry, as its ping said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No `Basic` or `Bearer` challenge: requests are sent as they are
    /// (with Basic credentials when there are some, as oci-client did).
    None,
    Basic,
    /// A token server to ask, at `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
    /// A Bearer challenge without a realm: there is nowhere to ask for a
    /// token, and containers/image refuses it too. Why, for the error.
    Invalid(String),
}

impl Challenge {
    /// The first `Basic` or `Bearer` challenge of the `WWW-Authenticate`
    /// header values, in order; schemes are case-insensitive.
    pub(crate) fn from_headers<'a>(values: impl Iterator<Item = &'a [u8]>) -> Challenge {
        for value in values.take(MAX_CHALLENGES) {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            let Some((scheme, params)) = parse_challenge(text) else {
                continue;
            };
            if scheme.eq_ignore_ascii_case("basic") {
                return Challenge::Basic;
            }
            if scheme.eq_ignore_ascii_case("bearer") {
                let param = |name: &str| {
                    params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.clone())
                };
                let Some(realm) = param("realm").filter(|r| !r.is_empty()) else {
                    return Challenge::Invalid(format!(
                        "the registry's Bearer challenge names no realm to ask for a token: {}",
                        printable(text)
                    ));
                };
                return Challenge::Bearer {
                    realm,
                    service: param("service").filter(|s| !s.is_empty()),
                };
            }
        }
        Challenge::None
    }
}

/// One challenge (RFC 7235): a scheme, then `name=value` parameters
/// separated by commas, each value a token or a quoted string with
/// backslash escapes. `None` when there is no scheme; a malformed tail
/// ends the parameters and keeps those before it, as containers/image's
/// reader does (an empty or unterminated value ends it too). `http-auth`,
/// in the tree through oci-client, refuses the whole header instead, which
/// would turn a registry containers/image can read into one without a
/// token.
fn parse_challenge(text: &str) -> Option<(&str, Vec<(String, String)>)> {
    let text = text.trim_start_matches([' ', '\t']);
    let end = text.find([' ', '\t']).unwrap_or(text.len());
    let (scheme, mut rest) = text.split_at(end);
    if scheme.is_empty() || !scheme.bytes().all(is_token_byte) {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let name_end = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        if name_end == 0 {
            break;
        }
        let (name, after) = rest.split_at(name_end);
        let after = after.trim_start_matches([' ', '\t']);
        let Some(after) = after.strip_prefix('=') else {
            break;
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut closed = None;
                while let Some((at, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = Some(at + 1);
                            break;
                        }
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        c => value.push(c),
                    }
                }
                let Some(closed) = closed else {
                    break;
                };
                (value, &quoted[closed..])
            }
            None => {
                let end = after
                    .bytes()
                    .position(|b| !is_token_byte(b))
                    .unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        params.push((name.to_owned(), value));
        rest = after;
    }
    Some((scheme, params))
}

/// RFC 7230's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header shown in a message: at most 200 characters of it.
fn printable(text: &str) -> String {
    let shown: String = text.chars().take(200).collect();
    if shown.len() < text.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// A token server's answer (Docker's token authentication): `token`, or
/// OAuth 2's `access_token` when `token` is missing or empty.
pub(crate) fn token_from_response(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("not a token response: {e}"))?;
    let token = if answer.token.is_empty() {
        answer.access_token
    } else {
        answer.token
    };
    if token.is_empty() {
        return Err("the token response holds no token".to_owned());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(values: &[&str]) -> Challenge {
        Challenge::from_headers(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn bearer_with_quoted_and_token_parameters() {
        assert_eq!(
            challenge(&[
                r#"Bearer realm="https://auth.example/token",service=registry.example,scope="repository:a/b:pull""#
            ]),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            }
        );
    }

    #[test]
    fn scheme_and_names_are_case_insensitive_and_escapes_read() {
        assert_eq!(
            challenge(&[r#"bEaReR  Realm = "http://h/t\"x" , SERVICE="s""#]),
            Challenge::Bearer {
                realm: "http://h/t\"x".into(),
                service: Some("s".into()),
            }
        );
    }

    #[test]
    fn the_first_supported_challenge_decides() {
        assert_eq!(
            challenge(&[
                r#"Negotiate abc"#,
                r#"Basic realm="x""#,
                r#"Bearer realm="y""#
            ]),
            Challenge::Basic
        );
        assert_eq!(challenge(&[r#"Negotiate abc"#]), Challenge::None);
        assert_eq!(challenge(&[]), Challenge::None);
    }

    #[test]
    fn bearer_without_realm_is_refused() {
        for value in [r#"Bearer service="s""#, r#"Bearer realm="#] {
            match challenge(&[value]) {
                Challenge::Invalid(message) => assert!(message.contains("no realm"), "{message}"),
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn unterminated_quote_ends_the_parameters() {
        assert_eq!(
            challenge(&[r#"Bearer realm="http://h/t", service="open"#]),
            Challenge::Bearer {
                realm: "http://h/t".into(),
                service: None,
            }
        );
    }

    #[test]
    fn non_utf8_and_empty_values_are_skipped() {
        let values: [&[u8]; 3] = [b"\xff\xfe", b"", b"Basic"];
        assert_eq!(
            Challenge::from_headers(values.into_iter()),
            Challenge::Basic
        );
    }

    #[test]
    fn token_or_access_token() {
        assert_eq!(
            token_from_response(br#"{"token":"t","access_token":"a"}"#),
            Ok("t".into())
        );
        assert_eq!(
            token_from_response(br#"{"token":"","access_token":"a","expires_in":300}"#),
            Ok("a".into())
        );
        assert!(token_from_response(br#"{"expires_in":300}"#).is_err());
        assert!(token_from_response(b"<html>").is_err());
    }
}
