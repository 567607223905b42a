//! Policy objects from YAML text: one or more `---`-separated documents,
//! each a `ClusterImagePolicy`, an `ImagePolicy`, or a `List` of them (as
//! `kubectl get -o yaml` writes).

use serde_json::Value;

use crate::object::PolicyObject;
use crate::resources::{ClusterImagePolicy, ImagePolicy};

/// The group and version every document must name.
pub const API_VERSION: &str = "criguard.dev/v1alpha1";
/// Largest YAML text read (objects are kilobytes; a bound all the same).
pub const MAX_INPUT_SIZE: usize = 16 * 1024 * 1024;
/// Most documents and list items in one text.
pub const MAX_DOCUMENTS: usize = 10_000;

/// Why YAML text holds no usable objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {place}: {message}")]
pub struct InputError {
    /// The file the text came from, as the caller named it.
    pub origin: String,
    /// `document 2`, or `document 2, ImagePolicy/team/signed` once the
    /// object's name is known, with the field path where there is one.
    pub place: String,
    pub message: String,
}

/// Reads every policy object in `text`; `origin` names it in errors.
pub fn parse_objects(text: &[u8], origin: &str) -> Result<Vec<PolicyObject>, InputError> {
    let error = |place: String, message: String| InputError {
        origin: origin.to_owned(),
        place,
        message,
    };
    if text.len() > MAX_INPUT_SIZE {
        return Err(error(
            "file".into(),
            format!(
                "{} bytes, more than the {MAX_INPUT_SIZE} accepted",
                text.len()
            ),
        ));
    }
    let mut objects = Vec::new();
    let mut count = 0usize;
    for (index, document) in yaml_serde::Deserializer::from_slice(text).enumerate() {
        let place = format!("document {}", index + 1);
        count += 1;
        if count > MAX_DOCUMENTS {
            return Err(error(place, format!("more than {MAX_DOCUMENTS} documents")));
        }
        let value: Value = serde::Deserialize::deserialize(document)
            .map_err(|e| error(place.clone(), format!("not YAML: {e}")))?;
        if value.is_null() {
            continue; // an empty document, as after a trailing `---`
        }
        if kind_of(&value) == Some("List") {
            let items = match value.get("items") {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => continue,
                Some(_) => return Err(error(place, "items: must be a list".into())),
            };
            for (i, item) in items.iter().enumerate() {
                count += 1;
                if count > MAX_DOCUMENTS {
                    return Err(error(place, format!("more than {MAX_DOCUMENTS} objects")));
                }
                objects.push(
                    object(item.clone(), format!("{place}, items[{i}]"))
                        .map_err(|(place, message)| error(place, message))?,
                );
            }
        } else {
            objects.push(object(value, place).map_err(|(place, message)| error(place, message))?);
        }
    }
    Ok(objects)
}

fn kind_of(value: &Value) -> Option<&str> {
    value.get("kind").and_then(Value::as_str)
}

/// One object from its JSON form; errors as (place, message).
fn object(value: Value, place: String) -> Result<PolicyObject, (String, String)> {
    let kind = kind_of(&value).unwrap_or_default().to_owned();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str);
    let named = match (kind.as_str(), namespace) {
        ("ImagePolicy", Some(namespace)) => format!("{place}, {kind}/{namespace}/{name}"),
        _ => format!("{place}, {kind}/{name}"),
    };
    if api_version != API_VERSION {
        return Err((
            named,
            format!("apiVersion: {api_version:?}, expected {API_VERSION:?}"),
        ));
    }
    let at = |e: serde_path_to_error::Error<serde_json::Error>| {
        let path = e.path().to_string();
        (named.clone(), format!("{path}: {}", e.into_inner()))
    };
    let written = value.get("spec").cloned().unwrap_or(Value::Null);
    let object = match kind.as_str() {
        "ClusterImagePolicy" => {
            let policy: ClusterImagePolicy = serde_path_to_error::deserialize(value).map_err(at)?;
            PolicyObject::Cluster(policy)
        }
        "ImagePolicy" => {
            let policy: ImagePolicy = serde_path_to_error::deserialize(value).map_err(at)?;
            PolicyObject::Namespaced(policy)
        }
        other => {
            return Err((
                named,
                format!("kind: {other:?}, expected ClusterImagePolicy, ImagePolicy or List"),
            ));
        }
    };
    // The API server drops fields its schema does not have; a file is
    // read strictly instead, since a misspelt optional field (`rekorKeyDta`)
    // would otherwise vanish and leave a weaker policy.
    let known = serde_json::to_value(object.spec()).unwrap_or(Value::Null);
    if let Some(path) = unknown_field(&written, &known, "spec") {
        return Err((named, format!("{path}: unknown field")));
    }
    Ok(object)
}

/// The first field of `written` that `known` (the same object as read and
/// written back) does not have; `null` values count as absent.
fn unknown_field(written: &Value, known: &Value, path: &str) -> Option<String> {
    match (written, known) {
        (Value::Object(written), Value::Object(known)) => {
            written.iter().find_map(|(key, value)| {
                let here = format!("{path}.{key}");
                match known.get(key) {
                    _ if value.is_null() => None,
                    None => Some(here),
                    Some(known) => unknown_field(value, known, &here),
                }
            })
        }
        (Value::Array(written), Value::Array(known)) => written
            .iter()
            .zip(known)
            .enumerate()
            .find_map(|(i, (w, k))| unknown_field(w, k, &format!("{path}[{i}]"))),
        _ => None,
    }
}
