use std::fmt;

/// Why an input could not be (fully) read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IssueKind {
    /// The file or stream could not be read at all.
    Io,
    /// Not valid UTF-8.
    Encoding,
    /// Over a size limit.
    TooLarge,
    /// Nested deeper than the limit.
    TooDeep,
    /// YAML or JSON syntax error.
    Syntax,
    /// Parsed, but not a Kubernetes object (a list, a scalar, no `kind`).
    NotAnObject,
    /// A kind the scanner does not know, or one under the wrong `apiVersion`.
    UnknownKind,
    /// Readable, with a caveat (a duplicate key); the object was still scanned.
    Warning,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::Io => "io",
            IssueKind::Encoding => "encoding",
            IssueKind::TooLarge => "too-large",
            IssueKind::TooDeep => "too-deep",
            IssueKind::Syntax => "syntax",
            IssueKind::NotAnObject => "not-an-object",
            IssueKind::UnknownKind => "unknown-kind",
            IssueKind::Warning => "warning",
        }
    }

    /// Whether anything was left unscanned because of it.
    pub fn lost_input(self) -> bool {
        !matches!(self, IssueKind::Warning)
    }
}

/// A problem with the input, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputIssue {
    pub kind: IssueKind,
    /// Display name of the file, or `-` for standard input.
    pub source: String,
    /// 0-based index of the document in the file, when known.
    pub document: Option<usize>,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl InputIssue {
    pub fn new(kind: IssueKind, source: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            source: source.into(),
            document: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    #[must_use]
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    #[must_use]
    pub fn in_document(mut self, document: usize) -> Self {
        self.document = Some(document);
        self
    }
}

impl fmt::Display for InputIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(doc) = self.document {
            write!(f, " (document {doc})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputIssue {}
