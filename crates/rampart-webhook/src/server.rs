//! The HTTPS server.
//!
//! # Endpoints
//!
//! On the TLS address (`--addr`): `POST /validate`, `POST /mutate`, and
//! `GET /healthz`, `GET /readyz` (so kubelet probes with `scheme: HTTPS`
//! work without exposing metrics). On the plain-HTTP metrics address
//! (`--metrics-addr`, default `127.0.0.1:9090`): `/healthz`, `/readyz`,
//! `/metrics`. Metrics stay off the webhook port so scraping needs no client
//! certificate and a scrape storm cannot compete with admission for TLS
//! connections; bind it to `0.0.0.0:9090` for Prometheus in a cluster.
//!
//! # Never the reason a cluster locks itself out
//!
//! - Requests in excluded namespaces (kube-system, kube-node-lease and
//!   Rampart's own, `--namespace`) are allowed before anything is parsed
//!   beyond the envelope.
//! - The deadline is the API server's `?timeout=` less a margin (a fifth, at
//!   most one second), capped by `--request-timeout`. A body that has not
//!   arrived by then gets 408 (no uid is known, so the API server's
//!   `failurePolicy` decides); evaluation past it is answered per
//!   `--on-timeout` (default allow, with a warning and an audit annotation).
//! - Until the policies are loaded, `/readyz` fails and reviews get 503.
//!
//! # Bad input
//!
//! Bodies over `--max-body-bytes` (3 MiB) get 413, before reading when
//! `Content-Length` says so; invalid UTF-8, JSON, nesting deeper than 128,
//! another `AdmissionReview` version or a missing `request`, `uid` or `object`
//! get 400 with the reason; a content type other than JSON gets 415.
//! Connections: a TLS handshake must finish within `--tls-handshake-timeout`,
//! HTTP/1 request headers within `--header-read-timeout` (which also closes
//! idle keep-alive connections after that long), and at most
//! `--max-connections` are open at once (more wait in the kernel's accept
//! queue). HTTP/2 connections get at most 256 concurrent streams and
//! keep-alive pings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

use crate::log::{DecisionLog, DecisionRecord, Timestamp};
use crate::state::{AppState, Lookups, OnTimeout, ServeOptions};
use rampart_admission::decision::Decision;
use rampart_admission::lookup::{StaticNamespaces, StaticPods};
use rampart_admission::metrics::{Endpoint, Metrics, Outcome};
use rampart_admission::policy::{Env, PolicySource, Verdict};
use rampart_admission::review::Operation;
use rampart_admission::review::{
    AdmissionRequest, AdmissionResponse, Status, parse_request, render_response,
};
use rampart_kube::{ClusterLookups, PolicyWatch, PolicyWatchOptions};

/// The API server's default webhook timeout, used when `?timeout=` is absent.
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server on a new Tokio runtime until SIGINT or SIGTERM.
pub fn run(opts: ServeOptions) -> Result<()> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("rampart-worker");
    if let Some(n) = opts.worker_threads {
        rt.worker_threads(n.max(1));
    }
    rt.build()
        .context("starting the async runtime")?
        .block_on(async {
            let sources: Vec<Arc<dyn PolicySource>> = if opts.policies.is_empty() {
                Vec::new()
            } else {
                vec![Arc::new(
                    rampart_admission::policy::user::UserPolicies::new(opts.policies.clone()),
                )]
            };
            serve(opts, sources).await
        })
}

/// Serves until SIGINT or SIGTERM. `sources` add rules beyond the
/// configuration file (user policies).
pub async fn serve(opts: ServeOptions, sources: Vec<Arc<dyn PolicySource>>) -> Result<()> {
    crate::tls::install_provider();
    let (_log_guard, decision_log) = crate::log::init(&opts.log_filter, opts.decision_log)?;
    let result = serve_inner(opts, sources, decision_log).await;
    if let Err(e) = &result {
        error!(error = %format!("{e:#}"), "rampart serve failed");
    }
    result
}

async fn serve_inner(
    opts: ServeOptions,
    mut sources: Vec<Arc<dyn PolicySource>>,
    log: DecisionLog,
) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let tls = crate::tls::server_config(&opts.tls)?;
    let mut policy_watch = None;
    let lookups = match &opts.cluster {
        Some(c) => {
            let client = rampart_kube::client(c.kubeconfig.as_deref())
                .await
                .context("connecting to the cluster (--cluster)")?;
            let watch = PolicyWatch::start(client.clone(), PolicyWatchOptions::default());
            sources.push(Arc::new(crate::cluster_policies::ClusterPolicies(
                watch.clone(),
            )));
            policy_watch = Some(watch);
            Lookups::Cluster(Arc::new(ClusterLookups::start(
                client,
                c.pods,
                c.debug_watch_lag,
            )))
        }
        None => Lookups::Files {
            namespaces: Arc::new(StaticNamespaces::default()),
            pods: opts.pods.as_ref().map(|_| Arc::new(StaticPods::default())),
        },
    };
    let state = Arc::new(AppState {
        policies: ArcSwapOption::empty(),
        lookups,
        sources,
        metrics,
        log,
        tls: ArcSwap::new(tls),
        opts: opts.clone(),
        tls_ready: AtomicBool::new(true),
        reload_lock: std::sync::Mutex::new(()),
    });

    let listener = TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("binding {}", opts.addr))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match opts.metrics_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding metrics address {a}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    info!(
        addr = %addr,
        metrics_addr = %metrics_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        "listening"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(l) = metrics_listener {
        let app = metrics_router(state.clone());
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(l, app).with_graceful_shutdown(shutdown).await {
                error!(error = %e, "metrics server failed");
            }
        }));
    }
    let semaphore = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    tasks.push(tokio::spawn(accept_loop(
        listener,
        state.clone(),
        semaphore.clone(),
        shutdown_rx.clone(),
    )));

    // Load policies and lookups after listening, so health checks answer
    // (not ready) while loading.
    // Files another process writes (the policy-sync sidecar's policies,
    // namespaces and pods) may not exist yet: wait for them, not ready.
    let start = Instant::now();
    loop {
        let missing: Vec<&PathBuf> = opts
            .namespaces
            .iter()
            .chain(opts.pods.iter())
            .chain(opts.policies.iter())
            .filter(|p| !p.exists())
            .collect();
        if missing.is_empty() {
            break;
        }
        if start.elapsed() >= opts.startup_wait {
            anyhow::bail!(
                "{} still missing after {:?}",
                missing
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                opts.startup_wait
            );
        }
        info!(missing = ?missing, "waiting for files");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let (Lookups::Cluster(lookups), Some(watch)) = (&state.lookups, &policy_watch) {
        info!("waiting for the cluster's Namespaces, Pods and policies to be listed");
        lookups.wait_until_ready().await;
        watch.wait_until_ready().await;
        tasks.push(tokio::spawn(crate::reload::follow_policy_watch(
            state.clone(),
            watch.clone(),
            shutdown_rx.clone(),
        )));
    }
    crate::reload::initial_load(&state)?;
    let (namespaces, pods) = state.lookups.counts();
    info!(
        rules = state.policies.load().as_ref().map_or(0, |p| p.len()),
        namespaces, pods, "ready"
    );
    tasks.push(tokio::spawn(crate::reload::watch(
        state.clone(),
        shutdown_rx.clone(),
    )));

    shutdown_signal().await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    // Let open connections finish their requests, up to five seconds.
    let max = opts.max_connections.max(1);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while semaphore.available_permits() < max {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        warn!("connections still open after 5 s; closing them");
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn webhook_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.ready() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = state.metrics.encode();
    // The dropped-line count lives in the log writer; append it by hand
    // before the OpenMetrics terminator.
    if let Some(stripped) = text.strip_suffix("# EOF\n") {
        text = format!(
            "{stripped}# HELP rampart_log_lines_dropped Log lines dropped because stderr fell behind.\n# TYPE rampart_log_lines_dropped gauge\nrampart_log_lines_dropped {}\n# EOF\n",
            state.log.dropped()
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn validate(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Endpoint::Validate, query, headers, body).await
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Endpoint::Mutate, query, headers, body).await
}

fn plain(code: StatusCode, message: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// The budget for one review: the API server's timeout less a margin, capped.
fn budget(query: Option<&str>, cap: Duration) -> Duration {
    let api = rampart_admission::review::timeout_from_query(query)
        .unwrap_or(DEFAULT_API_TIMEOUT)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    let margin = (api / 5).min(Duration::from_secs(1));
    (api - margin).min(cap)
}

async fn review(
    state: Arc<AppState>,
    endpoint: Endpoint,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let deadline = start + budget(query.as_deref(), state.opts.request_timeout);
    let max = state.opts.max_body_bytes;
    let invalid = |code: StatusCode, message: String| {
        debug!(endpoint = endpoint.as_str(), code = code.as_u16(), %message, "rejected request");
        state
            .metrics
            .observe_request(endpoint, Outcome::Invalid, start.elapsed());
        plain(code, message)
    };

    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return invalid(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {ct:?} is not application/json"),
            );
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {} bytes is over the limit of {max} bytes",
                declared.unwrap_or(0)
            ),
        );
    }
    let bytes =
        match tokio::time::timeout_at(deadline.into(), Limited::new(body, max).collect()).await {
            Err(_) => {
                return invalid(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received before the deadline".to_owned(),
                );
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return invalid(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is over the limit of {max} bytes"),
                );
            }
            Ok(Err(e)) => {
                return invalid(
                    StatusCode::BAD_REQUEST,
                    format!("reading request body: {e}"),
                );
            }
            Ok(Ok(c)) => c.to_bytes(),
        };
    let request = match parse_request(&bytes) {
        Ok(r) => r,
        Err(e) => return invalid(StatusCode::BAD_REQUEST, e.0),
    };
    if let Some(delay) = state.opts.debug_eval_delay {
        tokio::time::sleep(delay).await;
    }
    let Some(policies) = state.policies.load_full() else {
        return invalid(
            StatusCode::SERVICE_UNAVAILABLE,
            "policies are not loaded yet".to_owned(),
        );
    };
    if let (Lookups::Cluster(lookups), Some(cluster)) = (&state.lookups, &state.opts.cluster) {
        prefetch(lookups, &request, deadline, cluster.read_through_timeout).await;
    }
    let env = Env {
        namespaces: state.lookups.namespaces(),
        pods: state.lookups.pods(),
    };
    let verdict = if Instant::now() >= deadline {
        Ok(Verdict::TimedOut)
    } else {
        match endpoint {
            Endpoint::Validate => policies.validate(env, &request, deadline),
            Endpoint::Mutate => policies.mutate(env, &request, deadline),
        }
    };
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => return invalid(StatusCode::BAD_REQUEST, e.0),
    };
    answer(&state, endpoint, &request, verdict, start)
}

/// Reads the request's Namespace (and an exec or attach target Pod) from
/// the API server when the watches have not delivered it yet, so that rules
/// judge a just-created object by what it is, not as unknown.
async fn prefetch(
    lookups: &ClusterLookups,
    request: &AdmissionRequest<'_>,
    deadline: Instant,
    cap: Duration,
) {
    let creates_namespace = request.kind.group.is_empty() && request.kind.kind == "Namespace";
    let namespace = if creates_namespace {
        ""
    } else {
        request.namespace.as_ref()
    };
    let pod = (request.operation == Operation::Connect
        && request.resource.group.is_empty()
        && request.resource.resource == "pods"
        && matches!(request.sub_resource.as_ref(), "exec" | "attach")
        && !request.name.is_empty())
    .then_some(request.name.as_ref());
    let timeout = deadline.saturating_duration_since(Instant::now()).min(cap);
    lookups.prefetch(namespace, pod, timeout).await;
}

fn answer(
    state: &AppState,
    endpoint: Endpoint,
    request: &AdmissionRequest<'_>,
    verdict: Verdict,
    start: Instant,
) -> Response {
    let mut decision = Decision::default();
    let (outcome, status) = match verdict {
        Verdict::Excluded => (Outcome::Excluded, None),
        Verdict::Unmatched => (Outcome::Unmatched, None),
        Verdict::TimedOut => {
            let msg = "Rampart did not finish evaluating the request before its deadline";
            match state.opts.on_timeout {
                OnTimeout::Allow => {
                    decision
                        .warnings
                        .push(format!("{msg}; allowed (--on-timeout allow)"));
                    decision.annotate("timeout", "allowed unevaluated".to_owned());
                    (Outcome::Timeout, None)
                }
                OnTimeout::Deny => (
                    Outcome::Timeout,
                    Some(Status {
                        code: 504,
                        message: format!("{msg}; denied (--on-timeout deny)"),
                        reason: "Timeout",
                        status: "Failure",
                    }),
                ),
            }
        }
        Verdict::Evaluated(d) => {
            decision = d;
            let status = decision.status();
            let outcome = if status.is_some() {
                Outcome::Denied
            } else if endpoint == Endpoint::Mutate && !decision.patch.is_empty() {
                Outcome::Patched
            } else {
                Outcome::Allowed
            };
            (outcome, status)
        }
    };
    let allowed = status.is_none();
    let patch =
        (allowed && endpoint == Endpoint::Mutate && !decision.patch.is_empty()).then(|| {
            let json = serde_json::to_vec(&decision.patch).unwrap_or_default();
            base64::engine::general_purpose::STANDARD.encode(json)
        });
    let code = status.as_ref().map(|s| s.code);
    let reason = status.as_ref().map(|s| s.message.clone());
    let response = AdmissionResponse {
        uid: &request.uid,
        allowed,
        status,
        patch_type: patch.as_ref().map(|_| "JSONPatch"),
        patch,
        warnings: &decision.warnings,
        audit_annotations: &decision.audit_annotations,
    };
    let body = render_response(&response);
    let elapsed = start.elapsed();
    state.metrics.observe_request(endpoint, outcome, elapsed);
    if state.log.enabled() {
        state.log.write(&DecisionRecord {
            timestamp: Timestamp::now(),
            level: "INFO",
            target: "rampart::decision",
            message: "admission decision",
            endpoint: endpoint.as_str(),
            uid: &request.uid,
            user: &request.user_info.username,
            groups: &request.user_info.groups,
            operation: request.operation.as_str(),
            group: &request.kind.group,
            version: &request.kind.version,
            kind: &request.kind.kind,
            resource: &request.resource.resource,
            subresource: &request.sub_resource,
            namespace: &request.namespace,
            name: &request.name,
            dry_run: request.dry_run.unwrap_or(false),
            result: outcome.as_str(),
            allowed,
            code,
            rules: &decision.hits,
            mutated_by: &decision.mutated_by,
            patch_ops: if allowed { decision.patch.len() } else { 0 },
            warnings: decision.warnings.len(),
            reason: reason.as_deref(),
            latency_us: elapsed.as_micros() as u64,
        });
    }
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Accepts TCP connections, at most `semaphore`'s permits at once.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    semaphore: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = webhook_router(state.clone());
    loop {
        let permit = tokio::select! {
            p = semaphore.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = crate::state::stopped(&mut shutdown) => return,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::state::stopped(&mut shutdown) => return,
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connection(tcp, peer, state, router, shutdown).await;
            drop(permit);
        });
    }
}

struct ActiveGuard<'a>(&'a Metrics);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(state.tls.load_full());
    let tls =
        match tokio::time::timeout(state.opts.tls_handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                state.metrics.tls_handshake_errors.inc();
                debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                state.metrics.tls_handshake_errors.inc();
                debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
    state.metrics.connections_total.inc();
    state.metrics.connections_active.inc();
    let _active = ActiveGuard(&state.metrics);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let service = TowerToHyperService::new(router);
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .max_header_list_size(64 * 1024)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(10));
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => if let Err(e) = r { debug!(%peer, error = %e, "HTTP/2 connection ended"); },
            _ = crate::state::stopped(&mut shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(state.opts.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => if let Err(e) = r { debug!(%peer, error = %e, "HTTP/1 connection ended"); },
            _ = crate::state::stopped(&mut shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_follows_the_api_server_timeout() {
        let cap = Duration::from_secs(10);
        assert_eq!(budget(Some("timeout=10s"), cap), Duration::from_secs(9));
        assert_eq!(budget(Some("timeout=2s"), cap), Duration::from_millis(1600));
        assert_eq!(budget(Some("timeout=30s"), cap), cap);
        assert_eq!(
            budget(None, Duration::from_secs(60)),
            Duration::from_secs(9)
        );
        assert_eq!(budget(Some("timeout=1ms"), cap), Duration::from_millis(80));
    }
}
