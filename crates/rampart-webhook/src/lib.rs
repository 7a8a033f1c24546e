//! Rampart's admission webhook server: `POST /validate` and `POST /mutate`
//! over TLS, answering `admission.k8s.io/v1` `AdmissionReview`s with the
//! rules of `rampart-admission`.
//!
//! - `server`: TLS (rustls, aws-lc-rs), HTTP/1.1 and HTTP/2, limits and
//!   timeouts, health and metrics endpoints, the decision log.
//! - `state`: [`ServeOptions`] and the shared `AppState`.
//! - `reload`: polling the config, lookup files and certificates; following
//!   the cluster's policies with `--cluster`.
//! - [`tls`]: the server's certificate and the client CA.

mod cluster_policies;
pub mod log;
mod reload;
mod server;
mod state;
pub mod tls;

#[cfg(feature = "test-support")]
pub mod testing;

pub use server::{run, serve};
pub use state::{ClusterOptions, OnTimeout, ServeOptions};
