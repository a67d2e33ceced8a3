//! The library's error type. Every variant reads as one plain sentence (plus the location and
//! a hint for user files); the CLI prints it and exits with code 2.

use crate::diag::Diagnostic;

/// Everything that stops kam from running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A workbook could not be opened or read.
    #[error("{file}: {message}")]
    Workbook {
        /// The workbook's path as given.
        file: String,
        /// One sentence saying what is wrong and what to do.
        message: String,
    },
    /// A user file (mapping, rule pack, template) is wrong; printed with its source line.
    #[error("{0}")]
    Config(Box<Diagnostic>),
    /// Rule packs have problems; every one is listed with its source line.
    #[error("{}", render_all(.0))]
    Rules(Vec<Diagnostic>),
    /// `--fail-fast` stopped the run at the first problem.
    #[error("stopped at the first problem (--fail-fast): {0}")]
    FailFast(String),
    /// A file or folder could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What kam was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A report template or language file is wrong: where, the line and a caret.
    #[error("template error: {0}")]
    Template(String),
}

impl Error {
    /// An I/O error with what kam was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A workbook error.
    pub fn workbook(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Workbook {
            file: file.into(),
            message: message.into(),
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Config(Box::new(d))
    }
}

fn render_all(problems: &[Diagnostic]) -> String {
    let n = problems.len();
    let body: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
    format!(
        "{}\n{n} problem{} in the rules",
        body.join("\n\nerror: "),
        if n == 1 { "" } else { "s" }
    )
}

/// Result with kam's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
