//! Diagnostics a person can act on: a message, where it is (file, line, column and the source
//! line with a caret), and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a text file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// Length of the underlined part, in characters (at least 1).
    pub len: usize,
    /// The text of the line.
    pub source_line: String,
}

impl Span {
    /// A span at `line`/`col` of `source`, underlining `len` characters.
    pub fn at(file: &Path, source: &str, line: usize, col: usize, len: usize) -> Span {
        let source_line = source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .to_string();
        Span {
            file: file.to_path_buf(),
            line,
            col: col.max(1),
            len: len.max(1),
            source_line,
        }
    }

    /// The first place where `needle` appears on a line at or after `from_line` (1-based),
    /// skipping comments; falls back to the first line.
    pub fn find(file: &Path, source: &str, needle: &str, from_line: usize) -> Span {
        for (i, line) in source.lines().enumerate().skip(from_line.saturating_sub(1)) {
            let code = line.split(" #").next().unwrap_or(line);
            if let Some(byte) = code.find(needle) {
                let col = code[..byte].chars().count() + 1;
                return Span::at(file, source, i + 1, col, needle.chars().count());
            }
        }
        Span::at(file, source, 1, 1, 1)
    }
}

/// Characters of a source line shown at most (a window around the column beyond that).
const MAX_SHOWN: usize = 120;

/// An error or warning about a user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// What to do.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message only.
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: None,
            hint: None,
        }
    }

    /// Adds a position.
    pub fn with_span(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(span) = &self.span {
            let num = span.line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n{pad}--> {}:{}:{}",
                span.file.display(),
                span.line,
                span.col
            )?;
            // A long line (minified YAML, a generated file) shows a window around the column.
            let chars: Vec<char> = span.source_line.chars().collect();
            let col = span.col.min(chars.len() + 1);
            let (from, to) = if chars.len() > MAX_SHOWN {
                let from = col
                    .saturating_sub(MAX_SHOWN / 2)
                    .min(chars.len() - MAX_SHOWN);
                (from, from + MAX_SHOWN)
            } else {
                (0, chars.len())
            };
            let head = if from > 0 { "…" } else { "" };
            let tail = if to < chars.len() { "…" } else { "" };
            let shown: String = chars[from..to].iter().collect();
            write!(f, "\n{pad} |\n{num} | {head}{shown}{tail}")?;
            let lead: String = chars[from..(col - 1).max(from)]
                .iter()
                .map(|c| if *c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = span.len.min(to.saturating_sub(col - 1).max(1));
            write!(
                f,
                "\n{pad} | {}{lead}{}",
                " ".repeat(head.chars().count()),
                "^".repeat(width)
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// A serde_yaml error as a diagnostic: the message without serde's "at line …", the place
/// with a caret under the offending key, and a "did you mean" for an unknown key.
pub fn yaml_error(
    path: &Path,
    source: &str,
    e: &serde_yaml::Error,
    expected: &[&str],
) -> Diagnostic {
    let msg = e.to_string();
    let core = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let mut d = Diagnostic::new(format!("{}: {core}", path.display()));
    if let Some(loc) = e.location() {
        let line_text = source
            .lines()
            .nth(loc.line().saturating_sub(1))
            .unwrap_or("");
        let len = line_text
            .chars()
            .skip(loc.column().saturating_sub(1))
            .take_while(|c| !c.is_whitespace() && *c != ':')
            .count();
        d = d.with_span(Span::at(path, source, loc.line(), loc.column(), len));
    }
    if core.contains("repetition limit exceeded") {
        d = d.with_hint(
            "the file repeats YAML aliases (`*name`) so often that it would expand without bound \
             (a \"billion laughs\" file); write the values out instead of nesting aliases",
        );
    } else if core.contains("recursion limit exceeded") {
        d = d.with_hint("the file nests lists or maps more than 128 levels deep; flatten it");
    }
    if let Some(unknown) = core
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
        && let Some(s) = did_you_mean(unknown, expected.iter().copied())
    {
        d = d.with_hint(format!("did you mean `{s}`?"));
    }
    d
}

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (lower.chars().count() / 3).max(1);
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let close = candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c);
    // Otherwise a candidate that the word begins (`cogs` → `cogs_fy`).
    close.or_else(|| {
        (lower.chars().count() >= 3)
            .then(|| {
                candidates
                    .iter()
                    .filter(|c| c.to_lowercase().starts_with(&lower))
                    .min_by_key(|c| (c.len(), **c))
                    .copied()
            })
            .flatten()
    })
}

/// `n` and a noun in the form `n` takes in English (`1 row`, `0 rows`, `2 rows`), for
/// messages that count things.
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: TryInto<u64> + std::fmt::Display + Copy,
{
    let is_one = n.try_into().ok() == Some(1);
    format!("{n} {}", if is_one { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_the_problem() {
        let src = "sheets:\n  Accounts:\n    colums:\n      id: Cust\n";
        let d = Diagnostic::new("unknown key `colums`")
            .with_span(Span::find(Path::new("m.yaml"), src, "colums", 1))
            .with_hint("did you mean `columns`?");
        assert_eq!(
            d.to_string(),
            "unknown key `colums`\n --> m.yaml:3:5\n  |\n3 |     colums:\n  |     ^^^^^^\n  = hint: did you mean `columns`?"
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(
            did_you_mean("colums", ["columns", "sheet"]),
            Some("columns")
        );
        assert_eq!(did_you_mean("zzz", ["columns", "sheet"]), None);
        assert_eq!(
            did_you_mean("cogs", ["cost", "cogs_fy", "cogs_fy_2"]),
            Some("cogs_fy")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
