//! `GET /metrics` over plain HTTP/1.1, for `criguard serve` and
//! `criguard agent` alike: each command keeps its own metrics and hands
//! this endpoint a function that renders them, so the endpoint exists once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Renders the OpenMetrics text exposition at the time of a scrape.
pub type Exposition = Arc<dyn Fn() -> String + Send + Sync>;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `address` now, so a taken port fails the start rather than a
/// later scrape, and serves `GET /metrics` with `render` from a
/// background task; any other path is 404.
pub async fn serve(address: &str, render: Exposition) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, most likely: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let render = Arc::clone(&render);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let render = Arc::clone(&render);
                    async move { Ok::<_, Infallible>(answer(request.uri().path(), &*render)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(path: &str, render: &(dyn Fn() -> String + Send + Sync)) -> http::Response<Full<Bytes>> {
    let response = if path == "/metrics" {
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(render())))
    } else {
        http::Response::builder()
            .status(http::StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"only /metrics is here\n")))
    };
    response.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_rendered_and_other_paths_are_not_found() {
        let render = || "x_total 1\n".to_owned();
        let found = answer("/metrics", &render);
        assert_eq!(found.status(), http::StatusCode::OK);
        assert_eq!(found.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
        let missing = answer("/", &render);
        assert_eq!(missing.status(), http::StatusCode::NOT_FOUND);
    }
}
