//! Numbers, money, percentages and dates written the way a reader of each language expects.

use crate::model::value::civil_from_days;

/// A report language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English: `1,234,567.8`, `25.0 %`, `2026-03-10`.
    En,
    /// Russian: `1 234 567,8` (no-break spaces), `25,0 %`, `10.03.2026`.
    Ru,
}

impl Locale {
    /// The locale of a `--lang` code (`en`, `ru`).
    pub fn from_code(code: &str) -> Option<Locale> {
        match code {
            "en" => Some(Locale::En),
            "ru" => Some(Locale::Ru),
            _ => None,
        }
    }

    /// The language code.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Ru => "ru",
        }
    }

    fn separators(self) -> (&'static str, char) {
        match self {
            Locale::En => (",", '.'),
            Locale::Ru => ("\u{a0}", ','),
        }
    }

    /// A number with `decimals` digits after the point and grouped thousands.
    pub fn number(self, x: f64, decimals: usize) -> String {
        if !x.is_finite() {
            return "—".to_string();
        }
        // As `format!("{:.*}", decimals, x.abs())`, without its slow exact path.
        let mut text = String::with_capacity(24);
        let _ = crate::model::value::write_fixed(&mut text, x.abs(), decimals);
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text.as_str(), None),
        };
        let (group, point) = self.separators();
        let mut out = String::new();
        let negative = x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
        if negative {
            out.push('-');
        }
        let digits = int.as_bytes();
        for (i, d) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(group);
            }
            out.push(*d as char);
        }
        if let Some(f) = frac {
            out.push(point);
            out.push_str(f);
        }
        out
    }

    /// Money: whole units with grouped thousands.
    pub fn money(self, x: f64) -> String {
        self.number(x, 0)
    }

    /// A fraction as a percentage with one decimal (`0.25` → `25.0 %`).
    pub fn percent(self, x: f64) -> String {
        format!("{}\u{a0}%", self.number(x * 100.0, 1))
    }

    /// A signed change: `+1.5 pp` for shares, `+1,200` for amounts.
    pub fn delta(self, x: f64, kind: &str) -> String {
        let sign = if x > 0.0 { "+" } else { "" };
        match kind {
            "pct" | "share" => {
                let unit = match self {
                    Locale::En => "pp",
                    Locale::Ru => "п.\u{a0}п.",
                };
                format!("{sign}{}\u{a0}{unit}", self.number(x * 100.0, 1))
            }
            _ => format!("{sign}{}", self.number(x, 0)),
        }
    }

    /// The plural form a count takes before a noun: `"one"` (en: 1; ru: 1, 21, 101 …), `"few"`
    /// (ru: 2–4, 22–24 …) or `"many"` (everything else, fractions included). Language files
    /// hold the forms as `key_one`, `key_few` and `key` (see the `plural` filter).
    pub fn plural_form(self, n: f64) -> &'static str {
        if !n.is_finite() || n.fract() != 0.0 {
            return "many";
        }
        let n = n.abs() as u64;
        match self {
            Locale::En if n == 1 => "one",
            Locale::En => "many",
            Locale::Ru => match (n % 10, n % 100) {
                (1, r) if r != 11 => "one",
                (2..=4, r) if !(12..=14).contains(&r) => "few",
                _ => "many",
            },
        }
    }

    /// A date from kam's day number (days since 1970-01-01, as in the model).
    pub fn date(self, days: f64) -> String {
        if !days.is_finite() {
            return "—".to_string();
        }
        let (y, m, d) = civil_from_days(days.floor() as i64);
        match self {
            Locale::En => format!("{y:04}-{m:02}-{d:02}"),
            Locale::Ru => format!("{d:02}.{m:02}.{y:04}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_per_locale() {
        assert_eq!(Locale::En.number(1234567.891, 1), "1,234,567.9");
        assert_eq!(Locale::Ru.number(1234567.891, 1), "1\u{a0}234\u{a0}567,9");
        assert_eq!(Locale::En.money(-1500.4), "-1,500");
        assert_eq!(Locale::En.money(-0.2), "0");
        assert_eq!(Locale::En.percent(0.25), "25.0\u{a0}%");
        assert_eq!(Locale::Ru.percent(0.25), "25,0\u{a0}%");
        assert_eq!(Locale::En.delta(0.015, "pct"), "+1.5\u{a0}pp");
        assert_eq!(Locale::En.delta(-1200.0, "money"), "-1,200");
        assert_eq!(Locale::En.number(f64::NAN, 0), "—");
    }

    #[test]
    fn plural_forms_per_locale() {
        let forms =
            |l: Locale, ns: &[f64]| ns.iter().map(|&n| l.plural_form(n)).collect::<Vec<_>>();
        assert_eq!(
            forms(Locale::En, &[0.0, 1.0, 2.0, 21.0, 1.5]),
            ["many", "one", "many", "many", "many"]
        );
        assert_eq!(
            forms(
                Locale::Ru,
                &[
                    1.0, 2.0, 4.0, 5.0, 11.0, 12.0, 14.0, 21.0, 22.0, 25.0, 101.0, 111.0, 0.0, 1.5
                ]
            ),
            [
                "one", "few", "few", "many", "many", "many", "many", "one", "few", "many", "one",
                "many", "many", "many"
            ]
        );
    }
}
