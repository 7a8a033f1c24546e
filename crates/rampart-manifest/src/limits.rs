//! How much input the loader accepts.

/// Bounds that keep hostile or accidental input from exhausting memory or stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest file or stream read, in bytes. Checked before reading.
    pub max_file_bytes: u64,
    /// Deepest nesting of mappings and sequences in a document.
    pub max_depth: usize,
    /// Most parser events (about one per node) that YAML aliases may replay
    /// into one document: bounds "billion laughs" alias bombs.
    pub max_alias_expansion: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 32 * 1024 * 1024,
            max_depth: 64,
            max_alias_expansion: 100_000,
        }
    }
}
