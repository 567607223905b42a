//! The kubelet-facing socket.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::Error;

/// `unix:///path` or a plain absolute path, as the kubelet's
/// `--container-runtime-endpoint` and crictl accept them.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, Error> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.is_empty() || !path.starts_with('/') || path.contains('\0') {
        return Err(Error::Endpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(PathBuf::from(path))
}

/// Listens on `path` with mode `mode` (0660: the kubelet's group may
/// connect, nobody else).
///
/// A socket left behind by a criguard that died is replaced. A socket
/// someone still answers on is not: two daemons on one socket would
/// split the kubelet's calls between them. Nor is anything that is not a
/// socket, which is a configuration mistake to report, not to delete.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, Error> {
    let io = |source| Error::Socket {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::SocketInUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        Ok(_) => {
            return Err(Error::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").unwrap(),
            Path::new("/run/containerd/containerd.sock")
        );
        assert_eq!(
            socket_path("/run/x.sock").unwrap(),
            Path::new("/run/x.sock")
        );
        for bad in [
            "",
            "unix://",
            "tcp://127.0.0.1:1",
            "relative.sock",
            "unix://rel",
        ] {
            assert!(socket_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn stale_sockets_are_replaced_live_ones_and_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/criguard.sock");
        let live = bind(&path, 0o660).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(matches!(bind(&path, 0o660), Err(Error::SocketInUse { .. })));
        drop(live);
        bind(&path, 0o660).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(bind(&file, 0o660), Err(Error::NotASocket { .. })));
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
