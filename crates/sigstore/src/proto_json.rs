//! The protobuf JSON mapping as sigstore's bundles use it: `bytes` fields
//! are base64 (standard or URL-safe alphabet, padding optional), 64-bit
//! integers are strings or numbers, and every list is bounded here, while
//! parsing, so that a hostile bundle cannot make the parser hold more than
//! a few entries of anything.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, INDIFFERENT);

/// A JSON object is required where a message is: serde's derived readers
/// would also take an array of the fields in order.
pub(crate) fn require_object(bytes: &[u8], what: &str) -> Result<(), String> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(format!("invalid {what}: not a JSON object")),
    }
}

/// A protobuf `bytes` field: absent or `null` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        decode(&text).map(Bytes).map_err(de::Error::custom)
    }
}

/// Base64 as protobuf's JSON reader accepts it.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|e| format!("invalid base64: {e}"))
}

/// A protobuf `int64`: a JSON string of decimal digits or a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Int64(pub(crate) i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Option::<Either>::deserialize(deserializer)? {
            None => Ok(Int64(0)),
            Some(Either::Number(n)) => Ok(Int64(n)),
            Some(Either::Text(text)) => text
                .parse()
                .map(Int64)
                .map_err(|_| de::Error::custom(format!("invalid int64 {text:?}"))),
        }
    }
}

/// A list of at most `MAX` items; `null` is empty. Longer lists are an
/// error found before item `MAX + 1` is parsed.
pub(crate) fn bounded_list<'de, T, const MAX: usize, D>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Bounded<T, const MAX: usize>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Bounded<T, MAX> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX} items")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Vec<T>, D2::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == MAX {
                    return Err(de::Error::custom(format!(
                        "more than {MAX} items in a list"
                    )));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_option(Bounded::<T, MAX>(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_integers_as_protobuf_json_writes_them() {
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert_eq!(decode("aGk").unwrap(), b"hi");
        assert_eq!(decode("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode("a b").is_err());
        assert_eq!(serde_json::from_str::<Int64>(r#""42""#).unwrap(), Int64(42));
        assert_eq!(serde_json::from_str::<Int64>("42").unwrap(), Int64(42));
        assert!(serde_json::from_str::<Int64>(r#""4x""#).is_err());
        assert_eq!(
            serde_json::from_str::<Bytes>("null").unwrap(),
            Bytes(Vec::new())
        );
    }

    #[test]
    fn lists_are_bounded_while_parsing() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "bounded_list::<_, 2, _>")]
            items: Vec<u8>,
        }
        let parse = |text: &str| serde_json::from_str::<Holder>(text).map(|h| h.items);
        assert_eq!(parse(r#"{"items":[1,2]}"#).unwrap(), vec![1, 2]);
        assert_eq!(parse(r#"{"items":null}"#).unwrap(), Vec::<u8>::new());
        assert!(parse(r#"{"items":[1,2,3]}"#).is_err());
    }
}
