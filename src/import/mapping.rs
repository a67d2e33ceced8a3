//! Mapping files: how to read an export that is not in kam's layout.
//!
//! ```yaml
//! sheets:
//!   Accounts:
//!     sheet: Customer master      # the workbook's sheet name
//!     header_row: 3               # 1-based, or `auto` (default)
//!     columns:                    # canonical field: the workbook's column header
//!       id: Cust No
//!       gross_profit: GP
//!     constants:                  # a value for every row
//!       level: company
//!     derived:                    # expressions over fields of the same sheet
//!       revenue: quantity * unit_price
//!     ignore: [Internal note]     # columns not to keep as extras
//! ```
//!
//! Parsing rejects unknown keys; [`Mapping::load`] then validates names and expressions in a
//! separate pass, every problem pointing at the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::error::Result;
use crate::expr::Expr;
use crate::model::schema::{SheetKind, snake_name};

/// The file as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// Per canonical sheet name.
    #[serde(default)]
    pub sheets: serde_yaml::Mapping,
}

/// How to read one sheet, as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SheetMappingFile {
    /// The workbook's sheet name.
    pub sheet: Option<String>,
    /// 1-based header row or `auto`.
    #[serde(default)]
    pub header_row: Option<serde_yaml::Value>,
    /// Canonical field → column header.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Canonical field → value.
    #[serde(default)]
    pub constants: serde_yaml::Mapping,
    /// Field → expression.
    #[serde(default)]
    pub derived: serde_yaml::Mapping,
    /// Column headers to skip.
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// A validated mapping for one sheet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SheetMapping {
    /// The workbook's sheet name, with where it was written.
    pub sheet: Option<(String, Span)>,
    /// 1-based header row; `None` detects it.
    pub header_row: Option<u32>,
    /// (canonical field index, column header, where it was written).
    pub columns: Vec<(usize, String, Span)>,
    /// (target name, text value, where it was written).
    pub constants: Vec<(String, String, Span)>,
    /// (target name, parsed expression, where it was written), in file order.
    pub derived: Vec<(String, Expr, Span)>,
    /// Column headers to skip.
    pub ignore: Vec<String>,
}

/// A validated mapping file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    /// Where it was read from.
    pub path: PathBuf,
    /// Per sheet.
    pub sheets: BTreeMap<SheetKind, SheetMapping>,
}

/// The keys a mapping file may use, for "did you mean".
const MAPPING_KEYS: &[&str] = &[
    "sheets",
    "sheet",
    "header_row",
    "columns",
    "constants",
    "derived",
    "ignore",
];

fn yaml_error(path: &Path, source: &str, e: &serde_yaml::Error) -> Diagnostic {
    crate::diag::yaml_error(path, source, e, MAPPING_KEYS)
}

fn key_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            crate::error::Error::io(format!("cannot read mapping file {}", path.display()), e)
        })?;
        Mapping::parse(path, &source)
    }

    /// Parses and validates mapping text; `path` is used in messages.
    pub fn parse(path: &Path, source: &str) -> Result<Mapping> {
        let file: MappingFile = if source.trim().is_empty() {
            MappingFile {
                sheets: Default::default(),
            }
        } else {
            serde_yaml::from_str(source).map_err(|e| yaml_error(path, source, &e))?
        };
        let mut mapping = Mapping {
            path: path.to_path_buf(),
            sheets: BTreeMap::new(),
        };
        for (key, body) in &file.sheets {
            let name = key_text(key);
            let section_span = Span::find(path, source, &name, 1);
            let Some(kind) = SheetKind::from_name(&name) else {
                let names = SheetKind::ALL.map(|k| k.name());
                let mut d = Diagnostic::new(format!(
                    "{}: `{name}` is not a sheet kam knows",
                    path.display()
                ))
                .with_span(section_span);
                d = match did_you_mean(&name, names) {
                    Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                    None => d.with_hint(format!("the sheets are {}", names.join(", "))),
                };
                return Err(d.into());
            };
            let body: SheetMappingFile = if body.is_null() {
                SheetMappingFile::default()
            } else {
                serde_yaml::from_value(body.clone()).map_err(|e| {
                    let mut d = yaml_error(path, source, &e);
                    if let Some(unknown) = e
                        .to_string()
                        .strip_prefix("unknown field `")
                        .and_then(|r| r.split('`').next())
                    {
                        d.span = Some(Span::find(path, source, unknown, section_span.line));
                    } else {
                        d.span = Some(section_span.clone());
                    }
                    d
                })?
            };
            let sheet = validate_sheet(path, source, kind, &body, section_span.line)?;
            mapping.sheets.insert(kind, sheet);
        }
        Ok(mapping)
    }

    /// Finds the mapping file that belongs to a workbook: `<stem>.mapping.yaml` beside it, then
    /// `kam-mapping.yaml` in the same folder.
    pub fn discover(workbook: &Path) -> Option<PathBuf> {
        let dir = workbook.parent().unwrap_or(Path::new("."));
        let stem = workbook.file_stem()?.to_string_lossy();
        [
            format!("{stem}.mapping.yaml"),
            format!("{stem}.mapping.yml"),
            "kam-mapping.yaml".to_string(),
        ]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    }
}

fn validate_sheet(
    path: &Path,
    source: &str,
    kind: SheetKind,
    body: &SheetMappingFile,
    from_line: usize,
) -> Result<SheetMapping> {
    let fields = kind.fields();
    let field_names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let unknown_field = |name: &str, span: Span| -> Diagnostic {
        let d = Diagnostic::new(format!(
            "{}: `{name}` is not a field of {}",
            path.display(),
            kind.name()
        ))
        .with_span(span);
        match did_you_mean(name, field_names.iter().copied()) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d.with_hint(format!(
                "the fields of {} are {}; other columns are kept automatically under their own names",
                kind.name(),
                field_names.join(", ")
            )),
        }
    };
    let mut out = SheetMapping::default();
    if let Some(sheet) = &body.sheet {
        out.sheet = Some((sheet.clone(), Span::find(path, source, sheet, from_line)));
    }
    out.header_row = match &body.header_row {
        None => None,
        Some(serde_yaml::Value::String(s)) if s.eq_ignore_ascii_case("auto") => None,
        Some(serde_yaml::Value::Number(n))
            if n.as_u64().is_some_and(|n| (1..=1_048_576).contains(&n)) =>
        {
            Some(n.as_u64().unwrap_or(1) as u32)
        }
        Some(other) => {
            let text = key_text(other);
            return Err(Diagnostic::new(format!(
                "{}: header_row must be a row number from 1 or `auto`, not `{text}`",
                path.display()
            ))
            .with_span(Span::find(path, source, "header_row", from_line))
            .into());
        }
    };
    for (field, header) in &body.columns {
        let span = Span::find(path, source, field, from_line);
        let Some(i) = kind.field_index(field) else {
            return Err(unknown_field(field, span).into());
        };
        out.columns.push((
            i,
            header.clone(),
            Span::find(path, source, header, span.line),
        ));
    }
    for (key, value) in &body.constants {
        let name = key_text(key);
        let span = Span::find(path, source, &name, from_line);
        if kind.field_index(&name).is_none() {
            return Err(unknown_field(&name, span).into());
        }
        out.constants.push((name, key_text(value), span));
    }
    for (key, value) in &body.derived {
        let name = key_text(key);
        let key_span = Span::find(path, source, &format!("{name}:"), from_line);
        if kind.field_index(&name).is_none() && snake_name(&name) != name {
            return Err(Diagnostic::new(format!(
                "{}: `{name}` cannot name a derived field: use lowercase words joined by `_`, e.g. `{}`",
                path.display(),
                snake_name(&name)
            ))
            .with_span(key_span)
            .into());
        }
        let text = key_text(value);
        let value_span = Span::find(path, source, &text, key_span.line);
        let expr = Expr::parse(&text).map_err(|e| {
            let span = Span {
                col: value_span.col + e.offset,
                len: e.len,
                ..value_span.clone()
            };
            Diagnostic::new(format!(
                "{}: in the expression for `{name}`: {}",
                path.display(),
                e.message
            ))
            .with_span(span)
        })?;
        out.derived.push((name, expr, value_span));
    }
    out.ignore = body.ignore.clone();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        Mapping::parse(Path::new("m.yaml"), src)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_full_mapping_parses() {
        let src = "sheets:\n  Accounts:\n    sheet: Customer master\n    header_row: 3\n    columns:\n      id: Cust No\n    constants:\n      level: company\n    derived:\n      revenue: qty * price\n    ignore: [Note]\n";
        let m = Mapping::parse(Path::new("m.yaml"), src).unwrap();
        let a = &m.sheets[&SheetKind::Accounts];
        assert_eq!(a.header_row, Some(3));
        assert_eq!(a.columns[0].0, 0);
        assert_eq!(a.columns[0].1, "Cust No");
        assert_eq!(a.derived[0].0, "revenue");
        assert_eq!(a.derived[0].2.line, 10);
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_suggestion() {
        let e = err("sheets:\n  Accounts:\n    colums:\n      id: Cust\n");
        assert!(e.contains("unknown field `colums`"), "{e}");
        assert!(e.contains("m.yaml:3:5"), "{e}");
        assert!(e.contains("did you mean `columns`?"), "{e}");
    }

    #[test]
    fn unknown_sheets_and_fields_get_did_you_mean() {
        let e = err("sheets:\n  Acounts:\n    sheet: X\n");
        assert!(e.contains("`Acounts` is not a sheet kam knows"), "{e}");
        assert!(e.contains("did you mean `Accounts`?"), "{e}");
        let e = err("sheets:\n  Accounts:\n    columns:\n      revnue: Sales\n");
        assert!(e.contains("`revnue` is not a field of Accounts"), "{e}");
        assert!(e.contains("m.yaml:4:7"), "{e}");
        assert!(e.contains("did you mean `revenue`?"), "{e}");
    }

    #[test]
    fn expression_errors_point_into_the_expression() {
        let e = err("sheets:\n  Transactions:\n    derived:\n      amount: qty * * price\n");
        assert!(
            e.contains("in the expression for `amount`: unexpected `*`"),
            "{e}"
        );
        assert!(e.contains("m.yaml:4:21"), "{e}");
    }

    #[test]
    fn bad_header_row() {
        let e = err("sheets:\n  Accounts:\n    header_row: zero\n");
        assert!(
            e.contains("header_row must be a row number from 1 or `auto`, not `zero`"),
            "{e}"
        );
    }
}
