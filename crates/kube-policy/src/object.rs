//! Names of policy objects, as messages and status conditions need them.

use std::fmt;

use kube::ResourceExt as _;

use crate::resources::{ClusterImagePolicy, ImagePolicy, ImagePolicySpec};

/// The two kinds of policy object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ClusterImagePolicy,
    ImagePolicy,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClusterImagePolicy => "ClusterImagePolicy",
            Self::ImagePolicy => "ImagePolicy",
        })
    }
}

/// One policy object: its kind, namespace (for an `ImagePolicy`) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn cluster(policy: &ClusterImagePolicy) -> Self {
        Self {
            kind: Kind::ClusterImagePolicy,
            namespace: None,
            name: policy.name_any(),
        }
    }

    pub fn namespaced(policy: &ImagePolicy) -> Self {
        Self {
            kind: Kind::ImagePolicy,
            namespace: policy.namespace(),
            name: policy.name_any(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `ClusterImagePolicy/name` or `ImagePolicy/namespace/name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{}/{namespace}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Either kind of policy object, as read from YAML.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyObject {
    Cluster(ClusterImagePolicy),
    Namespaced(ImagePolicy),
}

impl PolicyObject {
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Self::Cluster(policy) => ObjectRef::cluster(policy),
            Self::Namespaced(policy) => ObjectRef::namespaced(policy),
        }
    }

    pub fn spec(&self) -> &ImagePolicySpec {
        match self {
            Self::Cluster(policy) => &policy.spec,
            Self::Namespaced(policy) => &policy.spec,
        }
    }
}
