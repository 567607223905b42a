//! The two containers/image configuration files that decide where an image
//! and its signatures are fetched from, parsed and resolved as CRI-O's
//! containers/image does:
//!
//! * registries.d ([`RegistriesD`]): lookaside locations of simple-signing
//!   signatures and whether to read sigstore attachments, per scope;
//! * registries.conf ([`RegistriesConf`]): mirrors, location rewrites,
//!   `insecure` and `blocked`, per registry prefix.
//!
//! Both are sans-IO at their core (`from_files` takes file names and bytes)
//! with thin loaders for directories and paths. Neither decides which policy
//! scope applies to an image: the policy always sees the reference the user
//! asked for, while these files only change where bytes come from.

mod config_file;
mod error;
mod go_url;
mod lookaside;
mod registries_conf;
mod registries_d;

pub use error::Error;
pub use lookaside::{
    LookasideBase, LookasideLocation, LookasideUrl, MAX_LOOKASIDE_SIGNATURES, signature_path,
};
pub use registries_conf::{Mirror, PullFromMirror, PullSource, RegistriesConf, Registry};
pub use registries_d::{DEFAULT_LOOKASIDE, LookasideAccess, RegistriesD, ScopeSettings};

/// containers/image's system-wide registries.d.
pub const DEFAULT_REGISTRIES_D: &str = "/etc/containers/registries.d";
/// containers/image's system-wide registries.conf and its drop-in folder.
pub const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
pub const DEFAULT_REGISTRIES_CONF_DIR: &str = "/etc/containers/registries.conf.d";

/// Configuration files larger than this are refused before parsing: both
/// formats are small hand-written files, and a huge one is a mistake or an
/// attack on the parser.
pub const MAX_CONFIG_FILE_SIZE: u64 = 1024 * 1024;
