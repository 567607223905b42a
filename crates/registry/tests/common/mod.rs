//! A tiny HTTP/1.1 "registry" on 127.0.0.1 serving canned answers, for the
//! failures a real registry will not produce on demand. One request per
//! connection (`Connection: close`); a TLS ClientHello gets the answer Go's
//! net/http gives on a plain-HTTP port, so the client's HTTPS-first probe
//! for insecure registries fails fast and falls back to HTTP, as it would
//! against docker-registry.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criguard_reference::Reference;
use criguard_registries::RegistriesConf;
use criguard_registry::{Credentials, Platform, Registry, RegistryConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Sends `Content-Length: declared`, then `prefix`, then nothing more
    /// while keeping the connection open.
    StallAfter {
        declared: u64,
        prefix: Vec<u8>,
    },
    /// Chunked transfer encoding, no Content-Length.
    Chunked(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body.into()),
        }
    }

    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, body).header("Content-Type", content_type)
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    pub fn not_found(code: &str) -> Response {
        Response::new(
            404,
            format!(r#"{{"errors":[{{"code":"{code}","message":"not found here"}}]}}"#),
        )
        .header("Content-Type", "application/json")
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

pub struct FakeRegistry {
    port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRegistry {
    /// Serves `handler`'s answers; `/v2/` answers 200 unless the handler
    /// says otherwise.
    pub async fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let _ = serve(stream, handler, log).await;
                });
            }
        });
        FakeRegistry {
            port,
            requests,
            task,
        }
    }

    /// Accepts connections and never answers.
    pub async fn stalled() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        FakeRegistry {
            port,
            requests: Arc::default(),
            task,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    handler: Arc<Handler>,
    log: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] == 0x16 {
            stream
                .write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                .await?;
            return Ok(());
        }
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let request = Request {
        method,
        path,
        headers,
    };
    log.lock().unwrap().push(request.clone());
    let response = if request.path == "/v2/" {
        let r = handler(&request);
        if r.status == 404 {
            Response::ok("application/json", "{}")
        } else {
            r
        }
    } else {
        handler(&request)
    };

    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", response.status);
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    match response.body {
        Body::Bytes(body) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            stream.write_all(out.as_bytes()).await?;
            if request.method != "HEAD" {
                stream.write_all(&body).await?;
            }
        }
        Body::StallAfter { declared, prefix } => {
            out.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
            stream.write_all(out.as_bytes()).await?;
            stream.write_all(&prefix).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Body::Chunked(body) => {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            stream.write_all(out.as_bytes()).await?;
            for piece in body.chunks(64 << 10) {
                stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                stream.write_all(piece).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
    stream.flush().await?;
    Ok(())
}

/// registries.conf marking each host insecure (the fakes speak plain HTTP).
pub fn insecure_conf(hosts: &[&str]) -> RegistriesConf {
    let mut text = String::new();
    for host in hosts {
        text.push_str(&format!(
            "[[registry]]\nlocation = \"{host}\"\ninsecure = true\n\n"
        ));
    }
    conf(&text)
}

pub fn conf(text: &str) -> RegistriesConf {
    RegistriesConf::from_files([("test.conf".to_owned(), text.as_bytes().to_vec())]).unwrap()
}

pub fn registry_for(
    hosts: &[&str],
    credentials: Option<Credentials>,
    timeout: Duration,
) -> Registry {
    Registry::new(RegistryConfig {
        registries_conf: Some(insecure_conf(hosts)),
        credentials,
        auth_file: None,
        timeout,
    })
    .unwrap()
}

/// A client sending `prefix` to `primary`, with `mirror` as its one mirror;
/// both insecure.
pub fn mirrored_registry(prefix: &str, primary: &str, mirror: &str, timeout: Duration) -> Registry {
    let text = format!(
        "[[registry]]\nprefix = \"{prefix}\"\nlocation = \"{primary}\"\ninsecure = true\n\n\
         [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    );
    Registry::new(RegistryConfig {
        registries_conf: Some(conf(&text)),
        timeout,
        ..RegistryConfig::default()
    })
    .unwrap()
}

/// `127.0.0.1:PORT` where nothing listens.
pub fn dead_host() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub fn reference(text: &str) -> Reference {
    Reference::parse_normalized(text).unwrap()
}

pub fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A small OCI image manifest; `seed` makes it unique.
pub fn image_manifest(seed: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}},"layers":[],"annotations":{{"seed":"{seed}"}}}}"#
    )
    .into_bytes()
}

pub fn digest_of(bytes: &[u8]) -> String {
    criguard_registry::digest::sha256(bytes).to_string()
}
