//! The caller's deadline (`grpc-timeout`), which a check must not outlive.
//!
//! The kubelet gives most CRI calls a deadline (`--runtime-request-timeout`,
//! 2 minutes by default). A check that takes longer (a registry that
//! stalls) would be answered by the kubelet's own client-side time-out with
//! no reason; criguard answers first, with its own. The check itself goes
//! on as a task of its own, so its result lands in the caches and the
//! kubelet's retry finds it.

use std::future::Future;
use std::time::Duration;

use http::HeaderMap;
use tonic::Status;

/// `grpc-timeout`: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`),
/// as the gRPC over HTTP/2 protocol defines it. Anything else is no
/// deadline, as gRPC servers treat it.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// `duration` as a `grpc-timeout` value, in milliseconds (at most 8
/// digits: about 27 hours).
pub(crate) fn grpc_timeout_value(duration: Duration) -> String {
    let millis = duration.as_millis().clamp(1, 99_999_999);
    format!("{millis}m")
}

/// When criguard answers a caller whose deadline is `deadline` from the
/// call's start: a little before it, so that the answer arrives in time.
fn answer_by(deadline: Duration) -> Duration {
    deadline.saturating_sub((deadline / 10).min(Duration::from_secs(1)))
}

/// Runs `check` as its own task and waits for it until just before
/// `deadline` (if any) has passed since `started`. A check still running
/// then is left to finish (its result is cached for the retry) and the
/// caller is told so. Dropping the returned future (the caller went away)
/// does not stop the check either.
pub(crate) async fn within_deadline<T: Send + 'static>(
    deadline: Option<Duration>,
    started: tokio::time::Instant,
    what: &str,
    check: impl Future<Output = Result<T, Status>> + Send + 'static,
) -> Result<T, Status> {
    let task = tokio::spawn(check);
    let joined = match deadline {
        None => task.await,
        Some(deadline) => {
            match tokio::time::timeout_at(started + answer_by(deadline), task).await {
                Ok(joined) => joined,
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "criguard: the signature check of this {what} did not finish within the \
                     caller's deadline of {deadline:?}; it goes on, and a retry will find \
                     its result"
                    )));
                }
            }
        }
    };
    joined.unwrap_or_else(|e| {
        Err(Status::internal(format!(
            "criguard: the check of this {what} failed: {e}"
        )))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn timeout(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_defines_them() {
        assert_eq!(timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout("120S"), Some(Duration::from_secs(120)));
        assert_eq!(timeout("1M"), Some(Duration::from_secs(60)));
        assert_eq!(
            timeout("99999999m"),
            Some(Duration::from_millis(99_999_999))
        );
        assert_eq!(timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S", "１S"] {
            let mut headers = HeaderMap::new();
            if let Ok(value) = bad.parse() {
                headers.insert("grpc-timeout", value);
            }
            assert_eq!(grpc_timeout(&headers), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
        assert_eq!(grpc_timeout_value(Duration::from_secs(2)), "2000m");
        assert_eq!(grpc_timeout_value(Duration::ZERO), "1m");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_is_answered_before_the_deadline_and_still_finishes() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let started = tokio::time::Instant::now();
        let answer = within_deadline(Some(Duration::from_secs(2)), started, "pull", async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = done.send(());
            Ok::<_, Status>(())
        })
        .await;
        let status = answer.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_secs(2));
        finished.await.expect("the check went on after the answer");
        let quick = within_deadline(None, started, "pull", async { Ok::<_, Status>(7) }).await;
        assert_eq!(quick.unwrap(), 7);
    }
}
