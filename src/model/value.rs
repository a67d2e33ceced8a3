//! Cell values after import: the typed form every later stage works with.

use std::fmt;

/// A typed value of one field of one record.
///
/// Dates are stored as days since 1970-01-01 (the fraction is the time of day), so that date
/// arithmetic is plain subtraction and the Excel 1900/1904 systems are already resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// The cell was empty or the field is unknown.
    #[default]
    Empty,
    /// A number (money, quantity, score, share).
    Number(f64),
    /// Text, trimmed.
    Text(Box<str>),
    /// A canonical value of a choice field (`meeting`, `company`, …).
    Symbol(&'static str),
    /// A yes/no value.
    Bool(bool),
    /// A date or date-time as days since 1970-01-01.
    Date(f64),
}

impl Value {
    /// True when the value is [`Value::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, Value::Empty)
    }

    /// The number, if this is a number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a yes/no value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The date (days since 1970-01-01), if this is a date.
    pub fn as_date(&self) -> Option<f64> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// The name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Empty => "empty",
            Value::Number(_) => "number",
            Value::Text(_) | Value::Symbol(_) => "text",
            Value::Bool(_) => "yes/no",
            Value::Date(_) => "date",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Empty => Ok(()),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::Text(t) => f.write_str(t),
            Value::Symbol(s) => f.write_str(s),
            Value::Bool(b) => f.write_str(if *b { "yes" } else { "no" }),
            Value::Date(d) => f.write_str(&format_date(*d)),
        }
    }
}

/// Formats a number without a trailing `.0` and without exponent noise for ordinary figures.
pub fn format_number(n: f64) -> String {
    let mut s = String::new();
    let _ = write_number(&mut s, n);
    s
}

/// Writes [`format_number`]'s text to `w` without building a string.
pub fn write_number<W: fmt::Write + ?Sized>(w: &mut W, n: f64) -> fmt::Result {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        w.write_str(itoa::Buffer::new().format(n as i64))
    } else if n.is_finite() && n.abs() < 1e12 {
        // Sums of money carry binary noise (0.1 + 0.2): round to a millionth, then print the
        // shortest representation.
        let r = (n * 1e6).round() / 1e6;
        if r.fract() == 0.0 {
            w.write_str(itoa::Buffer::new().format(r as i64))
        } else if (1e-5..1e7).contains(&r.abs()) {
            // ryu finds the same shortest digits as `{r}` three times faster and, from 1e-5
            // up, writes them the same way (below, it switches to `1e-6`). Below 1e7 a
            // millionth is thousands of times the float spacing, so the shortest digits are
            // unique; above, two can tie and ryu rounds the tie to even where `{r}` rounds
            // it up.
            w.write_str(ryu::Buffer::new().format_finite(r))
        } else {
            write!(w, "{r}")
        }
    } else {
        write!(w, "{n}")
    }
}

/// Writes `x` with `decimals` digits after the point, exactly as `format!("{x:.decimals$}")`
/// does, without its slow exact path for the ordinary case (shares and rates): when `x` scaled
/// is not within a millionth of a rounding tie, the nearest integer is the right one.
pub fn write_fixed<W: fmt::Write + ?Sized>(w: &mut W, x: f64, decimals: usize) -> fmt::Result {
    const SCALE: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
    if decimals < SCALE.len() && x.is_finite() && x.abs() < 1e12 {
        let scaled = x.abs() * SCALE[decimals];
        let t = scaled.round();
        if (scaled - scaled.floor() - 0.5).abs() > 1e-6 {
            let t = t as u64;
            let unit = SCALE[decimals] as u64;
            if x.is_sign_negative() {
                w.write_str("-")?;
            }
            w.write_str(itoa::Buffer::new().format(t / unit))?;
            if decimals > 0 {
                let frac = t % unit;
                let mut digits = [b'0'; 3];
                let mut f = frac;
                for d in digits[..decimals].iter_mut().rev() {
                    *d = b'0' + (f % 10) as u8;
                    f /= 10;
                }
                w.write_str(".")?;
                w.write_str(std::str::from_utf8(&digits[..decimals]).unwrap_or("0"))?;
            }
            return Ok(());
        }
    }
    write!(w, "{x:.decimals$}")
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number counted from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Checks that a civil date exists (month 1–12, day within the month).
pub fn is_valid_civil(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= days[(m - 1) as usize]
}

/// Excel serial (1900 system) of 1970-01-01.
pub const EXCEL_1900_UNIX_EPOCH: f64 = 25_569.0;
/// Excel serial (1904 system) of 1970-01-01.
pub const EXCEL_1904_UNIX_EPOCH: f64 = 24_107.0;

/// Converts an Excel serial date to days since 1970-01-01.
///
/// In the 1900 system serials below 61 are shifted by Excel's phantom 1900-02-29; they are
/// far before any sales data and returned as computed.
pub fn excel_serial_to_days(serial: f64, is_1904: bool) -> f64 {
    if is_1904 {
        serial - EXCEL_1904_UNIX_EPOCH
    } else if serial < 61.0 {
        serial - EXCEL_1900_UNIX_EPOCH + 1.0
    } else {
        serial - EXCEL_1900_UNIX_EPOCH
    }
}

/// Converts days since 1970-01-01 to an Excel serial date in the 1900 system.
pub fn days_to_excel_serial(days: f64) -> f64 {
    days + EXCEL_1900_UNIX_EPOCH
}

/// Formats a date as `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM` when it has a time of day.
pub fn format_date(days: f64) -> String {
    let mut s = String::with_capacity(16);
    let _ = write_date(&mut s, days);
    s
}

/// Writes [`format_date`]'s text to `w` without building a string.
pub fn write_date<W: fmt::Write + ?Sized>(w: &mut W, days: f64) -> fmt::Result {
    let whole = days.floor();
    let minutes = ((days - whole) * 1440.0).round() as i64;
    if minutes >= 1440 {
        return write_date(w, whole + 1.0);
    }
    let (y, m, d) = civil_from_days(whole as i64);
    if !(0..=9999).contains(&y) {
        return if minutes == 0 {
            write!(w, "{y:04}-{m:02}-{d:02}")
        } else {
            write!(
                w,
                "{y:04}-{m:02}-{d:02} {:02}:{:02}",
                minutes / 60,
                minutes % 60
            )
        };
    }
    let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let y = y as u32;
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&two(y / 100));
    b[2..4].copy_from_slice(&two(y % 100));
    b[4] = b'-';
    b[5..7].copy_from_slice(&two(m));
    b[7] = b'-';
    b[8..10].copy_from_slice(&two(d));
    let mut n = 10;
    if minutes != 0 {
        let minutes = minutes as u32;
        b[10] = b' ';
        b[11..13].copy_from_slice(&two(minutes / 60));
        b[13] = b':';
        b[14..16].copy_from_slice(&two(minutes % 60));
        n = 16;
    }
    w.write_str(std::str::from_utf8(&b[..n]).unwrap_or_default())
}

/// The calendar quarter of a date as `YYYY-Qn`.
pub fn quarter_of(days: f64) -> String {
    quarter_label(quarter_index(days))
}

/// A date's calendar quarter as one number (year × 4 + quarter − 1), for grouping and sorting.
pub fn quarter_index(days: f64) -> i64 {
    let (y, m, _) = civil_from_days(days.floor() as i64);
    y * 4 + (m as i64 - 1) / 3
}

/// `YYYY-Qn` for a [`quarter_index`].
pub fn quarter_label(index: i64) -> String {
    format!("{:04}-Q{}", index.div_euclid(4), index.rem_euclid(4) + 1)
}

/// Day of the week of a day number: 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: f64) -> u32 {
    (days.floor() as i64 + 3).rem_euclid(7) as u32
}

/// Working days (Monday–Friday) after `from` up to and including `to`: a Friday proposal
/// followed up on Monday took 1 business day. Negative when `to` is before `from`.
pub fn business_days_between(from: f64, to: f64) -> f64 {
    let (a, b) = (from.floor() as i64, to.floor() as i64);
    if b < a {
        return -business_days_between(to, from);
    }
    let mut n = 0i64;
    let mut d = a + 1;
    // Whole weeks at once, then the rest day by day.
    let weeks = (b - a) / 7;
    n += weeks * 5;
    d += weeks * 7;
    while d <= b {
        if weekday(d as f64) < 5 {
            n += 1;
        }
        d += 1;
    }
    n as f64
}

fn days_in_month(y: i64, m: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|d| is_valid_civil(y, m, *d))
        .unwrap_or(28)
}

/// Calendar months from `from` to `to`: whole months, plus the fraction of the next month
/// (2025-09-01 → 2026-06-15 is 9.47). Negative when `to` is before `from`.
pub fn months_between(from: f64, to: f64) -> f64 {
    if to < from {
        return -months_between(to, from);
    }
    let (y1, m1, d1) = civil_from_days(from.floor() as i64);
    let (y2, m2, d2) = civil_from_days(to.floor() as i64);
    let mut n = (y2 - y1) * 12 + m2 as i64 - m1 as i64;
    if d2 < d1 {
        n -= 1;
    }
    // The date n months after `from` (day clamped to the month's length).
    let shift = |k: i64| {
        let idx = y1 * 12 + m1 as i64 - 1 + k;
        let (y, m) = (idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32);
        days_from_civil(y, m, d1.min(days_in_month(y, m)))
    };
    let (start, next) = (shift(n), shift(n + 1));
    let frac = (to.floor() as i64 - start) as f64 / (next - start).max(1) as f64;
    n as f64 + frac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random bit patterns (xorshift64), the same for every run.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn fixed_decimals_match_the_standard_formatting_ties_included() {
        let mut next = xorshift(7);
        let mut values = vec![
            0.0,
            -0.0,
            0.05,
            12.25,
            -12.25,
            0.125,
            2.5,
            3.5,
            -0.01,
            1e-9,
            5.000000000000001,
            0.1 + 0.2,
            99.95,
            999_999_999_999.5,
            1e12,
            1e15,
            f64::NAN,
            f64::INFINITY,
            -1e300,
        ];
        for _ in 0..20_000 {
            let r = next();
            // Plain fractions, exact ties at each precision, and raw bit patterns.
            values.push((r % 2_000_000) as f64 / 1000.0 - 1000.0);
            values.push((r % 20_000) as f64 / 8.0 - 1000.0);
            values.push(f64::from_bits(r));
        }
        for x in values {
            for d in 0..5 {
                let mut s = String::new();
                write_fixed(&mut s, x, d).unwrap();
                assert_eq!(s, format!("{x:.d$}"), "{x:e} to {d} decimals");
            }
        }
    }

    /// The number rule as first written with `{}` alone, which the fast paths must match.
    fn reference_number(n: f64) -> String {
        if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else if n.is_finite() && n.abs() < 1e12 {
            let r = (n * 1e6).round() / 1e6;
            if r.fract() == 0.0 {
                format!("{}", r as i64)
            } else {
                format!("{r}")
            }
        } else {
            format!("{n}")
        }
    }

    #[test]
    fn numbers_write_as_the_standard_formatting_of_the_rounded_value() {
        let mut next = xorshift(11);
        let mut values = vec![
            0.1 + 0.2,
            1e-5,
            -1e-5,
            0.000_015,
            9.99e-6,
            1e-6,
            0.000_001_4,
            0.233_300_020_852_977_16,
            13_431_921_382.869_999,
            999_999_999_999.9,
            1e16,
            123_456_789.123_456_7,
            -0.5,
            f64::NAN,
            f64::NEG_INFINITY,
        ];
        for _ in 0..50_000 {
            let r = next();
            let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
            // Money with cents, shares, tiny rates, large sums, and raw bit patterns.
            values.push((r % 100_000_000) as f64 / 100.0);
            values.push(unit);
            values.push(unit * 1e-4);
            values.push(-unit * 1e11);
            values.push(unit * 1e7);
            values.push(f64::from_bits(r));
        }
        for n in values {
            let mut s = String::new();
            write_number(&mut s, n).unwrap();
            assert_eq!(s, reference_number(n), "{n:e}");
        }
    }

    #[test]
    fn dates_and_numbers_write_as_they_format() {
        let reference = |days: f64| {
            let whole = days.floor();
            let (y, m, d) = civil_from_days(whole as i64);
            let minutes = ((days - whole) * 1440.0).round() as i64;
            if minutes == 0 {
                format!("{y:04}-{m:02}-{d:02}")
            } else if minutes >= 1440 {
                let (y, m, d) = civil_from_days(whole as i64 + 1);
                format!("{y:04}-{m:02}-{d:02}")
            } else {
                format!(
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}",
                    minutes / 60,
                    minutes % 60
                )
            }
        };
        for days in [
            -800_000.0,
            -719_468.0,
            -1.5,
            0.0,
            0.25,
            0.9999,
            0.99999999,
            20_784.0,
            20_784.5,
            2_932_896.0,
            2_932_897.0,
            3_000_000.75,
        ] {
            assert_eq!(format_date(days), reference(days), "{days}");
        }
        for n in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            0.1 + 0.2,
            1e14,
            1e15,
            1e12 + 0.5,
            1e-7,
            f64::NAN,
        ] {
            assert_eq!(format_number(n), reference_number(n), "{n}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 59, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
    }

    #[test]
    fn excel_serials() {
        // 45943 is 2025-10-13 in the 1900 system.
        assert_eq!(
            format_date(excel_serial_to_days(45_943.0, false)),
            "2025-10-13"
        );
        // The same day is 44481 in the 1904 system.
        assert_eq!(
            format_date(excel_serial_to_days(44_481.0, true)),
            "2025-10-13"
        );
        assert_eq!(
            format_date(excel_serial_to_days(45_943.5, false)),
            "2025-10-13 12:00"
        );
        assert_eq!(days_to_excel_serial(0.0), 25_569.0);
    }

    #[test]
    fn quarters_and_validity() {
        assert_eq!(quarter_of(days_from_civil(2026, 3, 31) as f64), "2026-Q1");
        assert_eq!(quarter_of(days_from_civil(2026, 4, 1) as f64), "2026-Q2");
        assert!(is_valid_civil(2024, 2, 29));
        assert!(!is_valid_civil(2025, 2, 29));
        assert!(!is_valid_civil(2025, 13, 1));
    }

    #[test]
    fn numbers_print_plainly() {
        assert_eq!(format_number(17_850.0), "17850");
        assert_eq!(format_number(0.125), "0.125");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(520_336.389_999_999_96), "520336.39");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
    }

    #[test]
    fn business_days_skip_weekends() {
        let fri = days_from_civil(2026, 11, 27) as f64;
        assert_eq!(weekday(fri), 4);
        assert_eq!(business_days_between(fri, fri), 0.0);
        assert_eq!(business_days_between(fri, fri + 1.0), 0.0); // Saturday
        assert_eq!(business_days_between(fri, fri + 3.0), 1.0); // Monday
        assert_eq!(business_days_between(fri, fri + 4.0), 2.0);
        assert_eq!(business_days_between(fri, fri + 17.0), 11.0);
        assert_eq!(business_days_between(fri + 3.0, fri), -1.0);
        // Times of day do not count.
        assert_eq!(business_days_between(fri + 0.9, fri + 3.1), 1.0);
    }

    #[test]
    fn months_count_calendar_months() {
        let d = |y, m, dd| days_from_civil(y, m, dd) as f64;
        assert_eq!(months_between(d(2025, 9, 1), d(2026, 6, 1)), 9.0);
        assert_eq!(months_between(d(2025, 10, 1), d(2026, 6, 1)), 8.0);
        assert!((months_between(d(2025, 9, 1), d(2026, 6, 15)) - 9.0 - 14.0 / 30.0).abs() < 1e-9);
        assert_eq!(months_between(d(2026, 5, 31), d(2026, 6, 30)), 1.0);
        assert!(months_between(d(2026, 5, 31), d(2026, 6, 29)) < 1.0);
        assert_eq!(months_between(d(2026, 1, 31), d(2026, 2, 28)), 1.0);
        assert_eq!(months_between(d(2026, 6, 1), d(2026, 3, 1)), -3.0);
    }
}
