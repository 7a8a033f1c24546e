//! Rampart's core model: objects, field paths, checks and their findings.
//! Nothing here performs I/O.

pub mod check;
pub mod engine;
pub mod kinds;
pub mod object;
pub mod path;
pub mod severity;
pub mod value;

pub use check::{Category, Check, CheckMeta, CorpusCheck, Violation};
pub use engine::{Engine, Finding, IGNORE_ANNOTATION_PREFIX};
pub use object::{ObjectView, PodBearingKind, PodTemplate};
pub use path::{FieldPath, Segment};
pub use severity::Severity;
