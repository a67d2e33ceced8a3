//! Reading one sheet: finding the header row, matching columns to canonical fields, and
//! turning each data row into typed slots (canonical fields, then extra columns).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use calamine::DataRef;

use super::Rejects;
use super::book::Book;
use super::cells::{self, display, is_blank};
use super::mapping::SheetMapping;
use crate::diag::{Diagnostic, did_you_mean};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::model::schema::{FieldKind, Openness, SheetKind, normalize_key, snake_name};
use crate::model::{Origin, RejectScope, SheetReport, Value};

/// How many non-empty rows automatic header detection looks at.
pub const HEADER_SEARCH_ROWS: u32 = 50;

/// A resolved sheet layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// 1-based header row.
    pub header_row: u32,
    /// Column of each canonical field.
    pub field_cols: Vec<Option<usize>>,
    /// Extra columns: (column, rule-visible name).
    pub extras: Vec<(usize, String)>,
    /// Names of extra slots made by derived expressions.
    pub derived_extras: Vec<String>,
    derived: Vec<(usize, Expr)>,
    constants: Vec<(usize, Value)>,
    choice_lookup: Vec<Option<HashMap<String, &'static str>>>,
    /// The header texts by column.
    pub headers: Vec<String>,
}

impl Layout {
    /// Names of all extra slots (columns, then derived), in slot order.
    pub fn extra_names(&self) -> Vec<String> {
        self.extras
            .iter()
            .map(|(_, n)| n.clone())
            .chain(self.derived_extras.iter().cloned())
            .collect()
    }
}

/// One data row, typed.
pub struct Row<'a> {
    /// Where it came from.
    pub origin: &'a Origin,
    /// Canonical fields (by field index), then extras.
    pub slots: &'a [Value],
    /// The layout, to cite cells.
    pub layout: &'a Layout,
    /// Number of canonical fields.
    pub n_fields: usize,
    /// How many data rows the sheet declares below its header (a hint for reserving memory:
    /// a damaged file can declare any number up to Excel's row limit).
    pub declared_rows: usize,
}

impl Row<'_> {
    /// The cell reference of a canonical field (or the row's first cell when it has no column).
    pub fn cell_of(&self, field: usize) -> String {
        let col = self
            .layout
            .field_cols
            .get(field)
            .copied()
            .flatten()
            .unwrap_or(0);
        self.origin.cell(col as u32)
    }
    /// Text of a field.
    pub fn text(&self, field: usize) -> Option<String> {
        match &self.slots[field] {
            Value::Empty => None,
            // Most fields are text: one exact allocation, not the formatting machinery.
            Value::Text(t) => Some(String::from(&**t)),
            v => Some(v.to_string()),
        }
    }
    /// Text of a field without copying it.
    pub fn str(&self, field: usize) -> Option<&str> {
        self.slots[field].as_text()
    }
    /// Number of a field.
    pub fn num(&self, field: usize) -> Option<f64> {
        self.slots[field].as_number()
    }
    /// Date of a field.
    pub fn date(&self, field: usize) -> Option<f64> {
        self.slots[field].as_date()
    }
    /// Yes/no of a field.
    pub fn flag(&self, field: usize) -> Option<bool> {
        self.slots[field].as_bool()
    }
    /// A closed choice as its static canonical value.
    pub fn choice(&self, field: usize) -> Option<&'static str> {
        match self.slots[field] {
            Value::Symbol(s) => Some(s),
            _ => None,
        }
    }
    /// The extra slots.
    pub fn extras(&self) -> Vec<Value> {
        self.slots[self.n_fields..].to_vec()
    }
}

/// What a row handler decided.
pub enum Outcome {
    /// The row is used.
    Used,
    /// The row was rejected (the handler recorded why).
    Rejected,
}

/// Reads a sheet, calling `handle` for each data row.
#[allow(clippy::too_many_arguments)]
pub fn read_sheet(
    book: &mut Book<'_>,
    kind: SheetKind,
    sheet: &str,
    mapping: Option<&SheetMapping>,
    mapping_path: Option<&Path>,
    rejects: &mut Rejects,
    progress: &dyn Fn(u64),
    handle: &mut dyn FnMut(&Row<'_>, &mut Rejects) -> Result<Outcome>,
) -> Result<(SheetReport, Layout)> {
    let sheet_arc: Arc<str> = Arc::from(sheet);
    let is_1904 = book.is_1904;
    let fields = kind.fields();
    let n_fields = fields.len();
    let mut layout: Option<Layout> = None;
    let mut failure: Option<Error> = None;
    let mut searched = 0u32;
    let mut slots: Vec<Value> = Vec::new();
    // Choice values as written → canonical, so repeated values cost one hash lookup.
    let mut seen_choices: Vec<HashMap<String, &'static str>> = vec![HashMap::new(); n_fields];
    let mut report = SheetReport {
        kind: Some(kind),
        sheet: sheet.to_string(),
        ..Default::default()
    };
    let wanted_header = mapping.and_then(|m| m.header_row);
    // Header names of this sheet's fields (normalised), for finding the header and its columns.
    let aliases = alias_map(kind);
    let file = rejects.file.clone();

    let last_row = std::cell::Cell::new(0u32);
    let mut on_row = |row: u32, cells: &[DataRef<'_>]| -> ControlFlow<()> {
        let Some(lay) = &layout else {
            if cells.iter().all(is_blank) {
                return ControlFlow::Continue(());
            }
            searched += 1;
            let is_header = match wanted_header {
                Some(h) => row == h,
                None => header_score(&aliases, mapping, cells),
            };
            if is_header {
                match build_layout(
                    &file,
                    kind,
                    &aliases,
                    row,
                    cells,
                    is_1904,
                    mapping,
                    mapping_path,
                    sheet,
                ) {
                    Ok(l) => {
                        slots =
                            vec![Value::Empty; n_fields + l.extras.len() + l.derived_extras.len()];
                        report.header_row = row;
                        report.columns = describe_columns(kind, &l);
                        layout = Some(l);
                    }
                    Err(e) => {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            } else if wanted_header.is_some_and(|h| row > h)
                || (wanted_header.is_none() && searched >= HEADER_SEARCH_ROWS)
            {
                failure = Some(no_header(&file, kind, sheet, wanted_header));
                return ControlFlow::Break(());
            }
            return ControlFlow::Continue(());
        };
        if cells.iter().all(is_blank) {
            return ControlFlow::Continue(());
        }
        report.rows_seen += 1;
        if report.rows_seen.is_multiple_of(65_536) {
            progress(report.rows_seen);
        }
        let origin = Origin {
            sheet: sheet_arc.clone(),
            row,
        };
        for s in slots.iter_mut() {
            *s = Value::Empty;
        }
        for (i, col) in lay.field_cols.iter().enumerate() {
            let Some(col) = *col else { continue };
            let Some(cell) = cells.get(col) else { continue };
            let spec = &fields[i];
            let converted = match (&lay.choice_lookup[i], spec.kind) {
                (Some(lookup), FieldKind::Choice(choices)) if !is_blank(cell) => {
                    let cached = cells::as_str(cell).and_then(|w| seen_choices[i].get(w).copied());
                    let hit = cached.or_else(|| {
                        let written = display(cell);
                        let v = lookup.get(&normalize_key(&written)).copied();
                        if let Some(v) = v {
                            seen_choices[i].insert(written, v);
                        }
                        v
                    });
                    match hit {
                        Some(v) => Ok(Value::Symbol(v)),
                        None => {
                            cells::convert(cell, FieldKind::Choice(choices), spec.openness, is_1904)
                        }
                    }
                }
                _ => cells::convert(cell, spec.kind, spec.openness, is_1904),
            };
            match converted {
                Ok(v) => slots[i] = v,
                Err(p) => {
                    if let Err(e) = rejects.push(
                        &sheet_arc,
                        origin.cell(col as u32),
                        spec.name,
                        p.value,
                        p.reason,
                        RejectScope::Cell,
                    ) {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        for (j, (col, _)) in lay.extras.iter().enumerate() {
            if let Some(cell) = cells.get(*col) {
                slots[n_fields + j] = guess(cell, is_1904);
            }
        }
        for (slot, value) in &lay.constants {
            if slots[*slot].is_empty() {
                slots[*slot] = value.clone();
            }
        }
        for (slot, expr) in &lay.derived {
            if let Some(v) = expr.eval_number(&|i| slots[i].as_number()) {
                slots[*slot] = Value::Number(v);
            }
        }
        let row_view = Row {
            origin: &origin,
            slots: &slots,
            layout: lay,
            n_fields,
            declared_rows: last_row.get().saturating_sub(lay.header_row) as usize,
        };
        match handle(&row_view, rejects) {
            Ok(Outcome::Used) => report.rows_used += 1,
            Ok(Outcome::Rejected) => report.rows_rejected += 1,
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    book.for_each_row(sheet, &mut |n| last_row.set(n), &mut on_row)?;
    if let Some(e) = failure {
        return Err(e);
    }
    match layout {
        Some(l) => {
            progress(report.rows_seen);
            Ok((report, l))
        }
        None if wanted_header.is_none() && searched == 0 => Err(Error::workbook(
            &file,
            format!("sheet '{sheet}' ({}) is empty", kind.name()),
        )),
        None => Err(no_header(&file, kind, sheet, wanted_header)),
    }
}

fn no_header(file: &str, kind: SheetKind, sheet: &str, wanted: Option<u32>) -> Error {
    let examples: Vec<&str> = kind.fields().iter().take(4).map(|f| f.name).collect();
    match wanted {
        Some(h) => Error::workbook(
            file,
            format!(
                "sheet '{sheet}' has no row {h} to use as the header (header_row in the mapping file)"
            ),
        ),
        None => Error::workbook(
            file,
            format!(
                "no header row found in sheet '{sheet}' ({}) within its first {HEADER_SEARCH_ROWS} rows: expected column names such as {}; name the columns, or give `header_row` and `columns` in a mapping file (see docs/workbook.md)",
                kind.name(),
                examples.join(", ")
            ),
        ),
    }
}

fn alias_map(kind: SheetKind) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for (i, f) in kind.fields().iter().enumerate() {
        map.entry(normalize_key(f.name)).or_insert(i);
        for a in f.aliases {
            map.entry(normalize_key(a)).or_insert(i);
        }
    }
    map
}

fn header_score(
    aliases: &HashMap<String, usize>,
    mapping: Option<&SheetMapping>,
    cells: &[DataRef<'_>],
) -> bool {
    let mapped: Vec<String> = mapping
        .map(|m| m.columns.iter().map(|(_, h, _)| normalize_key(h)).collect())
        .unwrap_or_default();
    let mut matches = 0;
    let mut non_empty = 0;
    for c in cells.iter().filter(|c| !is_blank(c)) {
        non_empty += 1;
        if !matches!(c, DataRef::String(_) | DataRef::SharedString(_)) {
            continue;
        }
        let key = normalize_key(&display(c));
        if aliases.contains_key(&key) || mapped.contains(&key) {
            matches += 1;
        }
    }
    matches >= 2 || (matches >= 1 && matches == non_empty)
}

fn mapping_error(
    mapping_path: Option<&Path>,
    span: &crate::diag::Span,
    message: String,
    hint: Option<String>,
) -> Error {
    let path = mapping_path
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut d = Diagnostic::new(format!("{path}: {message}")).with_span(span.clone());
    if let Some(h) = hint {
        d = d.with_hint(h);
    }
    d.into()
}

#[allow(clippy::too_many_arguments)]
fn build_layout(
    file: &str,
    kind: SheetKind,
    aliases: &HashMap<String, usize>,
    header_row: u32,
    cells: &[DataRef<'_>],
    is_1904: bool,
    mapping: Option<&SheetMapping>,
    mapping_path: Option<&Path>,
    sheet: &str,
) -> Result<Layout> {
    let fields = kind.fields();
    let headers: Vec<String> = cells
        .iter()
        .map(|c| display(c).trim().to_string())
        .collect();
    let keys: Vec<String> = headers.iter().map(|h| normalize_key(h)).collect();
    let mut field_cols: Vec<Option<usize>> = vec![None; fields.len()];
    let mut taken = vec![false; headers.len()];
    if let Some(m) = mapping {
        for (field, header, span) in &m.columns {
            let key = normalize_key(header);
            let Some(col) = keys.iter().position(|k| *k == key) else {
                let present: Vec<&str> = headers
                    .iter()
                    .map(String::as_str)
                    .filter(|h| !h.is_empty())
                    .collect();
                let hint = match did_you_mean(header, present.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the columns of '{sheet}' are: {}", present.join(", ")),
                };
                return Err(mapping_error(
                    mapping_path,
                    span,
                    format!(
                        "column `{header}` (for {}.{}) is not in sheet '{sheet}' (header row {header_row})",
                        kind.name(),
                        fields[*field].name
                    ),
                    Some(hint),
                ));
            };
            field_cols[*field] = Some(col);
            taken[col] = true;
        }
    }
    let ignore: Vec<String> = mapping
        .map(|m| m.ignore.iter().map(|h| normalize_key(h)).collect())
        .unwrap_or_default();
    for (col, key) in keys.iter().enumerate() {
        if taken[col] || key.is_empty() || ignore.contains(key) {
            continue;
        }
        if let Some(&i) = aliases.get(key)
            && field_cols[i].is_none()
        {
            field_cols[i] = Some(col);
            taken[col] = true;
        }
    }
    let mut extras: Vec<(usize, String)> = Vec::new();
    // Sets, not lists: a sheet may have thousands of columns, many with the same header.
    let mut used_names: std::collections::HashSet<String> =
        fields.iter().map(|f| f.name.to_string()).collect();
    let mut next_suffix: std::collections::HashMap<String, usize> = Default::default();
    for (col, header) in headers.iter().enumerate() {
        if taken[col] || ignore.contains(&keys[col]) {
            continue;
        }
        let base = if header.is_empty() {
            format!(
                "column_{}",
                crate::model::column_letters(col as u32).to_lowercase()
            )
        } else {
            let s = snake_name(header);
            if s.is_empty() {
                format!(
                    "column_{}",
                    crate::model::column_letters(col as u32).to_lowercase()
                )
            } else {
                s
            }
        };
        let mut name = base.clone();
        if used_names.contains(&name) {
            let n = next_suffix.entry(base.clone()).or_insert(2);
            loop {
                name = format!("{base}_{n}");
                *n += 1;
                if !used_names.contains(&name) {
                    break;
                }
            }
        }
        used_names.insert(name.clone());
        extras.push((col, name));
    }
    let n_fields = fields.len();
    let mut derived_extras: Vec<String> = Vec::new();
    let mut constants = Vec::new();
    let mut derived = Vec::new();
    if let Some(m) = mapping {
        for (name, text, span) in &m.constants {
            let i = kind.field_index(name).expect("validated");
            let v = cells::convert(
                &DataRef::SharedString(text),
                fields[i].kind,
                fields[i].openness,
                is_1904,
            )
            .map_err(|p| {
                mapping_error(
                    mapping_path,
                    span,
                    format!("constant for `{name}`: {}", p.reason),
                    None,
                )
            })?;
            constants.push((i, v));
        }
        for (name, expr, span) in &m.derived {
            let slot = match kind.field_index(name) {
                Some(i) => i,
                None => match extras.iter().position(|(_, n)| n == name) {
                    Some(j) => n_fields + j,
                    None => {
                        derived_extras.push(name.clone());
                        n_fields + extras.len() + derived_extras.len() - 1
                    }
                },
            };
            let mut e = expr.clone();
            let extra_names: Vec<String> = extras
                .iter()
                .map(|(_, n)| n.clone())
                .chain(derived_extras.iter().cloned())
                .collect();
            let slot_of = |n: &str| -> Option<usize> {
                kind.field_index(n).or_else(|| {
                    extra_names
                        .iter()
                        .position(|x| x == n)
                        .map(|j| n_fields + j)
                })
            };
            if let Err(unknown) = e.resolve(&slot_of) {
                let known: Vec<&str> = fields
                    .iter()
                    .map(|f| f.name)
                    .chain(extra_names.iter().map(String::as_str))
                    .collect();
                let hint = match did_you_mean(&unknown, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("fields available in '{sheet}': {}", known.join(", ")),
                };
                let col = span
                    .source_line
                    .chars()
                    .skip(span.col - 1)
                    .collect::<String>()
                    .find(&unknown)
                    .map(|b| span.col + b)
                    .unwrap_or(span.col);
                let at = crate::diag::Span {
                    col,
                    len: unknown.chars().count(),
                    ..span.clone()
                };
                return Err(mapping_error(
                    mapping_path,
                    &at,
                    format!(
                        "the expression for `{name}` uses `{unknown}`, which sheet '{sheet}' does not have"
                    ),
                    Some(hint),
                ));
            }
            derived.push((slot, e));
        }
    }
    for (i, f) in fields.iter().enumerate() {
        let provided = field_cols[i].is_some()
            || constants.iter().any(|(s, _)| *s == i)
            || derived.iter().any(|(s, _)| *s == i);
        if f.required && !provided {
            let looked: Vec<&str> = f.aliases.iter().take(5).copied().collect();
            let present: Vec<&str> = headers
                .iter()
                .map(String::as_str)
                .filter(|h| !h.is_empty())
                .collect();
            return Err(Error::workbook(
                file,
                format!(
                    "sheet '{sheet}' ({}) has no column for `{}` (looked for headers such as {}); its header row {header_row} has: {}. Rename the column or map it in a mapping file (docs/workbook.md)",
                    kind.name(),
                    f.name,
                    looked
                        .iter()
                        .map(|l| format!("'{l}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    present.join(", ")
                ),
            ));
        }
    }
    let choice_lookup = fields
        .iter()
        .map(|f| match f.kind {
            FieldKind::Choice(choices) => {
                let mut m = HashMap::new();
                for c in choices {
                    m.insert(normalize_key(c.value), c.value);
                    for a in c.aliases {
                        m.entry(normalize_key(a)).or_insert(c.value);
                    }
                }
                Some(m)
            }
            _ => None,
        })
        .collect();
    Ok(Layout {
        header_row,
        field_cols,
        extras,
        derived_extras,
        derived,
        constants,
        choice_lookup,
        headers,
    })
}

fn describe_columns(kind: SheetKind, l: &Layout) -> Vec<(String, String)> {
    let mut out: Vec<(usize, String, String)> = Vec::new();
    for (i, col) in l.field_cols.iter().enumerate() {
        if let Some(c) = col {
            out.push((*c, l.headers[*c].clone(), kind.fields()[i].name.to_string()));
        }
    }
    for (c, name) in &l.extras {
        out.push((*c, l.headers[*c].clone(), format!("extra:{name}")));
    }
    out.sort();
    let mut described: Vec<(String, String)> = out.into_iter().map(|(_, h, f)| (h, f)).collect();
    let extra_names = l.extra_names();
    let slot_name = |slot: usize| match kind.fields().get(slot) {
        Some(f) => f.name.to_string(),
        None => format!("extra:{}", extra_names[slot - kind.fields().len()]),
    };
    for (slot, value) in &l.constants {
        described.push((format!("(constant) {value}"), slot_name(*slot)));
    }
    for (slot, expr) in &l.derived {
        described.push((format!("= {expr}"), slot_name(*slot)));
    }
    described
}

/// Reads an extra column's cell without a declared type.
fn guess(cell: &DataRef<'_>, is_1904: bool) -> Value {
    match cell {
        DataRef::Int(i) => Value::Number(*i as f64),
        DataRef::Float(f) if f.is_finite() => Value::Number(*f),
        DataRef::Bool(b) => Value::Bool(*b),
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) => {
            cells::convert(cell, FieldKind::Date, Openness::Closed, is_1904).unwrap_or(Value::Empty)
        }
        DataRef::Empty | DataRef::Error(_) => Value::Empty,
        other => {
            let s = display(other);
            let t = s.trim();
            if t.is_empty() {
                Value::Empty
            } else {
                Value::Text(t.into())
            }
        }
    }
}
