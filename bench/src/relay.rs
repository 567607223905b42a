//! A raw byte relay between two unix sockets: no HTTP/2, no parsing, one
//! `copy_bidirectional` per connection on a single-threaded tokio runtime
//! of its own thread. Timed beside `criguard serve`, it is the floor of any
//! user-space hop on the machine: what an extra process between the
//! kubelet and the runtime costs before it reads a single frame (two more
//! socket round trips and a wake-up of the relay per direction).

use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

/// The running relay; dropping it stops its thread.
pub struct ByteRelay {
    socket: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ByteRelay {
    /// Listens on `socket` and relays every connection to `target`.
    pub fn start(socket: &Path, target: &Path) -> ByteRelay {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, mut shutdown_rx) = oneshot::channel::<()>();
        let (listen, target) = (socket.to_path_buf(), target.to_path_buf());
        let thread = thread::Builder::new()
            .name("byte-relay".to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .expect("the relay's runtime");
                rt.block_on(async move {
                    let listener = UnixListener::bind(&listen).expect("binding the relay");
                    ready_tx.send(()).expect("announcing the relay");
                    loop {
                        tokio::select! {
                            _ = &mut shutdown_rx => break,
                            accepted = listener.accept() => {
                                let Ok((mut inbound, _)) = accepted else { continue };
                                let target = target.clone();
                                tokio::spawn(async move {
                                    if let Ok(mut outbound) = UnixStream::connect(&target).await {
                                        let _ = tokio::io::copy_bidirectional(
                                            &mut inbound,
                                            &mut outbound,
                                        )
                                        .await;
                                    }
                                });
                            }
                        }
                    }
                });
            })
            .expect("spawning the relay");
        ready_rx.recv().expect("the relay started");
        ByteRelay {
            socket: socket.to_path_buf(),
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ByteRelay {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
