//! Turns files and streams into Kubernetes objects, the way kubectl reads them,
//! and maps field paths back to lines.
//!
//! ```
//! use rampart_core::FieldPath;
//! use rampart_manifest::{Limits, Loader};
//!
//! let loader = Loader::new(Limits { max_file_bytes: 1 << 20, ..Limits::default() });
//! // `load_paths` takes files, directories and `-` (standard input).
//! let loaded = loader.load_str("pod.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  hostPID: yes\n");
//! assert!(loaded.issues.is_empty());
//! let pod = &loaded.manifests[0];
//! assert_eq!(pod.value["spec"]["hostPID"], true);
//! assert_eq!(pod.locate(&FieldPath::parse("spec.hostPID")).map(|p| p.line), Some(4));
//! assert_eq!((&*pod.source, pod.document, pod.list_item), ("pod.yaml", 0, None));
//! ```
//!
//! - [`Loader::load_paths`] reads files (any extension), directories
//!   (recursively: `.yaml`, `.yml`, `.json`, sorted, hidden entries skipped)
//!   and `-`; files are read and parsed in parallel, and the [`LoadResult`]
//!   lists manifests and [`InputIssue`]s in input order (file, document, item).
//! - Documents are split on `---` lines exactly as kubectl's YAML reader does,
//!   before parsing, so one broken document does not hide the others. A
//!   document's index counts only documents with content: blank and
//!   comment-only documents are skipped, as kubectl skips them. A file whose
//!   first character is `{` or `[` is a JSON stream; each value is a document.
//! - `kind: List` and every `*List` with `items` is expanded into one
//!   [`Manifest`] per item, which remembers its item index for positions.
//! - Scalars resolve as kubectl resolves them (YAML 1.1 through go-yaml v2:
//!   `0755` is octal 493, `yes`/`on` are true, `~` is null), because that is
//!   what reaches the API server. Keys keep their spelling (`on:` stays "on").
//!   A duplicate key keeps its last value and yields a warning.
//! - Objects in a built-in API group must have a built-in kind (a wrong
//!   `apiVersion` or a misspelt kind is an issue, and the object is not
//!   returned); kinds in other groups are custom resources and pass through.
//! - [`Limits`] bound file size (checked before reading), nesting depth and
//!   alias expansion, so hostile input gives an issue, never a crash.
//! - Positions are not kept while parsing; a document's [`LineIndex`] is built
//!   on the first [`Manifest::locate`] call for it.

mod decode;
mod error;
mod limits;
mod load;
mod locate;
mod parse;
mod split;

pub use error::{InputIssue, IssueKind};
pub use limits::Limits;
pub use load::{Loader, list_manifest_files, manifest_files};
pub use locate::{LineIndex, Position};
pub use parse::{LoadResult, Manifest, Source, parse_source};
