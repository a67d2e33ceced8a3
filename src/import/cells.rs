//! Reading one spreadsheet cell as a typed [`Value`] of a given [`FieldKind`].
//!
//! Every conversion either succeeds, yields `Value::Empty` for a blank cell, or returns a
//! plain-words reason that becomes a line of `rejects.csv`.

use calamine::{CellErrorType, DataRef};

use crate::model::Value;
use crate::model::schema::{FieldKind, Openness, resolve_choice};
use crate::model::value::{
    days_from_civil, excel_serial_to_days, format_date, format_number, is_valid_civil,
};

/// Why a cell could not be read; `value` is the cell as written, for the rejects report.
#[derive(Debug, Clone, PartialEq)]
pub struct CellProblem {
    /// The cell as written.
    pub value: String,
    /// What is wrong, in plain words.
    pub reason: String,
}

fn problem(value: impl Into<String>, reason: impl Into<String>) -> CellProblem {
    CellProblem {
        value: value.into(),
        reason: reason.into(),
    }
}

/// The cell as a person would read it, for messages and for text fields.
pub fn display(cell: &DataRef<'_>) -> String {
    match cell {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => format_number(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::DateTime(dt) => format_date(datetime_days(dt)),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => error_text(e).to_string(),
        DataRef::Empty => String::new(),
    }
}

/// The text of a string cell without copying it.
pub fn as_str<'c>(cell: &'c DataRef<'_>) -> Option<&'c str> {
    match cell {
        DataRef::String(s) => Some(s.as_str()),
        DataRef::SharedString(s) => Some(s),
        _ => None,
    }
}

/// True when the cell holds nothing (or only white space).
pub fn is_blank(cell: &DataRef<'_>) -> bool {
    match cell {
        DataRef::Empty => true,
        DataRef::String(s) => s.trim().is_empty(),
        DataRef::SharedString(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn datetime_days(dt: &calamine::ExcelDateTime) -> f64 {
    let (y, m, d, hh, mm, ss, ms) = dt.to_ymd_hms_milli();
    days_from_civil(y as i64, m as u32, d as u32) as f64
        + (hh as f64 * 3600.0 + mm as f64 * 60.0 + ss as f64 + ms as f64 / 1000.0) / 86_400.0
}

/// The Excel spelling of an error cell.
pub fn error_text(e: &CellErrorType) -> &'static str {
    match e {
        CellErrorType::Div0 => "#DIV/0!",
        CellErrorType::NA => "#N/A",
        CellErrorType::Name => "#NAME?",
        CellErrorType::Null => "#NULL!",
        CellErrorType::Num => "#NUM!",
        CellErrorType::Ref => "#REF!",
        CellErrorType::Value => "#VALUE!",
        CellErrorType::GettingData => "#GETTING_DATA",
    }
}

/// Reads a cell as the given kind.
pub fn convert(
    cell: &DataRef<'_>,
    kind: FieldKind,
    openness: Openness,
    is_1904: bool,
) -> Result<Value, CellProblem> {
    if is_blank(cell) {
        return Ok(Value::Empty);
    }
    if let DataRef::Error(e) = cell {
        return Err(problem(
            error_text(e),
            format!(
                "error cell {}: fix the formula in the source, or clear the cell",
                error_text(e)
            ),
        ));
    }
    match kind {
        FieldKind::Id => read_id(cell),
        FieldKind::Text => Ok(Value::Text(match as_str(cell) {
            Some(s) => s.trim().into(),
            None => display(cell).trim().into(),
        })),
        FieldKind::Number | FieldKind::Money => read_number(cell, kind),
        FieldKind::Percent => read_percent(cell),
        FieldKind::Bool => read_bool(cell),
        FieldKind::Date => read_date(cell, is_1904),
        FieldKind::Choice(choices) => {
            let written = display(cell);
            let written = written.trim();
            match resolve_choice(choices, written) {
                Some(v) => Ok(Value::Symbol(v)),
                None if openness == Openness::Open => Ok(Value::Text(written.into())),
                None => {
                    let allowed: Vec<&str> = choices.iter().map(|c| c.value).collect();
                    let hint = crate::diag::did_you_mean(written, allowed.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    Err(problem(
                        written,
                        format!("`{written}` is not one of {}{hint}", allowed.join(", ")),
                    ))
                }
            }
        }
    }
}

fn read_id(cell: &DataRef<'_>) -> Result<Value, CellProblem> {
    let text = match cell {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => {
            if !f.is_finite() {
                return Err(problem(
                    format_number(*f),
                    "an id cannot be NaN or infinite",
                ));
            }
            format_number(*f)
        }
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) => {
            return Err(problem(
                display(cell),
                "a date where an id was expected: format the column as text in the source",
            ));
        }
        other => match as_str(other) {
            Some(s) => {
                let t = s.trim();
                strip_point_zero(t).unwrap_or(t).to_string()
            }
            None => {
                let s = display(other);
                let t = s.trim();
                strip_point_zero(t).unwrap_or(t).to_string()
            }
        },
    };
    Ok(Value::Text(text.into()))
}

/// `"17850.0"` → `"17850"`: ids exported through a float column.
fn strip_point_zero(s: &str) -> Option<&str> {
    let (int, frac) = s.split_once('.')?;
    let digits = int.strip_prefix('-').unwrap_or(int);
    (!digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0'))
    .then_some(int)
}

fn read_number(cell: &DataRef<'_>, kind: FieldKind) -> Result<Value, CellProblem> {
    let what = if kind == FieldKind::Money {
        "an amount"
    } else {
        "a number"
    };
    match cell {
        DataRef::Int(i) => Ok(Value::Number(*i as f64)),
        DataRef::Float(f) if f.is_finite() => Ok(Value::Number(*f)),
        DataRef::Float(f) => Err(problem(
            format_number(*f),
            format!("{what} cannot be NaN or infinite"),
        )),
        DataRef::Bool(_) => Err(problem(
            display(cell),
            format!("yes/no where {what} was expected"),
        )),
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) | DataRef::DurationIso(_) => Err(problem(
            display(cell),
            format!("a date where {what} was expected: check the column mapping"),
        )),
        _ => {
            let s = display(cell);
            match parse_number_text(&s) {
                Some((n, false)) => Ok(Value::Number(n)),
                Some((n, true)) => Ok(Value::Number(n / 100.0)),
                None => Err(problem(
                    s.trim(),
                    format!(
                        "`{}` is not {what}: write digits only, e.g. 1234.50",
                        s.trim()
                    ),
                )),
            }
        }
    }
}

fn read_percent(cell: &DataRef<'_>) -> Result<Value, CellProblem> {
    let (n, had_sign) = match cell {
        DataRef::Int(i) => (*i as f64, false),
        DataRef::Float(f) if f.is_finite() => (*f, false),
        _ => {
            let s = display(cell);
            parse_number_text(&s).ok_or_else(|| {
                problem(
                    s.trim(),
                    format!("`{}` is not a percentage: write 15% or 0.15", s.trim()),
                )
            })?
        }
    };
    // 15% and 15 both mean 0.15; 0.15 stays 0.15.
    Ok(Value::Number(if had_sign || n.abs() > 1.0 {
        n / 100.0
    } else {
        n
    }))
}

/// Parses a number written as text: thousands separators, decimal comma, currency signs,
/// accounting negatives `(120)`. Returns the number and whether it carried a `%` sign.
pub fn parse_number_text(s: &str) -> Option<(f64, bool)> {
    let mut t = s.trim().to_string();
    if t.is_empty() {
        return None;
    }
    let mut negative = false;
    if t.starts_with('(') && t.ends_with(')') {
        negative = true;
        t = t[1..t.len() - 1].to_string();
    }
    let percent = t.ends_with('%');
    // Keep digits, separators, sign and exponent; drop currency signs/codes and spaces.
    let mut kept = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '0'..='9' | '.' | ',' | '-' | '+' | 'e' | 'E' => kept.push(c),
            ' ' | '\u{a0}' | '\u{202f}' | '\'' | '%' | '$' | '€' | '£' | '₽' | '₼' | '¥' | '₺' =>
                {}
            c if c.is_alphabetic() => {}
            _ => return None,
        }
    }
    // Letters other than currency codes would have been dropped: refuse text that had no digits
    // or that was mostly words.
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    let known_code = [
        "AZN", "RUB", "USD", "EUR", "GBP", "TRY", "KZT", "руб", "man", "manat",
    ]
    .iter()
    .any(|code| t.to_lowercase().contains(&code.to_lowercase()));
    let exp_letters = kept.chars().filter(|c| *c == 'e' || *c == 'E').count();
    if letters > exp_letters && !known_code {
        return None;
    }
    if !kept.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let normalised = normalise_separators(&kept)?;
    let n: f64 = normalised.parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    Some((if negative { -n } else { n }, percent))
}

fn normalise_separators(s: &str) -> Option<String> {
    let commas = s.matches(',').count();
    let dots = s.matches('.').count();
    let out = match (commas, dots) {
        (0, _) if dots <= 1 => s.to_string(),
        (0, _) => s.replace('.', ""), // 1.234.567 (dots as thousands)
        (_, 0) if commas == 1 => {
            let after = s.len() - s.find(',')? - 1;
            let before = s.find(',')?;
            let int_digits = s[..before].trim_start_matches(['-', '+']).len();
            if after == 3 && (1..=3).contains(&int_digits) && int_digits > 0 && !s.starts_with("0,")
            {
                s.replace(',', "") // 1,234 → thousands
            } else {
                s.replace(',', ".") // 1,5 → decimal comma
            }
        }
        (_, 0) => s.replace(',', ""),
        _ => {
            // Both: the last one is the decimal separator.
            let last_comma = s.rfind(',')?;
            let last_dot = s.rfind('.')?;
            if last_comma > last_dot {
                s.replace('.', "").replace(',', ".")
            } else {
                s.replace(',', "")
            }
        }
    };
    Some(out)
}

fn read_bool(cell: &DataRef<'_>) -> Result<Value, CellProblem> {
    match cell {
        DataRef::Bool(b) => Ok(Value::Bool(*b)),
        DataRef::Int(1) => Ok(Value::Bool(true)),
        DataRef::Int(0) => Ok(Value::Bool(false)),
        DataRef::Float(f) if *f == 1.0 => Ok(Value::Bool(true)),
        DataRef::Float(f) if *f == 0.0 => Ok(Value::Bool(false)),
        _ => {
            let s = display(cell);
            parse_bool_text(&s).map(Value::Bool).ok_or_else(|| {
                problem(
                    s.trim(),
                    format!(
                        "`{}` is not yes/no: write yes or no (да/нет, bəli/xeyr)",
                        s.trim()
                    ),
                )
            })
        }
    }
}

/// Parses yes/no words in English, Russian and Azerbaijani.
pub fn parse_bool_text(s: &str) -> Option<bool> {
    let key: String = s.trim().to_lowercase();
    match key.as_str() {
        "yes" | "y" | "true" | "t" | "1" | "x" | "✓" | "✔" | "да" | "д" | "истина" | "bəli"
        | "beli" | "hə" | "he" | "var" | "doğru" => Some(true),
        "no" | "n" | "false" | "f" | "0" | "-" | "нет" | "н" | "ложь" | "xeyr" | "yox"
        | "yanlış" => Some(false),
        _ => None,
    }
}

fn read_date(cell: &DataRef<'_>, is_1904: bool) -> Result<Value, CellProblem> {
    match cell {
        DataRef::DateTime(dt) => Ok(Value::Date(datetime_days(dt))),
        DataRef::Int(_) | DataRef::Float(_) => {
            let serial = match cell {
                DataRef::Int(i) => *i as f64,
                DataRef::Float(f) => *f,
                _ => unreachable!(),
            };
            if serial.is_finite() && (1.0..2_958_466.0).contains(&serial) {
                Ok(Value::Date(excel_serial_to_days(serial, is_1904)))
            } else {
                Err(problem(
                    format_number(serial),
                    format!(
                        "{} is not a date: expected a date such as 2026-03-15",
                        format_number(serial)
                    ),
                ))
            }
        }
        DataRef::Bool(_) => Err(problem(display(cell), "yes/no where a date was expected")),
        _ => {
            let s = display(cell);
            parse_date_text(&s).map(Value::Date).ok_or_else(|| {
                problem(
                    s.trim(),
                    format!(
                        "`{}` is not a date: write 2026-03-15 or 15.03.2026",
                        s.trim()
                    ),
                )
            })
        }
    }
}

/// Parses `YYYY-MM-DD`, `YYYY/MM/DD`, `DD.MM.YYYY`, each with an optional `HH:MM[:SS]` after a
/// space or `T`; returns days since 1970-01-01.
pub fn parse_date_text(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date_part, time_part) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let nums: Vec<&str> = date_part.split(['-', '/', '.']).collect();
    if nums.len() != 3
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (y, m, d) = if nums[0].len() == 4 {
        (
            nums[0].parse::<i64>().ok()?,
            nums[1].parse::<u32>().ok()?,
            nums[2].parse::<u32>().ok()?,
        )
    } else if nums[2].len() == 4 && date_part.contains('.') {
        (
            nums[2].parse::<i64>().ok()?,
            nums[1].parse::<u32>().ok()?,
            nums[0].parse::<u32>().ok()?,
        )
    } else {
        return None;
    };
    if !is_valid_civil(y, m, d) {
        return None;
    }
    let mut days = days_from_civil(y, m, d) as f64;
    if let Some(t) = time_part.filter(|t| !t.is_empty()) {
        let t = t.trim_end_matches('Z');
        let t = t.split(['+']).next()?;
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let hh: u32 = parts[0].parse().ok()?;
        let mm: u32 = parts[1].parse().ok()?;
        let ss: f64 = parts.get(2).map(|p| p.parse().ok()).unwrap_or(Some(0.0))?;
        if hh > 23 || mm > 59 || !(0.0..60.0).contains(&ss) {
            return None;
        }
        days += (hh as f64 * 3600.0 + mm as f64 * 60.0 + ss) / 86_400.0;
    }
    Some(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{ACTIVITY_TYPES, ROLES};

    fn s(v: &str) -> DataRef<'_> {
        DataRef::SharedString(v)
    }
    fn conv(c: DataRef<'_>, k: FieldKind) -> Result<Value, CellProblem> {
        convert(&c, k, Openness::Closed, false)
    }

    #[test]
    fn ids_lose_point_zero() {
        assert_eq!(
            conv(DataRef::Float(17850.0), FieldKind::Id),
            Ok(Value::Text("17850".into()))
        );
        assert_eq!(
            conv(s("17850.0"), FieldKind::Id),
            Ok(Value::Text("17850".into()))
        );
        assert_eq!(
            conv(DataRef::Int(17850), FieldKind::Id),
            Ok(Value::Text("17850".into()))
        );
        assert_eq!(
            conv(s(" A-17 "), FieldKind::Id),
            Ok(Value::Text("A-17".into()))
        );
        assert_eq!(
            conv(s("1.50"), FieldKind::Id),
            Ok(Value::Text("1.50".into()))
        );
    }

    #[test]
    fn money_in_many_spellings() {
        let m = |t| conv(s(t), FieldKind::Money);
        assert_eq!(m("1 234,56"), Ok(Value::Number(1234.56)));
        assert_eq!(m("1,234.56"), Ok(Value::Number(1234.56)));
        assert_eq!(m("1.234.567,5"), Ok(Value::Number(1_234_567.5)));
        assert_eq!(m("(120)"), Ok(Value::Number(-120.0)));
        assert_eq!(m("$ 1,200"), Ok(Value::Number(1200.0)));
        assert_eq!(m("1200 AZN"), Ok(Value::Number(1200.0)));
        assert_eq!(m("2,5"), Ok(Value::Number(2.5)));
        assert_eq!(m("-3.5e3"), Ok(Value::Number(-3500.0)));
        assert!(m("twelve").is_err());
        assert!(m("n/a").is_err());
        assert!(m("NaN").is_err());
        assert!(m("inf").is_err());
        let err = m("about 5").unwrap_err();
        assert_eq!(
            err.reason,
            "`about 5` is not an amount: write digits only, e.g. 1234.50"
        );
    }

    #[test]
    fn error_cells_are_named() {
        let err = conv(DataRef::Error(CellErrorType::NA), FieldKind::Money).unwrap_err();
        assert_eq!(err.value, "#N/A");
        assert!(err.reason.starts_with("error cell #N/A"));
    }

    #[test]
    fn percentages() {
        let p = |c| conv(c, FieldKind::Percent).unwrap();
        assert_eq!(p(s("15%")), Value::Number(0.15));
        assert_eq!(p(DataRef::Float(0.15)), Value::Number(0.15));
        assert_eq!(p(DataRef::Int(15)), Value::Number(0.15));
    }

    #[test]
    fn booleans_in_three_languages() {
        for (t, b) in [
            ("yes", true),
            ("Да", true),
            ("bəli", true),
            ("нет", false),
            ("xeyr", false),
            ("FALSE", false),
        ] {
            assert_eq!(conv(s(t), FieldKind::Bool), Ok(Value::Bool(b)), "{t}");
        }
        assert_eq!(
            conv(DataRef::Int(1), FieldKind::Bool),
            Ok(Value::Bool(true))
        );
        assert!(conv(s("maybe"), FieldKind::Bool).is_err());
    }

    #[test]
    fn dates_from_serials_text_and_1904() {
        let d = |c| conv(c, FieldKind::Date).map(|v| format_date(v.as_date().unwrap()));
        assert_eq!(d(DataRef::Float(45_943.0)), Ok("2025-10-13".into()));
        assert_eq!(d(s("2025-10-13")), Ok("2025-10-13".into()));
        assert_eq!(d(s("13.10.2025")), Ok("2025-10-13".into()));
        assert_eq!(d(s("2025-10-13T09:30:00")), Ok("2025-10-13 09:30".into()));
        assert_eq!(
            d(DataRef::DateTimeIso("2025-10-13".into())),
            Ok("2025-10-13".into())
        );
        let v = convert(
            &DataRef::Float(44_481.0),
            FieldKind::Date,
            Openness::Closed,
            true,
        )
        .unwrap();
        assert_eq!(format_date(v.as_date().unwrap()), "2025-10-13");
        let dt =
            calamine::ExcelDateTime::new(44_481.5, calamine::ExcelDateTimeType::DateTime, true);
        assert_eq!(d(DataRef::DateTime(dt)), Ok("2025-10-13 12:00".into()));
        assert!(d(s("31.02.2025")).is_err());
        assert!(d(s("next tuesday")).is_err());
        assert!(
            d(s("10/13/2025")).is_err(),
            "US order is ambiguous and refused"
        );
    }

    #[test]
    fn choices_open_and_closed() {
        assert_eq!(
            conv(s("Встреча"), FieldKind::Choice(ACTIVITY_TYPES)),
            Ok(Value::Symbol("meeting"))
        );
        let err = conv(s("meting"), FieldKind::Choice(ACTIVITY_TYPES)).unwrap_err();
        assert!(
            err.reason.contains("did you mean `meeting`?"),
            "{}",
            err.reason
        );
        let open = convert(
            &s("Procurement lead"),
            FieldKind::Choice(ROLES),
            Openness::Open,
            false,
        );
        assert_eq!(open, Ok(Value::Text("Procurement lead".into())));
    }
}
