//! Rampart's admission webhook: `POST /validate` and `POST /mutate` over TLS,
//! answering `admission.k8s.io/v1` `AdmissionReview`s with the built-in
//! policies (Pod Security Standards from namespace labels, best practices,
//! image rules, sandboxing, namespace and exec protection, request rules,
//! rate limits) and mutations.
//!
//! - [`review`]: the wire format; the request is parsed once, borrowing from
//!   the body, and the object only when a rule needs it.
//! - [`policy`]: rules, their index by kind/resource and operation, the
//!   [`policy::PolicySet`] (swapped atomically on reload).
//! - [`server`]: TLS (rustls, aws-lc-rs), HTTP/1.1 and HTTP/2, limits and
//!   timeouts, health and metrics endpoints, the decision log.
//! - [`reload`]: polling the config, lookup files and certificates.
//! - [`webhook_config`]: the Validating/MutatingWebhookConfiguration YAML.

pub mod config;
pub mod decision;
pub mod duration;
pub mod glob;
pub mod lookup;
pub mod metrics;
pub mod policy;
pub mod review;
pub mod webhook_config;

pub use config::Config;
pub use decision::{Decision, Mode};
pub use policy::PolicySet;
