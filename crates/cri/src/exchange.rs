//! One call on the runtime's HTTP/2 connection, made on h2 directly.
//!
//! hyper's HTTP/2 client hands every request to its connection task
//! through a channel and spawns a task per call that waits for the
//! answer (and another that sends the body, when it is not there yet).
//! On the hop that every kubelet call takes, those hand-offs were a
//! measurable part of what criguard added (docs/benchmarks.md). Here the
//! calling task opens the stream, sends the body and waits for the answer
//! itself; the connection's own task still does the reading and writing.

use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes};
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame};

/// Sends `request` on `sender` and waits for the answer's headers. The
/// request body is sent from this task; if the answer comes before all of
/// it was sent (a stream the runtime answers early), the rest is sent by a
/// task of its own. `Err` says why the call did not get an answer.
pub(crate) async fn exchange<B>(
    sender: &mut SendRequest<Bytes>,
    request: Request<B>,
) -> Result<Response<Answer>, String>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Display + Send,
{
    let (head, body) = request.into_parts();
    let end_of_stream = body.is_end_stream();
    let (response, stream) = sender
        .send_request(Request::from_parts(head, ()), end_of_stream)
        .map_err(|e| e.to_string())?;
    let mut response = std::pin::pin!(response);
    let response = if end_of_stream {
        response.await
    } else {
        let mut sending = Box::pin(send_body(body, stream));
        let answered = std::future::poll_fn(|cx| {
            if let Poll::Ready(sent) = sending.as_mut().poll(cx) {
                return Poll::Ready(Sent::All(sent));
            }
            response.as_mut().poll(cx).map(Sent::Answered)
        })
        .await;
        match answered {
            // A runtime that answered in full may have closed the stream
            // before the body's end was sent (grpc-go resets a stream it
            // has answered): the answer counts, not the failed send.
            Sent::All(Err(e)) => match response.await {
                Ok(answer) => Ok(answer),
                Err(_) => return Err(e),
            },
            Sent::All(Ok(())) => response.await,
            Sent::Answered(answer) => {
                tokio::spawn(async move {
                    if let Err(e) = sending.await {
                        tracing::debug!(error = %e, "sending a request body to the runtime");
                    }
                });
                answer
            }
        }
    };
    let response = response.map_err(|e| e.to_string())?;
    Ok(response.map(|stream| Answer {
        stream,
        data_done: false,
    }))
}

enum Sent<A> {
    All(Result<(), String>),
    Answered(A),
}

/// Sends `body` on `stream` as the runtime's flow control allows, its
/// trailers too; a body that fails resets the stream.
async fn send_body<B>(body: B, mut stream: SendStream<Bytes>) -> Result<(), String>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Display + Send,
{
    let mut body = body;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let frame = match frame {
            None => {
                return stream
                    .send_data(Bytes::new(), true)
                    .map_err(|e| e.to_string());
            }
            Some(Err(e)) => {
                stream.send_reset(h2::Reason::CANCEL);
                return Err(format!("reading the request body: {e}"));
            }
            Some(Ok(frame)) => frame,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return stream.send_trailers(trailers).map_err(|e| e.to_string());
                }
                continue;
            }
        };
        let last = body.is_end_stream();
        if data.is_empty() {
            if last {
                return stream.send_data(data, true).map_err(|e| e.to_string());
            }
            continue;
        }
        while data.has_remaining() {
            stream.reserve_capacity(data.len());
            let room = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(room)) => room,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the runtime closed the stream".to_owned()),
            };
            if room == 0 {
                continue;
            }
            let chunk = data.split_to(room.min(data.len()));
            stream
                .send_data(chunk, last && data.is_empty())
                .map_err(|e| e.to_string())?;
        }
        if last {
            return Ok(());
        }
    }
}

/// The runtime's answer as a body: its data frames (each one's flow
/// control credit given back once it is taken, so the runtime sends more
/// only as the kubelet reads) and then its trailers.
pub(crate) struct Answer {
    stream: RecvStream,
    data_done: bool,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Fails only for a stream already gone, which the next
                    // poll reports.
                    let _ = self.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.stream.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use http_body_util::BodyExt as _;
    use tokio::net::UnixStream;
    use tokio::sync::mpsc;

    /// A request body whose frames the test hands over one by one.
    struct Frames(mpsc::Receiver<Frame<Bytes>>);

    impl HttpBody for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|frame| frame.map(Ok))
        }
    }

    /// A client on one end of a socket pair, h2's server on the other with
    /// h2's default (small) windows, so that a large body needs several
    /// window updates.
    async fn pair() -> (
        SendRequest<Bytes>,
        h2::server::Connection<UnixStream, Bytes>,
    ) {
        let (client, server) = UnixStream::pair().unwrap();
        let (server, client) = tokio::join!(h2::server::handshake(server), async {
            let (sender, driver) = h2::client::handshake(client).await.unwrap();
            tokio::spawn(driver);
            sender
        });
        (client, server.unwrap())
    }

    fn post() -> http::request::Builder {
        Request::post("http://localhost/runtime.v1.ImageService/ImageStatus")
    }

    /// Reads a whole request body on the server side, giving back credit.
    async fn read_all(mut body: RecvStream) -> (Vec<u8>, Option<http::HeaderMap>) {
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            data.extend_from_slice(&chunk);
        }
        (data, body.trailers().await.unwrap())
    }

    #[tokio::test]
    async fn a_body_larger_than_the_window_and_its_trailers_go_through_both_ways() {
        let (mut sender, mut server) = pair().await;
        let big = Bytes::from(vec![7u8; 300_000]);
        let (tx, rx) = mpsc::channel(4);
        tx.send(Frame::data(big.clone())).await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-end", "yes".parse().unwrap());
        tx.send(Frame::trailers(trailers)).await.unwrap();
        drop(tx);
        let serving = tokio::spawn(async move {
            let (request, mut respond) = server.accept().await.unwrap().unwrap();
            // The connection is driven while the stream is served.
            let driving = tokio::spawn(async move { while server.accept().await.is_some() {} });
            let (data, trailers) = read_all(request.into_body()).await;
            let mut stream = respond.send_response(Response::new(()), false).unwrap();
            stream.send_data(Bytes::from(data.clone()), false).unwrap();
            let mut status = http::HeaderMap::new();
            status.insert("grpc-status", "0".parse().unwrap());
            stream.send_trailers(status).unwrap();
            (data.len(), trailers, driving)
        });
        let request = post().body(Frames(rx)).unwrap();
        let response = exchange(&mut sender, request).await.unwrap();
        let collected = response.into_body().collect().await.unwrap();
        let answer_trailers = collected.trailers().cloned().unwrap();
        assert_eq!(collected.to_bytes(), big);
        assert_eq!(answer_trailers["grpc-status"], "0");
        drop(sender);
        let (received, trailers, driving) = serving.await.unwrap();
        driving.abort();
        assert_eq!(received, big.len());
        assert_eq!(trailers.unwrap()["x-end"], "yes");
    }

    #[tokio::test]
    async fn the_rest_of_a_body_is_sent_after_an_early_answer() {
        let (mut sender, mut server) = pair().await;
        let (tx, rx) = mpsc::channel(4);
        tx.send(Frame::data(Bytes::from_static(b"first")))
            .await
            .unwrap();
        let serving = tokio::spawn(async move {
            let (request, mut respond) = server.accept().await.unwrap().unwrap();
            // Answer before the body has ended, then read it.
            respond.send_response(Response::new(()), false).unwrap();
            let driving = tokio::spawn(async move { while server.accept().await.is_some() {} });
            let (data, _) = read_all(request.into_body()).await;
            driving.abort();
            data
        });
        let request = post().body(Frames(rx)).unwrap();
        let response = exchange(&mut sender, request).await.unwrap();
        assert_eq!(response.status(), 200);
        tx.send(Frame::data(Bytes::from_static(b" second")))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(serving.await.unwrap(), b"first second");
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_an_answer() {
        let (mut sender, server) = pair().await;
        drop(server);
        let request = post().body(http_body_util::Empty::<Bytes>::new()).unwrap();
        let failed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            exchange(&mut sender, request),
        )
        .await
        .expect("an answer or an error, not a hang");
        assert!(failed.is_err());
    }
}
