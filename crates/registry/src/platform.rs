//! Platforms with Go's names, and choosing an instance of a manifest list
//! the way containers/image does.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An OS, CPU architecture and optional variant, spelt as Go and the OCI
/// image spec spell them (`linux`, `amd64`, `arm64`, `v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program was built for, which is the one a
    /// container runtime on this machine would pull.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" if cfg!(target_feature = "v7") => ("arm", Some("v7")),
            "arm" => ("arm", Some("v6")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Whether an instance declared for `candidate` runs here, given how
    /// well its variant matches: `Some(0)` for an exact variant, `Some(1)`
    /// for an instance that declares no variant, `None` for no match.
    fn match_rank(&self, candidate: &Platform) -> Option<u8> {
        if candidate.os != self.os || candidate.architecture != self.architecture {
            return None;
        }
        match (&self.variant, &candidate.variant) {
            // Nothing wanted: any variant will do, in index order.
            (None, _) => Some(0),
            (Some(wanted), Some(offered)) if wanted == offered => Some(0),
            (Some(_), None) => Some(1),
            (Some(_), Some(_)) => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || Error::InvalidPlatform {
            input: input.to_owned(),
        };
        let parts: Vec<&str> = input.split('/').collect();
        let valid_part = |part: &&str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid_part) {
            return Err(invalid());
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }
}

impl Platform {
    /// The position of the instance containers/image would pull for this
    /// platform from an index's instances (their platforms, in index
    /// order), for callers that read indexes themselves, like OCI layouts.
    pub fn choose_instance<'a, I>(&self, instances: I) -> Option<usize>
    where
        I: IntoIterator<Item = Option<&'a Platform>>,
    {
        choose(self, instances)
    }
}

/// Picks the instance to pull from `(platform, item)` pairs in index order:
/// the first exact match, else the first matching instance that declares no
/// variant. Returns its position.
pub(crate) fn choose<'a, I>(wanted: &Platform, instances: I) -> Option<usize>
where
    I: IntoIterator<Item = Option<&'a Platform>>,
{
    let mut best: Option<(u8, usize)> = None;
    for (position, platform) in instances.into_iter().enumerate() {
        let Some(rank) = platform.and_then(|p| wanted.match_rank(p)) else {
            continue;
        };
        if best.is_none_or(|(best_rank, _)| rank < best_rank) {
            best = Some((rank, position));
        }
    }
    best.map(|(_, position)| position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(
            p("linux/amd64"),
            Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None
            }
        );
        assert_eq!(p("linux/arm/v7").variant.as_deref(), Some("v7"));
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(p("windows/amd64").to_string(), "windows/amd64");
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/",
            "linux/arm/v7/x",
            "linux//v7",
            "linux/amd 64",
            " linux/amd64",
        ] {
            let err = bad.parse::<Platform>().err();
            assert!(
                matches!(err, Some(Error::InvalidPlatform { ref input }) if input == bad),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn host_uses_go_names() {
        let host = Platform::host();
        assert!(!host.os.is_empty());
        assert_ne!(host.architecture, "x86_64");
        assert_ne!(host.architecture, "aarch64");
        assert_ne!(host.os, "macos");
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        // Round trip through the textual form.
        assert_eq!(p(&host.to_string()), host);
    }

    #[test]
    fn choose_prefers_exact_variant_then_none() {
        let list = [
            p("linux/amd64"),
            p("linux/arm/v6"),
            p("linux/arm"),
            p("linux/arm/v7"),
            p("linux/arm64/v8"),
        ];
        let opts = || list.iter().map(Some);
        assert_eq!(choose(&p("linux/arm/v7"), opts()), Some(3));
        assert_eq!(choose(&p("linux/arm/v5"), opts()), Some(2));
        assert_eq!(choose(&p("linux/amd64"), opts()), Some(0));
        assert_eq!(choose(&p("linux/arm64"), opts()), Some(4));
        assert_eq!(choose(&p("linux/arm64/v9"), opts()), None);
        assert_eq!(choose(&p("windows/amd64"), opts()), None);
        // No variant wanted: the first instance of the os/architecture.
        assert_eq!(choose(&p("linux/arm"), opts()), Some(1));
        // Instances without a platform are skipped.
        assert_eq!(choose(&p("linux/amd64"), [None, Some(&list[0])]), Some(1));
    }
}
