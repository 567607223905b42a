//! Which calls go where, decided by one table of methods rather than by
//! "everything that is not checked is forwarded".
//!
//! criguard is a boundary: the runtime socket behind it answers more than
//! the kubelet's two image entry points. containerd 1.6 and 1.7 serve
//! `runtime.v1alpha2` beside `runtime.v1`, newer CRI versions add methods
//! that bring images in (`RestorePod`), and containerd serves its own API
//! (`containerd.services.images.v1.Images`, `…transfer.v1.Transfer`) on the
//! same socket. Each of those would let an image past the check if it were
//! forwarded because nobody had thought of it. So every method is named
//! here, and a call to one that is not is refused unless the operator
//! lists it as safe to forward.
//!
//! What reaches the runtime is the method decided on, in its canonical
//! form (`/package.Service/Method`), never the path as the client wrote it:
//! a path that criguard and the runtime would read differently cannot
//! smuggle a checked call through as a forwarded one.

use std::collections::BTreeSet;

use crate::Error;

/// What the proxy does with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handling {
    /// A `PullImageRequest`: decoded and decided by the gate first.
    Pull,
    /// A `CreateContainerRequest`: decoded and decided by the gate first.
    Create,
    /// Forwarded as sent.
    Forward,
    /// Answered by criguard with `Unimplemented` and this message; the
    /// runtime never sees it.
    Refuse(String),
}

/// A call's method and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `/package.Service/Method`, or for a path that names no method, that
    /// path (only ever shown, never forwarded).
    pub method: String,
    pub handling: Handling,
}

/// How a method of the CRI is handled, for every client of either version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Pull,
    Create,
    Forward,
    /// Refused; the text says why.
    Refuse(&'static str),
}

/// One method of `RuntimeService` or `ImageService`.
struct Known {
    name: &'static str,
    class: Class,
    /// Also a method of `runtime.v1alpha2` (frozen at Kubernetes 1.25, so
    /// the methods added later exist only in `runtime.v1`).
    in_v1alpha2: bool,
}

const fn v1(name: &'static str, class: Class) -> Known {
    Known {
        name,
        class,
        in_v1alpha2: false,
    }
}

const fn both(name: &'static str, class: Class) -> Known {
    Known {
        name,
        class,
        in_v1alpha2: true,
    }
}

const RESTORE_POD: &str = "it creates a pod's containers from a checkpoint, \
    and criguard does not check the images those containers run";

/// `runtime.v1.RuntimeService` (Kubernetes CRI api.proto) and what
/// `runtime.v1alpha2.RuntimeService` has of it.
///
/// Forwarded: the sandbox and container lifecycle on what is already on
/// the node, status, stats, metrics, events and streaming endpoints. None
/// of them names an image the runtime would fetch or run: `RunPodSandbox`
/// starts the runtime's own pause image, which its configuration names,
/// not the pod; `UpdateRuntimeConfig` carries the pod CIDR.
/// `CheckpointContainer` and `CheckpointPod` write what runs to disk and
/// bring nothing in; what matters is restoring a checkpoint, which is
/// refused.
const RUNTIME_SERVICE: &[Known] = &[
    both("Version", Class::Forward),
    both("RunPodSandbox", Class::Forward),
    both("StopPodSandbox", Class::Forward),
    both("RemovePodSandbox", Class::Forward),
    both("PodSandboxStatus", Class::Forward),
    both("ListPodSandbox", Class::Forward),
    v1("StreamPodSandboxes", Class::Forward),
    both("CreateContainer", Class::Create),
    both("StartContainer", Class::Forward),
    both("StopContainer", Class::Forward),
    both("RemoveContainer", Class::Forward),
    both("ListContainers", Class::Forward),
    v1("StreamContainers", Class::Forward),
    both("ContainerStatus", Class::Forward),
    both("UpdateContainerResources", Class::Forward),
    both("ReopenContainerLog", Class::Forward),
    both("ExecSync", Class::Forward),
    both("Exec", Class::Forward),
    both("Attach", Class::Forward),
    both("PortForward", Class::Forward),
    both("ContainerStats", Class::Forward),
    both("ListContainerStats", Class::Forward),
    v1("StreamContainerStats", Class::Forward),
    both("PodSandboxStats", Class::Forward),
    both("ListPodSandboxStats", Class::Forward),
    v1("StreamPodSandboxStats", Class::Forward),
    both("UpdateRuntimeConfig", Class::Forward),
    both("Status", Class::Forward),
    v1("CheckpointContainer", Class::Forward),
    v1("CheckpointPod", Class::Forward),
    // Its `container_configs` name images and image volumes; checking them
    // would be CreateContainer's check several times over, and the
    // checkpoint itself names the image the runtime restores, which the
    // request does not show. Refused until that is done.
    v1("RestorePod", Class::Refuse(RESTORE_POD)),
    v1("GetContainerEvents", Class::Forward),
    v1("ListMetricDescriptors", Class::Forward),
    v1("ListPodSandboxMetrics", Class::Forward),
    v1("StreamPodSandboxMetrics", Class::Forward),
    v1("RuntimeConfig", Class::Forward),
    v1("UpdatePodSandboxResources", Class::Forward),
];

/// `runtime.v1.ImageService` and what `runtime.v1alpha2.ImageService` has
/// of it. Only PullImage brings an image in; the others read or remove.
const IMAGE_SERVICE: &[Known] = &[
    both("ListImages", Class::Forward),
    v1("StreamImages", Class::Forward),
    both("ImageStatus", Class::Forward),
    both("PullImage", Class::Pull),
    both("RemoveImage", Class::Forward),
    both("ImageFsInfo", Class::Forward),
];

/// The methods of the two versions' services, by service name. `v1alpha2`
/// gets the same checks as `v1`: its PullImageRequest,
/// CreateContainerRequest, ImageSpec, ContainerConfig, Mount, AuthConfig
/// and PodSandboxConfig carry the fields criguard reads under the same
/// numbers and types. Its ImageSpec and Mount end before
/// `user_specified_image`, `image_ref` and `Mount.image`, but containerd
/// 1.6 and 1.7 serve v1alpha2 by re-encoding each request and decoding it
/// as v1, so those numbers may still arrive, and criguard reads them as v1.
fn service(name: &str) -> Option<(&'static [Known], bool)> {
    match name {
        "runtime.v1.RuntimeService" => Some((RUNTIME_SERVICE, false)),
        "runtime.v1.ImageService" => Some((IMAGE_SERVICE, false)),
        "runtime.v1alpha2.RuntimeService" => Some((RUNTIME_SERVICE, true)),
        "runtime.v1alpha2.ImageService" => Some((IMAGE_SERVICE, true)),
        _ => None,
    }
}

fn known(service_name: &str, method: &str) -> Option<Class> {
    let (methods, alpha) = service(service_name)?;
    methods
        .iter()
        .find(|known| known.name == method && (known.in_v1alpha2 || !alpha))
        .map(|known| known.class)
}

/// The service and method a `:path` names, as grpc-go's server routes it:
/// one leading `/` is optional (grpc-go before 1.7x accepts it missing,
/// and containerd 1.6 and 1.7 run such versions), the method is what
/// follows the last `/`. A query or fragment is no part of the name here;
/// grpc-go would route a path carrying one nowhere, but reading it as the
/// method it starts with errs on the side of the check, and the runtime is
/// sent the canonical path without it. `None`: no method is named.
///
/// Nothing is percent-decoded, as grpc-go decodes nothing: `Pull%49mage`
/// is not `PullImage`, to it or to criguard.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = &path[..end];
    let path = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = path.rsplit_once('/')?;
    (!service.is_empty() && !method.is_empty()).then_some((service, method))
}

/// A path as quoted in a refusal: a `:path` may be 64 KiB, a status
/// message should stay readable and far below gRPC's metadata limits.
fn shown(path: &str) -> &str {
    const SHOWN: usize = 256;
    match path.char_indices().nth(SHOWN) {
        Some((end, _)) => &path[..end],
        None => path,
    }
}

/// Whether `name` can be a protobuf service (`package.Service`) or method
/// name: what an operator may list, so that a listing is one method, in
/// the form the runtime is sent.
fn is_identifier(name: &str, dots: bool) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|part| part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (dots && c == '.'))
}

/// The method table with the operator's additions: methods criguard does
/// not know that the daemon's config lists as safe to forward unchecked.
#[derive(Debug, Clone, Default)]
pub struct Methods {
    forwarded: BTreeSet<String>,
}

impl Methods {
    /// The table plus `forward` (`/package.Service/Method` each). A listing
    /// that is not such a name, or that names a method criguard checks or
    /// refuses, is an error: listing must never turn a check off. Listing a
    /// method that criguard forwards anyway is accepted, so a config
    /// written for an older criguard keeps working.
    pub fn new<I, S>(forward: I) -> Result<Methods, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut forwarded = BTreeSet::new();
        for listed in forward {
            let listed = listed.as_ref();
            let bad = |why: &str| Error::ForwardMethod {
                method: listed.to_owned(),
                why: why.to_owned(),
            };
            let (service, method) = listed
                .strip_prefix('/')
                .and_then(|rest| rest.split_once('/'))
                .ok_or_else(|| bad("not of the form /package.Service/Method"))?;
            if !is_identifier(service, true) || !is_identifier(method, false) {
                return Err(bad("not of the form /package.Service/Method"));
            }
            match known(service, method) {
                None => {
                    forwarded.insert(listed.to_owned());
                }
                Some(Class::Forward) => {}
                Some(Class::Pull | Class::Create) => {
                    return Err(bad(
                        "criguard checks this method; it cannot be listed past its check",
                    ));
                }
                Some(Class::Refuse(_)) => {
                    return Err(bad(
                        "criguard refuses this method; it cannot be listed past that",
                    ));
                }
            }
        }
        Ok(Methods { forwarded })
    }

    /// What to do with a call to `path` (the request's `:path`, query
    /// included).
    pub fn route(&self, path: &str) -> Route {
        let Some((service, method)) = split_path(path) else {
            return Route {
                method: path.to_owned(),
                handling: Handling::Refuse(format!(
                    "criguard: {:?} names no gRPC method (/package.Service/Method); not forwarded",
                    shown(path)
                )),
            };
        };
        let canonical = format!("/{service}/{method}");
        let handling = match known(service, method) {
            Some(Class::Pull) => Handling::Pull,
            Some(Class::Create) => Handling::Create,
            Some(Class::Forward) => Handling::Forward,
            Some(Class::Refuse(why)) => {
                Handling::Refuse(format!("criguard: {canonical} is refused: {why}"))
            }
            None if self.forwarded.contains(&canonical) => Handling::Forward,
            None => Handling::Refuse(format!(
                "criguard: {} is not a method criguard knows, so it is not forwarded; \
                 if it is safe to forward unchecked, list it in forward_methods in criguard's \
                 config.toml",
                shown(&canonical)
            )),
        };
        Route {
            method: canonical,
            handling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handling(path: &str) -> Handling {
        Methods::default().route(path).handling
    }

    #[test]
    fn paths_are_read_as_grpc_go_routes_them() {
        for (path, expected) in [
            (
                "/runtime.v1.ImageService/PullImage",
                Some(("runtime.v1.ImageService", "PullImage")),
            ),
            (
                "runtime.v1.ImageService/PullImage",
                Some(("runtime.v1.ImageService", "PullImage")),
            ),
            (
                "/runtime.v1.ImageService/PullImage?x=1/y",
                Some(("runtime.v1.ImageService", "PullImage")),
            ),
            (
                "/runtime.v1.ImageService/PullImage#f",
                Some(("runtime.v1.ImageService", "PullImage")),
            ),
            ("/a/b/c", Some(("a/b", "c"))),
            (
                "//runtime.v1.ImageService/PullImage",
                Some(("/runtime.v1.ImageService", "PullImage")),
            ),
            ("/runtime.v1.ImageService/", None),
            ("/runtime.v1.ImageService", None),
            ("runtime.v1.ImageService", None),
            ("//PullImage", None),
            ("/", None),
            ("", None),
            ("?/runtime.v1.ImageService/PullImage", None),
        ] {
            assert_eq!(split_path(path), expected, "{path:?}");
        }
    }

    #[test]
    fn checked_methods_are_checked_in_every_version_and_form() {
        for version in ["v1", "v1alpha2"] {
            for form in ["/{}", "{}", "/{}?x=1", "{}?", "/{}#x"] {
                let path = |m: &str| form.replace("{}", &format!("runtime.{version}.{m}"));
                let route = Methods::default().route(&path("ImageService/PullImage"));
                assert_eq!(route.handling, Handling::Pull, "{version} {form}");
                assert_eq!(
                    route.method,
                    format!("/runtime.{version}.ImageService/PullImage")
                );
                assert_eq!(
                    handling(&path("RuntimeService/CreateContainer")),
                    Handling::Create
                );
            }
        }
    }

    #[test]
    fn forwarded_methods_are_the_lifecycle_and_read_only_ones() {
        for path in [
            "/runtime.v1.RuntimeService/Version",
            "/runtime.v1.RuntimeService/RunPodSandbox",
            "/runtime.v1.RuntimeService/GetContainerEvents",
            "/runtime.v1.RuntimeService/CheckpointPod",
            "/runtime.v1.ImageService/StreamImages",
            "/runtime.v1.ImageService/RemoveImage",
            "/runtime.v1alpha2.RuntimeService/Status",
            "/runtime.v1alpha2.ImageService/ImageFsInfo",
        ] {
            assert_eq!(handling(path), Handling::Forward, "{path}");
        }
        // Every name is listed once per service.
        for table in [RUNTIME_SERVICE, IMAGE_SERVICE] {
            let names: BTreeSet<_> = table.iter().map(|k| k.name).collect();
            assert_eq!(names.len(), table.len());
        }
    }

    /// The upstream definition the table was written from (its revision is
    /// in `SOURCE.txt` next to it): a method added there must be
    /// classified here before this passes.
    #[test]
    fn the_table_has_every_method_of_the_upstream_definition() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/cri-api/api.proto"
        );
        let proto = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("the upstream CRI definition at {path}: {e}"));
        let mut upstream = BTreeSet::new();
        let mut current = None;
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                current = rest.split_whitespace().next();
            } else if line == "}" {
                current = None;
            } else if let (Some(service), Some(rest)) = (current, line.strip_prefix("rpc ")) {
                let name = rest.split('(').next().unwrap_or_default().trim();
                upstream.insert(format!("/runtime.v1.{service}/{name}"));
            }
        }
        let ours: BTreeSet<String> = [
            ("RuntimeService", RUNTIME_SERVICE),
            ("ImageService", IMAGE_SERVICE),
        ]
        .iter()
        .flat_map(|(service, table)| {
            table
                .iter()
                .map(move |k| format!("/runtime.v1.{service}/{}", k.name))
        })
        .collect();
        assert_eq!(ours, upstream);
    }

    #[test]
    fn unknown_methods_and_restores_are_refused() {
        for path in [
            "/runtime.v1.RuntimeService/RestorePod",
            "runtime.v1.RuntimeService/RestorePod?x",
            // Not a v1alpha2 method, whatever v1 says about it.
            "/runtime.v1alpha2.RuntimeService/RestorePod",
            "/runtime.v1alpha2.RuntimeService/GetContainerEvents",
            "/runtime.v1.ImageService/SomeFutureMethod",
            "/runtime.v1.imageservice/pullimage",
            "/runtime.v1.ImageService/Pull%49mage",
            "/runtime.v1.ImageService//PullImage",
            "//runtime.v1.ImageService/PullImage",
            "/containerd.services.images.v1.Images/Create",
            "/grpc.health.v1.Health/Check",
            "/runtime.v1.ImageService/",
            "/",
        ] {
            let Handling::Refuse(message) = handling(path) else {
                panic!("{path} is not refused");
            };
            assert!(message.starts_with("criguard: "), "{message}");
        }
        let Handling::Refuse(message) = handling("/runtime.v1.RuntimeService/RestorePod") else {
            panic!("RestorePod is not refused");
        };
        assert!(message.contains("checkpoint"), "{message}");
        let Handling::Refuse(message) = handling("/x.Y/Z") else {
            panic!("/x.Y/Z is not refused");
        };
        assert!(message.contains("/x.Y/Z") && message.contains("forward_methods"));
        let long = format!("/x.Y/{}", "Z".repeat(60_000));
        let Handling::Refuse(message) = handling(&long) else {
            panic!("a long path is not refused");
        };
        assert!(message.len() < 1024, "{}", message.len());
    }

    #[test]
    fn listed_methods_are_forwarded_and_checks_cannot_be_listed_away() {
        let methods = Methods::new([
            "/runtime.v1.ImageService/SomeFutureMethod",
            // Forwarded anyway: accepted, changes nothing.
            "/runtime.v1.RuntimeService/Version",
        ])
        .expect("the listing is valid");
        for path in [
            "/runtime.v1.ImageService/SomeFutureMethod",
            "runtime.v1.ImageService/SomeFutureMethod?q",
        ] {
            let route = methods.route(path);
            assert_eq!(route.handling, Handling::Forward, "{path}");
            assert_eq!(route.method, "/runtime.v1.ImageService/SomeFutureMethod");
        }
        assert!(matches!(
            methods
                .route("/runtime.v1alpha2.ImageService/SomeFutureMethod")
                .handling,
            Handling::Refuse(_)
        ));
        for bad in [
            "/runtime.v1.ImageService/PullImage",
            "/runtime.v1alpha2.ImageService/PullImage",
            "/runtime.v1alpha2.RuntimeService/CreateContainer",
            "/runtime.v1.RuntimeService/RestorePod",
            "runtime.v1.ImageService/Future",
            "/runtime.v1.ImageService/Future?x=1",
            "/runtime.v1.ImageService/",
            "/runtime.v1.ImageService",
            "/a/b/c",
            "/a..b/C",
            "/1a.B/C",
            "",
        ] {
            assert!(Methods::new([bad]).is_err(), "{bad:?}");
        }
    }
}
