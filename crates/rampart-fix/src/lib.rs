//! `rampart fix`: rewrites Kubernetes manifests so that they pass Rampart's
//! built-in checks, where a fix is safe, and says why the rest was not fixed.
//!
//! ```
//! use rampart_fix::{FixOptions, Fixer, SourceText};
//! use rampart_manifest::Limits;
//! use rampart_checks::pss::{Level, Profile, Version};
//!
//! let engine = rampart_core::Engine::new(
//!     Profile::new(Level::Restricted, Version::Latest).into_checks(),
//!     Vec::new(),
//! );
//! let options = FixOptions::default();
//! let text = "\
//! apiVersion: v1
//! kind: Pod
//! metadata:
//!   name: web # the front end
//! spec:
//!   containers:
//!     - name: web
//!       image: ghcr.io/acme/web:1.2
//! ";
//! let run = Fixer::new(&engine, &options, Limits::default())
//!     .run(&[SourceText::new("pod.yaml", text)]);
//! let file = &run.files[0];
//! assert_eq!(file.fixed, "\
//! apiVersion: v1
//! kind: Pod
//! metadata:
//!   name: web # the front end
//! spec:
//!   securityContext:
//!     runAsNonRoot: true
//!     seccompProfile:
//!       type: RuntimeDefault
//!   containers:
//!     - name: web
//!       image: ghcr.io/acme/web:1.2
//!       securityContext:
//!         allowPrivilegeEscalation: false
//!         capabilities:
//!           drop:
//!             - ALL
//! ");
//! assert_eq!(run.objects().next().unwrap().fixed.len(), 4);
//! assert_eq!(run.failing(rampart_core::Severity::Low), 0);
//! ```
//!
//! # How
//!
//! 1. The sources are read as `rampart scan` reads them and checked with the
//!    caller's [`Engine`](rampart_core::Engine).
//! 2. For each failing check with a remedy, [`plan`] lists the changes, as
//!    [`Op`]s on the object (set a field, add to a list), or says why it leaves
//!    the check failing: a remedy never overrides a value written on purpose
//!    without [`FixOptions::force`], and never removes anything.
//! 3. [`text`] applies the operations to the document's text, not to a
//!    re-serialised copy, so comments, key order, quoting, blank lines,
//!    anchors and document separators are kept byte for byte outside the
//!    edited spots. JSON files are edited the same way, in JSON.
//! 4. The edited file is read again and must give exactly the original
//!    objects with the intended changes (and the same input issues). A
//!    document whose edit does not is left as it was and reported as an
//!    internal error: a broken file is never produced.
//! 5. The fixed text is checked again; every finding left is reported with
//!    the reason it was not fixed.

mod fixer;
pub mod inputs;
pub mod op;
pub mod plan;
pub mod profile;
pub mod text;

pub use fixer::{AppliedFix, FileFix, FixRun, Fixer, NotFixed, ObjectFix, SourceText};
pub use op::{Action, Op};
pub use plan::{FixOptions, IMAGE_PULL_POLICY, no_remedy_reason};
pub use profile::ResourceProfile;
