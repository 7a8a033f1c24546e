//! Reading policy documents from files and directories.

use std::path::Path;

use rampart_manifest::{InputIssue, Limits, Loader};

use crate::PolicyError;
use crate::set::{CompileOptions, Document, PolicySet};

/// What was read to build a policy set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub files: usize,
    pub documents: usize,
}

fn issue_error(issue: &InputIssue) -> PolicyError {
    let mut source = issue.source.clone();
    if let Some(line) = issue.line {
        source.push_str(&format!(":{line}"));
        if let Some(col) = issue.column {
            source.push_str(&format!(":{col}"));
        }
    }
    if let Some(doc) = issue.document {
        source.push_str(&format!(" (document {doc})"));
    }
    PolicyError::new(issue.message.clone()).in_source(Some(&source))
}

/// Reads every document under `paths` (files, directories recursively:
/// `*.yaml`, `*.yml`, `*.json`), as kubectl reads them. Any input problem,
/// even a duplicate key, is an error: a policy must be unambiguous.
pub fn read_documents<P: AsRef<Path>>(
    paths: &[P],
) -> Result<(Vec<Document>, LoadStats), Vec<PolicyError>> {
    let loaded = Loader::new(Limits::default()).load_paths(paths);
    if !loaded.issues.is_empty() {
        return Err(loaded.issues.iter().map(issue_error).collect());
    }
    let documents: Vec<Document> = loaded.manifests.iter().map(Document::from).collect();
    let stats = LoadStats {
        files: loaded.files,
        documents: documents.len(),
    };
    Ok((documents, stats))
}

/// Reads and compiles the policies under `paths`. Finding no document at all
/// is an error, so a mistyped path does not silently mean "no policies".
pub fn load_policy_paths<P: AsRef<Path>>(
    paths: &[P],
    options: &CompileOptions,
) -> Result<(PolicySet, LoadStats), Vec<PolicyError>> {
    let (documents, stats) = read_documents(paths)?;
    if documents.is_empty() {
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.as_ref().display().to_string())
            .collect();
        return Err(vec![PolicyError::new(format!(
            "no policy documents found in {}",
            names.join(", ")
        ))]);
    }
    let set = PolicySet::compile_with(documents, options)?;
    Ok((set, stats))
}
