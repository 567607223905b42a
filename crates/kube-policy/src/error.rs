//! Why policy objects cannot be rendered.

use std::fmt;

use crate::object::ObjectRef;

/// One problem of one object, at one field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct FieldError {
    pub object: ObjectRef,
    /// JSON path of the field, `spec.policy.rootOfTrust.publicKey.keyData`;
    /// `metadata.name` for a naming problem.
    pub field: String,
    pub message: String,
}

/// Why a render produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The base policy.json is not a valid policy.
    #[error("the base policy is invalid: {0}")]
    InvalidBase(String),
    /// An object is invalid; nothing is rendered while one is.
    #[error(transparent)]
    InvalidObject(#[from] FieldError),
    /// More objects than a render accepts.
    #[error("{count} policy objects, more than the {limit} accepted")]
    TooManyObjects { count: usize, limit: usize },
    /// A rendered file that criguard's own parser refuses: a bug, reported
    /// rather than written.
    #[error("rendered {file} does not parse: {problem}")]
    Unparsable { file: String, problem: String },
}

/// Every reason a render failed, all of them, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("render failed"),
            [only] => write!(f, "{only}"),
            all => {
                write!(f, "{} problems:", all.len())?;
                for error in all {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}
