//! Rampart's admission webhook server: `POST /validate` and `POST /mutate`
//! over TLS, answering `admission.k8s.io/v1` `AdmissionReview`s with the
//! rules of `rampart-admission`.
//!
//! - [`server`]: TLS (rustls, aws-lc-rs), HTTP/1.1 and HTTP/2, limits and
//!   timeouts, health and metrics endpoints, the decision log.
//! - [`reload`]: polling the config, lookup files and certificates; following
//!   the cluster's policies with `--cluster`.
//! - [`tls`]: the server's certificate and the client CA.

mod cluster_policies;
pub mod log;
pub mod reload;
pub mod server;
pub mod tls;

#[cfg(feature = "test-support")]
pub mod testing;

pub use server::{ClusterOptions, OnTimeout, ServeOptions, run, serve};
