//! What stands between a request and its handler: counting, authentication, rate limits
//! and injected faults.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{FaultKind, FaultRule, SimConfig};
use crate::refusal::error;
use crate::state::{Inner, Simulator, now_ms};

/// `jobs/runs/get` from `/api/2.2/jobs/runs/get`.
fn endpoint_of(path: &str) -> String {
    path.split_once("/jobs/")
        .map(|(_, rest)| format!("jobs/{rest}"))
        .unwrap_or_default()
}

fn html(status: StatusCode, title: &str) -> Response {
    let page = format!(
        "<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr><center>gateway</center></body></html>"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The partition a request is about: from `run-now`'s job parameters, or from the run
/// a `run_id` names.
fn partition_of(
    config: &SimConfig,
    inner: &Inner,
    endpoint: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<String> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if endpoint == "jobs/run-now" {
        return json?
            .get("job_parameters")?
            .get(&config.partition_param)?
            .as_str()
            .map(str::to_owned);
    }
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("run_id="))
            .and_then(|v| v.parse::<i64>().ok())
    });
    let run_id = from_query.or_else(|| json?.get("run_id")?.as_i64())?;
    inner
        .find(config, run_id, now_ms())
        .ok()?
        .0
        .partition
        .clone()
}

fn pick_fault(
    config: &SimConfig,
    inner: &mut Inner,
    endpoint: &str,
    partition: Option<&str>,
) -> Option<FaultRule> {
    use rand::Rng;
    for (i, rule) in config.faults.iter().enumerate() {
        if rule.endpoint != "*" && rule.endpoint != endpoint {
            continue;
        }
        if rule
            .partition
            .as_deref()
            .is_some_and(|p| Some(p) != partition)
        {
            continue;
        }
        if rule.times.is_some_and(|t| inner.fault_hits[i] >= t) {
            continue;
        }
        if rule
            .probability
            .is_some_and(|p| !inner.rng.random_bool(p.clamp(0.0, 1.0)))
        {
            continue;
        }
        inner.fault_hits[i] += 1;
        *inner
            .stats
            .faults
            .entry(format!("{:?}", rule.kind))
            .or_default() += 1;
        return Some(rule.clone());
    }
    None
}

pub async fn gate(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = endpoint_of(request.uri().path());
    let config = sim.config.clone();
    {
        let mut inner = sim.lock();
        Simulator::count_call(&mut inner, &endpoint);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty());
    match (token, &config.token) {
        (None, _) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Authorization header with a bearer token is required",
            );
        }
        (Some(given), Some(expected)) if given != expected => {
            return error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Invalid access token",
            );
        }
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 10 * 1024 * 1024).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            "Request body too large",
        );
    };
    let fault = {
        let mut inner = sim.lock();
        if let Err(wait) = inner.buckets.take(&endpoint) {
            *inner.stats.throttled.entry(endpoint.clone()).or_default() += 1;
            let refused = error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                format!("Too many requests to {endpoint}"),
            );
            return with_retry_after(refused, wait);
        }
        let partition = partition_of(&config, &inner, &endpoint, parts.uri.query(), &bytes);
        let fault = pick_fault(&config, &mut inner, &endpoint, partition.as_deref());
        if fault.as_ref().is_some_and(|f| {
            matches!(
                f.kind,
                FaultKind::Throttle | FaultKind::ThrottleNoRetryAfter
            )
        }) {
            *inner.stats.throttled.entry(endpoint.clone()).or_default() += 1;
        }
        fault
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    match fault.kind {
        FaultKind::Throttle => with_retry_after(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Rate limit exceeded",
            ),
            fault.retry_after_s,
        ),
        FaultKind::ThrottleNoRetryAfter => error(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            "Rate limit exceeded",
        ),
        FaultKind::Unavailable => with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                "The service is temporarily unavailable",
            ),
            fault.retry_after_s,
        ),
        FaultKind::Internal => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error",
        ),
        FaultKind::Html => html(StatusCode::BAD_GATEWAY, "502 Bad Gateway"),
        FaultKind::Slow => {
            // Detached, like a real server: the request still acts after the client gave
            // up waiting.
            let delay = Duration::from_millis(fault.delay_ms);
            let handled = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                next.run(request).await
            });
            handled.await.unwrap_or_else(|_| {
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "handler failed",
                )
            })
        }
        FaultKind::LostResponse => {
            let _acted = next.run(request).await;
            html(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out")
        }
        FaultKind::Forbidden => error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "User does not have permission to view this run",
        ),
        FaultKind::LoginPage => html(StatusCode::OK, "Sign in to continue"),
        FaultKind::EndpointNotFound => error(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            "No API found for this path",
        ),
        FaultKind::BadRequest => error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "The request is not valid for this run",
        ),
    }
}
