//! Finding and reading inputs: files, directories and standard input.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::limits::Limits;
use crate::parse::{LoadResult, Source, parse_source};
use crate::{InputIssue, IssueKind};

/// Reads manifests from paths and streams, with [`Limits`].
#[derive(Clone, Debug, Default)]
pub struct Loader {
    limits: Limits,
}

/// One thing to read, once directories are expanded.
enum Input {
    File(PathBuf),
    Stdin,
    /// An input that failed before reading (missing path, unreadable directory).
    Failed(InputIssue),
}

impl Loader {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Reads each input in turn: a file (whatever its extension), a directory
    /// (recursively: files ending `.yaml`, `.yml` or `.json`, in sorted order,
    /// hidden files and directories skipped), or `-` for standard input.
    /// Files are read and parsed in parallel; the result keeps input order.
    pub fn load_paths<I>(&self, inputs: I) -> LoadResult
    where
        I: IntoIterator,
        I::Item: AsRef<Path>,
    {
        let mut expanded = Vec::new();
        for input in inputs {
            expand(input.as_ref(), &mut expanded);
        }
        let results: Vec<LoadResult> = expanded
            .into_par_iter()
            .map(|input| match input {
                Input::File(path) => self.load_file(&path),
                Input::Stdin => self.load_reader("-", std::io::stdin().lock()),
                Input::Failed(issue) => LoadResult::issue(issue),
            })
            .collect();
        let mut all = LoadResult::default();
        for result in results {
            all.extend(result);
        }
        all
    }

    /// Reads one file, whatever its extension.
    pub fn load_file(&self, path: &Path) -> LoadResult {
        let name = path.display().to_string();
        let io_issue = |e: std::io::Error| {
            LoadResult::issue(InputIssue::new(
                IssueKind::Io,
                &name,
                format!("cannot read: {e}"),
            ))
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => return io_issue(e),
        };
        // Refuse before reading, so a huge file costs nothing.
        let size = match file.metadata() {
            Ok(meta) => meta.len(),
            Err(e) => return io_issue(e),
        };
        if size > self.limits.max_file_bytes {
            return LoadResult::issue(self.too_large(&name, Some(size)));
        }
        self.load_bytes(&name, file, size)
    }

    /// Reads a stream (standard input, a pipe) under the size limit.
    pub fn load_reader(&self, name: &str, reader: impl Read) -> LoadResult {
        self.load_bytes(name, reader, 0)
    }

    /// Parses text already in memory, as if read from a file called `name`.
    pub fn load_str(&self, name: &str, text: &str) -> LoadResult {
        if text.len() as u64 > self.limits.max_file_bytes {
            return LoadResult::issue(self.too_large(name, Some(text.len() as u64)));
        }
        parse_source(&Source::new(name, text), &self.limits)
    }

    fn load_bytes(&self, name: &str, reader: impl Read, size_hint: u64) -> LoadResult {
        let max = self.limits.max_file_bytes;
        let mut bytes = Vec::with_capacity(usize::try_from(size_hint.min(max)).unwrap_or(0));
        // One byte over the limit tells a stream (or a growing file) that is too large.
        if let Err(e) = reader.take(max.saturating_add(1)).read_to_end(&mut bytes) {
            return LoadResult::issue(InputIssue::new(
                IssueKind::Io,
                name,
                format!("cannot read: {e}"),
            ));
        }
        if bytes.len() as u64 > max {
            return LoadResult::issue(self.too_large(name, None));
        }
        match Source::from_bytes(name, bytes) {
            Ok(source) => parse_source(&source, &self.limits),
            Err(issue) => LoadResult {
                files: 1,
                ..LoadResult::issue(issue)
            },
        }
    }

    fn too_large(&self, name: &str, size: Option<u64>) -> InputIssue {
        let limit = human_size(self.limits.max_file_bytes);
        let message = match size {
            Some(size) => format!(
                "{} is over the size limit of {limit}; not read",
                human_size(size)
            ),
            None => format!("over the size limit of {limit}; not read"),
        };
        InputIssue::new(IssueKind::TooLarge, name, message)
    }
}

/// The files [`Loader::load_paths`] reads for `path`, in order: the path
/// itself when it is a file, the manifests below it when it is a directory;
/// nothing for `-` or a path that cannot be read. For watching inputs for
/// changes without reading them.
pub fn manifest_files(path: &Path) -> Vec<PathBuf> {
    list_manifest_files(path).0
}

/// [`manifest_files`], with what could not be listed (a missing path, an
/// unreadable directory) as issues: the one walk `rampart scan` and
/// `rampart fix` share.
pub fn list_manifest_files(path: &Path) -> (Vec<PathBuf>, Vec<InputIssue>) {
    let mut inputs = Vec::new();
    expand(path, &mut inputs);
    let mut files = Vec::new();
    let mut issues = Vec::new();
    for input in inputs {
        match input {
            Input::File(path) => files.push(path),
            Input::Failed(issue) => issues.push(issue),
            Input::Stdin => {}
        }
    }
    (files, issues)
}

/// Lists what to read for one input, in order.
fn expand(path: &Path, out: &mut Vec<Input>) {
    if path.as_os_str() == "-" {
        out.push(Input::Stdin);
        return;
    }
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Err(e) => out.push(Input::Failed(InputIssue::new(
            IssueKind::Io,
            name,
            format!("cannot read: {e}"),
        ))),
        Ok(meta) if meta.is_dir() => walk(path, out),
        Ok(_) => out.push(Input::File(path.to_owned())),
    }
}

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

fn walk(root: &Path, out: &mut Vec<Input>) {
    let is_hidden = |entry: &walkdir::DirEntry| {
        // The root is read even when hidden: it was named on purpose.
        entry.depth() > 0 && entry.file_name().as_encoded_bytes().starts_with(b".")
    };
    let entries = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !is_hidden(e));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let name = e.path().unwrap_or(root).display().to_string();
                let message = format!(
                    "cannot read: {}",
                    e.io_error()
                        .map_or_else(|| e.to_string(), ToString::to_string)
                );
                out.push(Input::Failed(InputIssue::new(IssueKind::Io, name, message)));
                continue;
            }
        };
        let has_extension = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        // Symlinked files are read, as kubectl reads them; symlinked
        // directories are not followed, as kubectl does not follow them.
        let is_file = entry.file_type().is_file()
            || (entry.path_is_symlink() && entry.path().metadata().is_ok_and(|m| m.is_file()));
        if has_extension && is_file {
            out.push(Input::File(entry.into_path()));
        }
    }
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        let mib = bytes as f64 / MIB as f64;
        if bytes.is_multiple_of(MIB) {
            format!("{} MiB", bytes / MIB)
        } else {
            format!("{mib:.1} MiB")
        }
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}
