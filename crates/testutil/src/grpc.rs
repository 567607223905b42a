//! gRPC below the generated code: the 5-byte message framing and a raw unary
//! client over a unix socket. The proxy must forward bytes it does not
//! understand (unknown fields, unknown methods) unchanged, and prost would
//! drop exactly those on a decode and re-encode, so tests build and read
//! frames by hand.

use std::fmt::Write as _;
use std::path::Path;
use std::thread;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

use crate::process::DEFAULT_TIMEOUT;

/// `grpc-status` of a successful call.
pub const GRPC_OK: i32 = 0;

/// One uncompressed gRPC message frame: flag 0, big-endian length, message.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("a gRPC message is at most 4 GiB");
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The messages in a gRPC body made of uncompressed frames. Errors say
/// where the framing breaks (compressed flag, truncated frame).
pub fn try_unframe(mut body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            return Err(format!(
                "{} trailing bytes, short of a frame header",
                body.len()
            ));
        }
        if body[0] != 0 {
            return Err(format!("frame flag {} (compressed?)", body[0]));
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let rest = &body[5..];
        if rest.len() < len {
            return Err(format!("frame of {len} bytes but only {} left", rest.len()));
        }
        messages.push(rest[..len].to_vec());
        body = &rest[len..];
    }
    Ok(messages)
}

/// [`try_unframe`], panicking when the body is not well framed.
pub fn unframe(body: &[u8]) -> Vec<Vec<u8>> {
    try_unframe(body).unwrap_or_else(|e| panic!("malformed gRPC body ({e}): {body:02x?}"))
}

/// The protobuf encoding of `message` (no gRPC frame).
pub fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Decodes a protobuf message, panicking with the type and bytes when it
/// does not decode.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> M {
    M::decode(bytes).unwrap_or_else(|e| {
        panic!(
            "bytes are not a {}: {e}: {bytes:02x?}",
            std::any::type_name::<M>()
        )
    })
}

/// What came back from a raw gRPC call.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status; gRPC answers 200 even for errors.
    pub http_status: u16,
    pub headers: HeaderMap,
    /// Empty for a trailers-only response (then the status is in `headers`).
    pub trailers: HeaderMap,
    /// From the trailers, or from the headers of a trailers-only response.
    pub grpc_status: Option<i32>,
    /// `grpc-message`, percent-decoded.
    pub grpc_message: Option<String>,
    /// The response body exactly as received, frame headers included.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The response messages, without frame headers; panics when the body
    /// is not well framed.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        unframe(&self.body)
    }

    /// The single response message of a successful unary call; panics
    /// with the status otherwise.
    pub fn message(&self) -> Vec<u8> {
        assert_eq!(
            self.grpc_status,
            Some(GRPC_OK),
            "the call failed: grpc-status {:?}, grpc-message {:?}",
            self.grpc_status,
            self.grpc_message
        );
        let mut messages = self.messages();
        assert_eq!(messages.len(), 1, "a unary call answers with one message");
        messages.remove(0)
    }
}

/// Sends `message` (protobuf bytes, framed here) as a unary gRPC call to
/// `path` (`/package.Service/Method`, any path, known or not) on the unix
/// socket `socket`, with hyper's HTTP/2 client and nothing decoded on the way.
pub async fn grpc_call_raw(socket: &Path, path: &str, message: &[u8]) -> RawResponse {
    grpc_call_raw_body(socket, path, &[], frame(message)).await
}

/// Sends `body` exactly as given (so tests can send broken or compressed
/// frames) with `extra_headers` after the standard gRPC ones. Panics when
/// the socket refuses the connection or the call takes longer than
/// [`DEFAULT_TIMEOUT`].
pub async fn grpc_call_raw_body(
    socket: &Path,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Vec<u8>,
) -> RawResponse {
    let call = raw_call(socket, path, extra_headers, body);
    match tokio::time::timeout(DEFAULT_TIMEOUT, call).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => panic!("gRPC call {path} on {}: {e}", socket.display()),
        Err(_) => panic!(
            "gRPC call {path} on {} took longer than {DEFAULT_TIMEOUT:?}",
            socket.display()
        ),
    }
}

/// [`grpc_call_raw`] for synchronous tests: runs the call on a thread with
/// its own tokio runtime, so it also works inside an async test.
pub fn grpc_call_raw_blocking(socket: &Path, path: &str, message: &[u8]) -> RawResponse {
    grpc_call_raw_body_blocking(socket, path, &[], frame(message))
}

/// [`grpc_call_raw_body`] on its own thread and runtime.
pub fn grpc_call_raw_body_blocking(
    socket: &Path,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Vec<u8>,
) -> RawResponse {
    let socket = socket.to_path_buf();
    let path = path.to_string();
    let headers: Vec<(String, String)> = extra_headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    thread::spawn(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime for a raw gRPC call")
            .block_on(grpc_call_raw_body(&socket, &path, &headers, body))
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

async fn raw_call(
    socket: &Path,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<RawResponse, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    // Drives the connection; it ends when `sender` is dropped.
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let (parts, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .map_err(|e| format!("reading the response body: {e}"))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes().to_vec();
    let status_from = if trailers.contains_key("grpc-status") {
        &trailers
    } else {
        &parts.headers
    };
    let grpc_status = status_from
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let grpc_message = status_from
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()));
    Ok(RawResponse {
        http_status: parts.status.as_u16(),
        headers: parts.headers,
        trailers,
        grpc_status,
        grpc_message,
        body,
    })
}

/// How a stream sent by [`h2_call_raw_path`] ended. Response headers are
/// not decoded (that would take HPACK's Huffman code and tables): what a
/// test needs is whether the server took the request at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawStreamEnd {
    /// The server answered; `data` is the response body as received.
    Answered { data: Vec<u8> },
    /// RST_STREAM with this error code (1: PROTOCOL_ERROR, a request the
    /// server's HTTP/2 layer refused as malformed).
    Reset(u32),
    /// GOAWAY with this error code: the connection was refused.
    GoAway(u32),
}

/// Sends `message` as a unary gRPC call whose `:path` is `path` byte for
/// byte, written frame by frame: hyper's client only sends paths that
/// parse as a URL, and grpc-go's servers (containerd 1.6, 1.7) route paths
/// no URL has, such as `runtime.v1.ImageService/PullImage` without its
/// leading slash. Panics when the socket refuses the connection or the
/// call takes longer than [`DEFAULT_TIMEOUT`].
pub async fn h2_call_raw_path(socket: &Path, path: &str, message: &[u8]) -> RawStreamEnd {
    h2_call_raw_headers(socket, &grpc_headers(path, Some("localhost")), message).await
}

/// The header block of a unary gRPC call to `path`, pseudo-headers first;
/// `authority` `None` leaves `:authority` out.
pub fn grpc_headers<'a>(path: &'a str, authority: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![(":method", "POST"), (":scheme", "http"), (":path", path)];
    headers.extend(authority.map(|a| (":authority", a)));
    headers.extend([("content-type", "application/grpc"), ("te", "trailers")]);
    headers
}

/// Sends `message` as a unary call with exactly `headers` (names and
/// values byte for byte, in order, repeats kept), so tests can send what
/// other gRPC implementations send and hyper's client cannot: grpc-java's
/// `:authority` over a unix socket is the socket's path, gRPC's C core
/// sends it percent-encoded. Panics as [`h2_call_raw_path`] does.
pub async fn h2_call_raw_headers(
    socket: &Path,
    headers: &[(&str, &str)],
    message: &[u8],
) -> RawStreamEnd {
    match tokio::time::timeout(DEFAULT_TIMEOUT, h2_call(socket, headers, message)).await {
        Ok(Ok(end)) => end,
        Ok(Err(e)) => panic!("HTTP/2 call {headers:?} on {}: {e}", socket.display()),
        Err(_) => panic!(
            "HTTP/2 call {headers:?} on {} took longer than {DEFAULT_TIMEOUT:?}",
            socket.display()
        ),
    }
}

/// [`h2_call_raw_path`] on its own thread and runtime.
pub fn h2_call_raw_path_blocking(socket: &Path, path: &str, message: &[u8]) -> RawStreamEnd {
    let (socket, path, message) = (socket.to_path_buf(), path.to_owned(), message.to_vec());
    thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime for a raw HTTP/2 call")
            .block_on(h2_call_raw_path(&socket, &path, &message))
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

const H2_DATA: u8 = 0x0;
const H2_HEADERS: u8 = 0x1;
const H2_RST_STREAM: u8 = 0x3;
const H2_SETTINGS: u8 = 0x4;
const H2_PING: u8 = 0x6;
const H2_GOAWAY: u8 = 0x7;
const H2_END_STREAM: u8 = 0x1;
const H2_ACK: u8 = 0x1;
const H2_END_HEADERS: u8 = 0x4;
const H2_PADDED: u8 = 0x8;

fn h2_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a test frame is small");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK string literal, not Huffman-coded: a 7-bit-prefix length.
fn hpack_string(out: &mut Vec<u8>, text: &str) {
    let mut len = text.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(text.as_bytes());
}

async fn h2_call(
    socket: &Path,
    headers: &[(&str, &str)],
    message: &[u8],
) -> Result<RawStreamEnd, String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2_frame(&mut out, H2_SETTINGS, 0, 0, &[]);
    let mut block = Vec::new();
    for (name, value) in headers {
        // Literal header field without indexing, new name.
        block.push(0);
        hpack_string(&mut block, name);
        hpack_string(&mut block, value);
    }
    h2_frame(&mut out, H2_HEADERS, H2_END_HEADERS, 1, &block);
    h2_frame(&mut out, H2_DATA, H2_END_STREAM, 1, &frame(message));
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("writing: {e}"))?;
    let mut data = Vec::new();
    loop {
        let mut header = [0u8; 9];
        stream
            .read_exact(&mut header)
            .await
            .map_err(|e| format!("reading a frame header: {e}"))?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, flags) = (header[3], header[4]);
        let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| format!("reading a frame: {e}"))?;
        let code = |p: &[u8]| {
            p.get(..4)
                .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        };
        let mut reply = Vec::new();
        match kind {
            H2_SETTINGS if flags & H2_ACK == 0 => h2_frame(&mut reply, H2_SETTINGS, H2_ACK, 0, &[]),
            H2_PING if flags & H2_ACK == 0 => h2_frame(&mut reply, H2_PING, H2_ACK, 0, &payload),
            H2_GOAWAY => return Ok(RawStreamEnd::GoAway(code(payload.get(4..).unwrap_or(&[])))),
            H2_RST_STREAM if id == 1 => return Ok(RawStreamEnd::Reset(code(&payload))),
            H2_DATA if id == 1 => {
                let body = if flags & H2_PADDED != 0 {
                    let pad = usize::from(payload.first().copied().unwrap_or(0));
                    payload
                        .get(1..payload.len().saturating_sub(pad))
                        .unwrap_or(&[])
                } else {
                    &payload[..]
                };
                data.extend_from_slice(body);
                if flags & H2_END_STREAM != 0 {
                    return Ok(RawStreamEnd::Answered { data });
                }
            }
            H2_HEADERS if id == 1 && flags & H2_END_STREAM != 0 => {
                return Ok(RawStreamEnd::Answered { data });
            }
            _ => {}
        }
        if !reply.is_empty() {
            stream
                .write_all(&reply)
                .await
                .map_err(|e| format!("writing: {e}"))?;
        }
    }
}

/// `grpc-message` encoding: printable ASCII but `%` as is, the rest as
/// `%XX` of its UTF-8 bytes.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
