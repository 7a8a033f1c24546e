//! Rampart's core model: objects, field paths, checks and their findings.
//! Nothing here performs I/O.

pub mod check;
pub mod engine;
pub mod kinds;
pub mod lookup;
pub mod object;
pub mod path;
pub mod quote;
pub mod request;
pub mod severity;
pub mod value;

pub use check::{Category, Check, CheckMeta, CorpusCheck, Violation};
pub use engine::{Engine, Finding, IGNORE_ANNOTATION_PREFIX, ignore_reason};
pub use object::{ObjectView, PodBearingKind, PodTemplate};
pub use path::{FieldPath, Segment};
pub use severity::Severity;
