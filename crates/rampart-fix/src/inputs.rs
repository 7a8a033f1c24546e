//! Finding the files to fix and reading them, with the rules of `rampart
//! scan` (the manifest loader's own walk: directories recursively, `*.yaml`,
//! `*.yml`, `*.json`, sorted, hidden entries skipped), `-` for standard
//! input, a size limit checked before reading. Files must be UTF-8: a file
//! that is not is never rewritten.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_manifest::{InputIssue, IssueKind};

use crate::SourceText;

/// One thing to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

/// The files named by `paths`, in order, each once, and the paths that
/// could not be listed.
pub fn expand<P: AsRef<Path>>(paths: &[P]) -> (Vec<Input>, Vec<InputIssue>) {
    let mut inputs = Vec::new();
    let mut issues = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            if !inputs.contains(&Input::Stdin) {
                inputs.push(Input::Stdin);
            }
            continue;
        }
        let (files, failed) = rampart_manifest::list_manifest_files(path);
        issues.extend(failed);
        for file in files {
            push_file(&mut inputs, file);
        }
    }
    (inputs, issues)
}

fn push_file(inputs: &mut Vec<Input>, path: PathBuf) {
    let key = std::fs::canonicalize(&path).ok();
    let seen = inputs.iter().any(|i| match i {
        Input::File(p) => *p == path || (key.is_some() && std::fs::canonicalize(p).ok() == key),
        Input::Stdin => false,
    });
    if !seen {
        inputs.push(Input::File(path));
    }
}

/// Reads one input as UTF-8 text, refusing files over `max_bytes`.
pub fn read(input: &Input, max_bytes: u64) -> Result<SourceText, InputIssue> {
    let (name, bytes) = match input {
        Input::Stdin => (
            "-".to_owned(),
            read_limited(std::io::stdin().lock(), "-", max_bytes)?,
        ),
        Input::File(path) => {
            let name = path.display().to_string();
            let io = |e: std::io::Error| {
                InputIssue::new(IssueKind::Io, &name, format!("cannot read: {e}"))
            };
            let file = File::open(path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            if size > max_bytes {
                return Err(too_large(&name, max_bytes));
            }
            let bytes = read_limited(file, &name, max_bytes)?;
            (name, bytes)
        }
    };
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(InputIssue::new(
            IssueKind::Encoding,
            name,
            "the file is UTF-16; kubectl reads only UTF-8, so convert it",
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceText::new(name, text)),
        Err(e) => Err(InputIssue::new(
            IssueKind::Encoding,
            name,
            format!(
                "invalid UTF-8 at byte offset {}; the file is not rewritten",
                e.utf8_error().valid_up_to()
            ),
        )),
    }
}

fn read_limited(reader: impl Read, name: &str, max_bytes: u64) -> Result<Vec<u8>, InputIssue> {
    let mut bytes = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| InputIssue::new(IssueKind::Io, name, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(name, max_bytes));
    }
    Ok(bytes)
}

fn too_large(name: &str, max_bytes: u64) -> InputIssue {
    InputIssue::new(
        IssueKind::TooLarge,
        name,
        format!("over the size limit of {max_bytes} bytes; not read"),
    )
}

/// Replaces the file at `path` with `text` through a temporary file in the
/// same directory, keeping its permissions; a symlink's target is written.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.rampart-fix.{}", std::process::id()));
    let permissions = std::fs::metadata(&target)?.permissions();
    let result = (|| {
        std::fs::write(&temp, text)?;
        std::fs::set_permissions(&temp, permissions)?;
        std::fs::rename(&temp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_directories_like_scan_and_reads_utf8_only() {
        let dir = std::env::temp_dir().join(format!("rampart-fix-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        std::fs::write(dir.join("b.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.join("a.json"), "{}").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        std::fs::write(dir.join("sub/c.yml"), b"a: \xff\n").unwrap();
        std::fs::write(dir.join(".hidden/d.yaml"), "a: 1\n").unwrap();
        let (inputs, issues) = expand(&[dir.clone(), dir.join("b.yaml"), dir.join("missing")]);
        assert_eq!(
            inputs,
            [
                Input::File(dir.join("a.json")),
                Input::File(dir.join("b.yaml")),
                Input::File(dir.join("sub/c.yml")),
            ]
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(read(&inputs[1], 1024).unwrap().text.as_ref(), "a: 1\n");
        assert_eq!(
            read(&inputs[2], 1024).unwrap_err().kind,
            IssueKind::Encoding
        );
        assert_eq!(read(&inputs[1], 2).unwrap_err().kind, IssueKind::TooLarge);

        write_atomically(&dir.join("b.yaml"), "a: 2\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("b.yaml")).unwrap(),
            "a: 2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
