//! Load generator for `rampart serve`: N keep-alive HTTPS/1.1 connections
//! (hyper + rustls) sending a realistic mix of AdmissionReviews as fast as
//! the server answers, for a fixed time. Prints throughput, client-side
//! latency quantiles and, from the server's own histogram
//! (`rampart_admission_request_duration_seconds`, scraped before and after),
//! server-side quantiles.
//!
//! ```sh
//! cargo run --release -p rampart-admission --features test-support --example loadgen -- \
//!   --addr 127.0.0.1:8443 --ca ca.pem --metrics 127.0.0.1:9090 --connections 10 --duration 10s
//! ```
//!
//! The mix (per 20 requests): 6 Pod CREATEs to /validate (compliant and not,
//! in restricted, baseline-warned and unlabelled namespaces), 2 Pod CREATEs
//! to /mutate, 4 Deployment CREATE/UPDATEs, 3 `pods/exec` CONNECTs, 2 pod
//! status-like UPDATEs (label changes), 2 ConfigMap UPDATEs (no rule
//! matches), 1 request in kube-system (excluded).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rampart_webhook::testing::{Review, client_config, deployment, http_get, pod, restricted_pod};
use serde_json::{Value, json};

struct Args {
    addr: SocketAddr,
    ca: String,
    metrics: Option<SocketAddr>,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    threads: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        addr: "127.0.0.1:8443".parse()?,
        ca: String::new(),
        metrics: None,
        connections: 10,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val()?.parse()?,
            "--ca" => a.ca = std::fs::read_to_string(val()?)?,
            "--metrics" => a.metrics = Some(val()?.parse()?),
            "--connections" => a.connections = val()?.parse()?,
            "--duration" => {
                a.duration =
                    rampart_admission::duration::parse(&val()?).map_err(anyhow::Error::msg)?
            }
            "--warmup" => {
                a.warmup =
                    rampart_admission::duration::parse(&val()?).map_err(anyhow::Error::msg)?
            }
            "--threads" => a.threads = val()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.ca.is_empty() {
        bail!("--ca FILE is required");
    }
    Ok(a)
}

/// `(path, body)` of every request in the mix, in order.
fn mix() -> Vec<(&'static str, Bytes)> {
    let privileged = |ns: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv", "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"privileged": true}},
                {"name": "sidecar", "image": "ghcr.io/acme/proxy:2.1", "ports": [{"containerPort": 15001}]}]}})
    };
    let relabel = |p: Value| {
        let mut new = p.clone();
        new["metadata"]["labels"] = json!({"version": "2"});
        Review::of("UPDATE", new).old_object(p)
    };
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team-a"},
        "data": {"config.yaml": "a: 1\nb: [1, 2, 3]\n".repeat(20)}});
    let v = |r: Review| ("/validate?timeout=10s", Bytes::from(r.body()));
    let m = |r: Review| ("/mutate?timeout=10s", Bytes::from(r.body()));
    vec![
        v(Review::of("CREATE", restricted_pod("api-7d9f", "team-a"))),
        v(Review::of("CREATE", privileged("team-a"))),
        v(Review::of("CREATE", pod("web", "team-b", "nginx"))),
        m(Review::of("CREATE", pod("web", "team-b", "nginx:1.25"))),
        v(Review::of(
            "CREATE",
            deployment("api", "team-a", &restricted_pod("api", "team-a")),
        )),
        v(Review::connect("exec", "team-a", "api-0")),
        v(Review::of("UPDATE", configmap.clone())),
        v(Review::of("CREATE", privileged("team-b"))),
        v(relabel(restricted_pod("api-1", "team-a"))),
        v(Review::of(
            "UPDATE",
            deployment("web", "team-b", &pod("web", "team-b", "nginx:1.25")),
        )),
        v(Review::connect("exec", "team-b", "debug")),
        v(Review::of("CREATE", restricted_pod("worker-x1", "team-b"))),
        m(Review::of("CREATE", restricted_pod("api-9c1e", "team-a"))),
        v(Review::of(
            "CREATE",
            deployment("bad", "team-a", &privileged("team-a")),
        )),
        v(Review::of("CREATE", pod("cache", "kube-system", "redis:7"))),
        v(Review::connect("attach", "team-a", "priv-0")),
        v(Review::of(
            "CREATE",
            pod("job", "team-c", "ghcr.io/acme/batch:3"),
        )),
        v(Review::of("UPDATE", configmap)),
        v(relabel(pod("web-1", "team-b", "nginx:1.25"))),
        v(Review::of(
            "CREATE",
            deployment(
                "batch",
                "team-c",
                &pod("b", "team-c", "ghcr.io/acme/batch:3"),
            ),
        )),
    ]
}

async fn connection(
    args: Arc<Args>,
    config: Arc<rustls::ClientConfig>,
    mix: Arc<Vec<(&'static str, Bytes)>>,
    offset: usize,
    start_measuring: Instant,
    end: Instant,
) -> Result<(Vec<u32>, u64)> {
    let tcp = tokio::net::TcpStream::connect(args.addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into()?, tcp)
        .await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let mut i = offset;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let (path, body) = &mix[i % mix.len()];
        i += 1;
        let req = hyper::Request::post(*path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let ok = resp.status() == 200;
        let bytes = resp.into_body().collect().await?.to_bytes();
        let took = now.elapsed();
        if !ok || !bytes.starts_with(b"{\"apiVersion\"") {
            errors += 1;
        }
        if now >= start_measuring {
            latencies.push(took.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok((latencies, errors))
}

/// Cumulative counts of the request-duration histogram, summed over labels: `(le, count)`.
fn server_histogram(addr: SocketAddr) -> Result<Vec<(f64, f64)>> {
    let text = http_get(addr, "/metrics")?.text();
    let mut by_le: std::collections::BTreeMap<u64, f64> = Default::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("rampart_admission_request_duration_seconds_bucket{")
        else {
            continue;
        };
        if !(rest.contains("result=\"allowed\"")
            || rest.contains("result=\"denied\"")
            || rest.contains("result=\"patched\"")
            || rest.contains("result=\"excluded\"")
            || rest.contains("result=\"unmatched\""))
        {
            continue;
        }
        let le = rest
            .split("le=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse()?
        };
        let count: f64 = line.rsplit(' ').next().unwrap_or("0").parse()?;
        *by_le.entry(le.to_bits()).or_default() += count;
    }
    let mut v: Vec<(f64, f64)> = by_le
        .into_iter()
        .map(|(b, c)| (f64::from_bits(b), c))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(v)
}

/// Quantile of a cumulative histogram by linear interpolation within the bucket.
fn histogram_quantile(h: &[(f64, f64)], q: f64) -> f64 {
    let Some(&(_, total)) = h.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in h {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let width = count - prev.1;
            let frac = if width > 0.0 {
                (rank - prev.1) / width
            } else {
                1.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, count);
    }
    prev.0
}

fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() -> Result<()> {
    rampart_webhook::tls::install_provider();
    // `loadgen pki DIR`: write a CA and a server certificate for the benchmark.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("pki") {
        let dir = argv.get(2).context("pki DIR")?;
        rampart_webhook::testing::Pki::new(std::path::Path::new(dir))?;
        return Ok(());
    }
    let args = Arc::new(parse_args()?);
    let config = client_config(&args.ca, None)?;
    let mix = Arc::new(mix());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let before = args.metrics.map(server_histogram).transpose()?;
    let (latencies, errors, measured) = rt.block_on(async {
        let start = Instant::now();
        let start_measuring = start + args.warmup;
        let end = start_measuring + args.duration;
        let tasks: Vec<_> = (0..args.connections)
            .map(|c| {
                tokio::spawn(connection(
                    args.clone(),
                    config.clone(),
                    mix.clone(),
                    c * 7,
                    start_measuring,
                    end,
                ))
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await??;
            all.extend(l);
            errors += e;
        }
        anyhow::Ok((all, errors, args.duration))
    })?;
    let after = args.metrics.map(server_histogram).transpose()?;
    let mut sorted = latencies;
    sorted.sort_unstable();
    let n = sorted.len();
    let rps = n as f64 / measured.as_secs_f64();
    let server = match (before, after) {
        (Some(b), Some(a)) => {
            let delta: Vec<(f64, f64)> = a
                .iter()
                .map(|&(le, c)| (le, c - b.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1)))
                .collect();
            format!(
                "server_p50_us={:.1} server_p99_us={:.1} server_p999_us={:.1}",
                histogram_quantile(&delta, 0.5) * 1e6,
                histogram_quantile(&delta, 0.99) * 1e6,
                histogram_quantile(&delta, 0.999) * 1e6
            )
        }
        _ => String::new(),
    };
    println!(
        "connections={} requests={n} errors={errors} rps={rps:.0} p50_us={} p99_us={} p999_us={} max_us={} {server}",
        args.connections,
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.99),
        quantile(&sorted, 0.999),
        sorted.last().copied().unwrap_or(0),
    );
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}
