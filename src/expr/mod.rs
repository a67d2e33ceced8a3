//! kam's expression language, shared by mapping files (derived fields) and rule packs
//! (conditions, measures, points).
//!
//! ```text
//! gross_profit / portfolio.total_gross_profit > key_share and level == 'company'
//! coalesce(margin, amount - cost, 0)
//! industry in ['Retail', 'Finance'] or not known(wallet)
//! ```
//!
//! Values are numbers, text, yes/no and *missing*. A missing input makes arithmetic and
//! comparisons missing ("not known"), `and`/`or` follow three-valued logic (`false and missing`
//! is `false`), and `known(x)`, `coalesce(…)` and `if(…)` handle missing values explicitly.
//! Mixing types (`'a' + 1`) is an error, reported for the account it happened on.

use std::borrow::Cow;
use std::fmt;

pub mod typed;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum V<'a> {
    /// Not known.
    Missing,
    /// A number.
    Num(f64),
    /// Yes/no.
    Bool(bool),
    /// Text.
    Str(Cow<'a, str>),
}

impl V<'_> {
    /// The same value, owning its text.
    pub fn into_owned(self) -> V<'static> {
        match self {
            V::Missing => V::Missing,
            V::Num(n) => V::Num(n),
            V::Bool(b) => V::Bool(b),
            V::Str(s) => V::Str(Cow::Owned(s.into_owned())),
        }
    }

    /// The type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            V::Missing => "missing",
            V::Num(_) => "number",
            V::Bool(_) => "yes/no",
            V::Str(_) => "text",
        }
    }

    /// The number, if this is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for V<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V::Missing => f.write_str("not known"),
            V::Num(n) => f.write_str(&crate::model::value::format_number(*n)),
            V::Bool(b) => f.write_str(if *b { "yes" } else { "no" }),
            V::Str(s) => write!(f, "'{s}'"),
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal number.
    Num(f64),
    /// A literal text.
    Str(String),
    /// A literal yes/no.
    Bool(bool),
    /// A name (`wallet`, `key_share`, `portfolio.hhi`), bound to a slot by [`Expr::resolve`].
    Field(String, usize),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `not`.
    Not(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
    /// `x in [a, b, …]`.
    In(Box<Expr>, Vec<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `and`
    And,
    /// `or`
    Or,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::And => "and",
            Op::Or => "or",
        }
    }
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Smallest argument.
    Min,
    /// Largest argument.
    Max,
    /// Absolute value.
    Abs,
    /// Round to `digits` decimals (default 0).
    Round,
    /// First argument that is not missing.
    Coalesce,
    /// True when the argument is not missing.
    Known,
    /// `if(condition, then, else)`; a missing condition gives missing.
    If,
    /// `contains(text, part)`, ignoring case.
    Contains,
    /// `days(from, to)`: days between two dates (fractions for times of day).
    Days,
    /// `business_days(from, to)`: Monday–Friday days after `from` up to `to`.
    BusinessDays,
    /// `months(from, to)`: calendar months between two dates, with a fraction.
    Months,
    /// `minutes(from, to)`: minutes between two date-times.
    Minutes,
}

/// The functions by name, with their argument counts (min, max).
pub const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("min", Func::Min, 1, usize::MAX),
    ("max", Func::Max, 1, usize::MAX),
    ("abs", Func::Abs, 1, 1),
    ("round", Func::Round, 1, 2),
    ("coalesce", Func::Coalesce, 1, usize::MAX),
    ("known", Func::Known, 1, 1),
    ("if", Func::If, 3, 3),
    ("contains", Func::Contains, 2, 2),
    ("days", Func::Days, 2, 2),
    ("business_days", Func::BusinessDays, 2, 2),
    ("months", Func::Months, 2, 2),
    ("minutes", Func::Minutes, 2, 2),
];

/// A syntax error: message and 0-based character offset in the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Character offset of the problem.
    pub offset: usize,
    /// Length of the offending token (at least 1).
    pub len: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

const SYMBOLS: &[&str] = &[
    "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", ",", "[", "]",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let n = text.parse().map_err(|_| ParseError {
                message: format!("`{text}` is not a number"),
                offset: start,
                len: i - start,
            })?;
            out.push((Tok::Num(n), start, i - start));
        } else if c == '\'' || c == '"' {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(ParseError {
                    message: "text without its closing quote".into(),
                    offset: start,
                    len: 1,
                });
            }
            i += 1;
            out.push((Tok::Str(s), start, i - start));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push((
                Tok::Ident(chars[start..i].iter().collect()),
                start,
                i - start,
            ));
        } else if let Some(sym) = SYMBOLS.iter().find(|s| {
            let n = s.chars().count();
            chars[i..].iter().take(n).copied().eq(s.chars())
        }) {
            out.push((Tok::Sym(sym), i, sym.len()));
            i += sym.len();
        } else {
            let hint = match c {
                '=' => "; compare with `==`",
                '&' => "; write `and`",
                '|' => "; write `or`",
                '!' => "; write `not`",
                _ => "",
            };
            return Err(ParseError {
                message: format!("unexpected character `{c}`{hint}"),
                offset: i,
                len: 1,
            });
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn here(&self) -> (usize, usize) {
        self.toks
            .get(self.pos)
            .map(|t| (t.1, t.2))
            .unwrap_or((self.end, 1))
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let (offset, len) = self.here();
        Err(ParseError {
            message: message.into(),
            offset,
            len,
        })
    }
    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.and()?;
        while self.eat_word("or") {
            lhs = Expr::Bin(Op::Or, Box::new(lhs), Box::new(self.and()?));
        }
        Ok(lhs)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.not()?;
        while self.eat_word("and") {
            lhs = Expr::Bin(Op::And, Box::new(lhs), Box::new(self.not()?));
        }
        Ok(lhs)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let lhs = self.add()?;
        if self.eat_word("in") {
            if !self.eat("[") {
                return self.err("expected `[` after `in`");
            }
            let mut items = Vec::new();
            if !self.eat("]") {
                loop {
                    items.push(self.add()?);
                    if self.eat("]") {
                        break;
                    }
                    if !self.eat(",") {
                        return self.err("expected `,` or `]`");
                    }
                }
            }
            return Ok(Expr::In(Box::new(lhs), items));
        }
        for (sym, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(sym) {
                return Ok(Expr::Bin(op, Box::new(lhs), Box::new(self.add()?)));
            }
        }
        Ok(lhs)
    }
    fn add(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.mul()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.mul()?));
        }
    }
    fn mul(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Num(n))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Str(s))
            }
            Some(Tok::Ident(name)) if matches!(name.as_str(), "and" | "or" | "in") => {
                self.err(format!("unexpected `{name}`"))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" | "yes" => return Ok(Expr::Bool(true)),
                    "false" | "no" => return Ok(Expr::Bool(false)),
                    _ => {}
                }
                if self.eat("(") {
                    let Some(&(_, func, lo, hi)) = FUNCS.iter().find(|(n, ..)| *n == name) else {
                        self.pos -= 2;
                        let hint = crate::diag::did_you_mean(&name, FUNCS.iter().map(|f| f.0))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return self.err(format!("unknown function `{name}`{hint}"));
                    };
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat(")") {
                                break;
                            }
                            if !self.eat(",") {
                                return self.err("expected `,` or `)`");
                            }
                        }
                    }
                    if args.len() < lo || args.len() > hi {
                        return self.err(format!("wrong number of arguments to `{name}`"));
                    }
                    Ok(Expr::Call(func, args))
                } else {
                    Ok(Expr::Field(name, usize::MAX))
                }
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat(")") {
                    return self.err("expected `)`");
                }
                Ok(e)
            }
            Some(Tok::Sym(c)) => self.err(format!("unexpected `{c}`")),
            None => self.err("the expression ends too early"),
        }
    }
}

/// An error while evaluating (a type mismatch); reported per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn type_error(op: &str, a: &V<'_>, b: &V<'_>) -> EvalError {
    EvalError(format!(
        "cannot apply `{op}` to {} {a} and {} {b}",
        a.type_name(),
        b.type_name()
    ))
}

impl Expr {
    /// Parses an expression.
    pub fn parse(src: &str) -> Result<Expr, ParseError> {
        let toks = lex(src)?;
        let mut p = Parser {
            toks,
            pos: 0,
            end: src.chars().count(),
        };
        let e = p.or()?;
        if p.pos != p.toks.len() {
            return p.err("unexpected text after the expression");
        }
        Ok(e)
    }

    /// Names the expression reads, in order of appearance (repeats kept).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Field(n, _) = e {
                out.push(n.as_str());
            }
        });
        out
    }

    /// The bound slots the expression reads, first occurrence first, without repeats.
    pub fn slots(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Field(_, slot) = e
                && !out.contains(slot)
            {
                out.push(*slot);
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Neg(e) | Expr::Not(e) => e.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::In(a, items) => {
                a.walk(f);
                items.iter().for_each(|i| i.walk(f));
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) | Expr::Field(..) => {}
        }
    }

    /// Binds every name to a slot; returns the first name `slot_of` does not know.
    pub fn resolve(&mut self, slot_of: &impl Fn(&str) -> Option<usize>) -> Result<(), String> {
        match self {
            Expr::Field(name, slot) => {
                *slot = slot_of(name).ok_or_else(|| name.clone())?;
                Ok(())
            }
            Expr::Neg(e) | Expr::Not(e) => e.resolve(slot_of),
            Expr::Bin(_, a, b) => {
                a.resolve(slot_of)?;
                b.resolve(slot_of)
            }
            Expr::In(a, items) => {
                a.resolve(slot_of)?;
                items.iter_mut().try_for_each(|i| i.resolve(slot_of))
            }
            Expr::Call(_, args) => args.iter_mut().try_for_each(|a| a.resolve(slot_of)),
            Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => Ok(()),
        }
    }

    /// Evaluates to a number with resolved slots (mapping files): anything but a number is
    /// missing.
    pub fn eval_number(&self, get: &impl Fn(usize) -> Option<f64>) -> Option<f64> {
        self.eval(&|i| get(i).map_or(V::Missing, V::Num))
            .ok()
            .and_then(|v| v.num())
    }

    /// Evaluates with resolved slots.
    pub fn eval<'a>(&'a self, get: &impl Fn(usize) -> V<'a>) -> Result<V<'a>, EvalError> {
        Ok(match self {
            Expr::Num(n) => V::Num(*n),
            Expr::Str(s) => V::Str(Cow::Borrowed(s)),
            Expr::Bool(b) => V::Bool(*b),
            Expr::Field(_, slot) => get(*slot),
            Expr::Neg(e) => match e.eval(get)? {
                V::Num(n) => V::Num(-n),
                V::Missing => V::Missing,
                other => {
                    return Err(EvalError(format!(
                        "cannot negate {} {other}",
                        other.type_name()
                    )));
                }
            },
            Expr::Not(e) => match e.eval(get)? {
                V::Bool(b) => V::Bool(!b),
                V::Missing => V::Missing,
                other => {
                    return Err(EvalError(format!(
                        "`not` needs yes/no, not {} {other}",
                        other.type_name()
                    )));
                }
            },
            Expr::Bin(Op::And, a, b) => match (a.eval(get)?, b.eval(get)?) {
                (V::Bool(false), _) | (_, V::Bool(false)) => V::Bool(false),
                (V::Bool(true), V::Bool(true)) => V::Bool(true),
                (V::Missing | V::Bool(true), V::Missing | V::Bool(true)) => V::Missing,
                (x, y) => return Err(type_error("and", &x, &y)),
            },
            Expr::Bin(Op::Or, a, b) => match (a.eval(get)?, b.eval(get)?) {
                (V::Bool(true), _) | (_, V::Bool(true)) => V::Bool(true),
                (V::Bool(false), V::Bool(false)) => V::Bool(false),
                (V::Missing | V::Bool(false), V::Missing | V::Bool(false)) => V::Missing,
                (x, y) => return Err(type_error("or", &x, &y)),
            },
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(get)?, b.eval(get)?);
                binary(*op, x, y)?
            }
            Expr::In(a, items) => {
                let x = a.eval(get)?;
                if x == V::Missing {
                    return Ok(V::Missing);
                }
                let mut any_missing = false;
                for item in items {
                    match binary(Op::Eq, x.clone(), item.eval(get)?)? {
                        V::Bool(true) => return Ok(V::Bool(true)),
                        V::Missing => any_missing = true,
                        _ => {}
                    }
                }
                if any_missing {
                    V::Missing
                } else {
                    V::Bool(false)
                }
            }
            Expr::Call(func, args) => call(*func, args, get)?,
        })
    }
}

fn binary<'a>(op: Op, x: V<'a>, y: V<'a>) -> Result<V<'a>, EvalError> {
    if x == V::Missing || y == V::Missing {
        return Ok(V::Missing);
    }
    Ok(match (op, &x, &y) {
        (Op::Add, V::Num(a), V::Num(b)) => finite(a + b),
        (Op::Sub, V::Num(a), V::Num(b)) => finite(a - b),
        (Op::Mul, V::Num(a), V::Num(b)) => finite(a * b),
        (Op::Div, V::Num(_), V::Num(b)) if *b == 0.0 => V::Missing,
        (Op::Div, V::Num(a), V::Num(b)) => finite(a / b),
        (Op::Eq | Op::Ne, V::Num(a), V::Num(b)) => V::Bool((a == b) == (op == Op::Eq)),
        (Op::Eq | Op::Ne, V::Str(a), V::Str(b)) => V::Bool((a == b) == (op == Op::Eq)),
        (Op::Eq | Op::Ne, V::Bool(a), V::Bool(b)) => V::Bool((a == b) == (op == Op::Eq)),
        (Op::Lt, V::Num(a), V::Num(b)) => V::Bool(a < b),
        (Op::Le, V::Num(a), V::Num(b)) => V::Bool(a <= b),
        (Op::Gt, V::Num(a), V::Num(b)) => V::Bool(a > b),
        (Op::Ge, V::Num(a), V::Num(b)) => V::Bool(a >= b),
        _ => return Err(type_error(op.symbol(), &x, &y)),
    })
}

fn finite<'a>(v: f64) -> V<'a> {
    if v.is_finite() { V::Num(v) } else { V::Missing }
}

fn call<'a>(
    func: Func,
    args: &'a [Expr],
    get: &impl Fn(usize) -> V<'a>,
) -> Result<V<'a>, EvalError> {
    let num_arg = |i: usize| -> Result<Option<f64>, EvalError> {
        match args[i].eval(get)? {
            V::Num(n) => Ok(Some(n)),
            V::Missing => Ok(None),
            other => Err(EvalError(format!(
                "expected a number, got {} {other}",
                other.type_name()
            ))),
        }
    };
    Ok(match func {
        Func::Coalesce => {
            for a in args {
                let v = a.eval(get)?;
                if v != V::Missing {
                    return Ok(v);
                }
            }
            V::Missing
        }
        Func::Known => V::Bool(args[0].eval(get)? != V::Missing),
        Func::If => match args[0].eval(get)? {
            V::Bool(true) => args[1].eval(get)?,
            V::Bool(false) => args[2].eval(get)?,
            V::Missing => V::Missing,
            other => {
                return Err(EvalError(format!(
                    "`if` needs a yes/no condition, not {} {other}",
                    other.type_name()
                )));
            }
        },
        Func::Abs => num_arg(0)?.map_or(V::Missing, |x| V::Num(x.abs())),
        Func::Round => {
            let Some(x) = num_arg(0)? else {
                return Ok(V::Missing);
            };
            let digits = if args.len() > 1 {
                num_arg(1)?.unwrap_or(0.0).clamp(0.0, 12.0) as i32
            } else {
                0
            };
            let k = 10f64.powi(digits);
            V::Num((x * k).round() / k)
        }
        Func::Min | Func::Max => {
            let mut acc: Option<f64> = None;
            for i in 0..args.len() {
                let Some(x) = num_arg(i)? else {
                    return Ok(V::Missing);
                };
                acc = Some(match acc {
                    None => x,
                    Some(a) if func == Func::Min => a.min(x),
                    Some(a) => a.max(x),
                });
            }
            acc.map_or(V::Missing, V::Num)
        }
        Func::Days | Func::BusinessDays | Func::Months | Func::Minutes => {
            let (Some(a), Some(b)) = (num_arg(0)?, num_arg(1)?) else {
                return Ok(V::Missing);
            };
            use crate::model::value::{business_days_between, months_between};
            V::Num(match func {
                Func::Days => b - a,
                Func::BusinessDays => business_days_between(a, b),
                Func::Months => months_between(a, b),
                _ => ((b - a) * 1440.0 * 1e6).round() / 1e6,
            })
        }
        Func::Contains => match (args[0].eval(get)?, args[1].eval(get)?) {
            (V::Missing, _) | (_, V::Missing) => V::Missing,
            (V::Str(a), V::Str(b)) => V::Bool(a.to_lowercase().contains(&b.to_lowercase())),
            (x, y) => return Err(type_error("contains", &x, &y)),
        },
    })
}

impl fmt::Display for Expr {
    /// Writes the expression back in the language's syntax, parenthesising sub-operations.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Str(s) => write!(f, "'{s}'"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Field(name, _) => f.write_str(name),
            Expr::Neg(e) => write!(f, "-{}", Paren(e)),
            Expr::Not(e) => write!(f, "not {}", Paren(e)),
            Expr::Bin(op, a, b) => write!(f, "{} {} {}", Paren(a), op.symbol(), Paren(b)),
            Expr::In(a, items) => {
                let items: Vec<String> = items.iter().map(|a| a.to_string()).collect();
                write!(f, "{} in [{}]", Paren(a), items.join(", "))
            }
            Expr::Call(func, args) => {
                let name = FUNCS
                    .iter()
                    .find(|(_, g, ..)| g == func)
                    .map_or("?", |(n, ..)| n);
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                write!(f, "{name}({})", args.join(", "))
            }
        }
    }
}

/// Parenthesises a compound sub-expression when printing.
struct Paren<'a>(&'a Expr);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Bin(..) | Expr::In(..) | Expr::Not(..) => write!(f, "({})", self.0),
            e => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, vals: &[(&str, Option<f64>)]) -> Option<f64> {
        let mut e = Expr::parse(src).unwrap();
        e.resolve(&|n| vals.iter().position(|(k, _)| *k == n))
            .unwrap();
        e.eval_number(&|i| vals[i].1)
    }

    fn value(src: &str, vals: &[(&str, V<'static>)]) -> Result<V<'static>, EvalError> {
        let mut e = Expr::parse(src).unwrap();
        e.resolve(&|n| vals.iter().position(|(k, _)| *k == n))
            .unwrap();
        let e: &'static Expr = Box::leak(Box::new(e));
        e.eval(&|i| vals[i].1.clone())
    }

    #[test]
    fn arithmetic_and_precedence() {
        assert_eq!(
            eval(
                "quantity * unit_price",
                &[("quantity", Some(3.0)), ("unit_price", Some(2.5))]
            ),
            Some(7.5)
        );
        assert_eq!(
            eval(
                "amount - cost",
                &[("amount", Some(10.0)), ("cost", Some(4.0))]
            ),
            Some(6.0)
        );
        assert_eq!(eval("1 + 2 * 3 - -1", &[]), Some(8.0));
        assert_eq!(eval("(1 + 2) * 3 / 2", &[]), Some(4.5));
        assert_eq!(eval("round(2 / 3, 2)", &[]), Some(0.67));
        assert_eq!(eval("max(1, 5, 3) + min(2, 0) + abs(-1)", &[]), Some(6.0));
        assert_eq!(eval("1_000_000 / 4", &[]), Some(250_000.0));
    }

    #[test]
    fn missing_propagates_except_in_coalesce() {
        assert_eq!(
            eval("amount - cost", &[("amount", Some(10.0)), ("cost", None)]),
            None
        );
        assert_eq!(
            eval(
                "coalesce(margin, amount - cost, 0)",
                &[("margin", None), ("amount", Some(5.0)), ("cost", None)]
            ),
            Some(0.0)
        );
        assert_eq!(eval("1 / 0", &[]), None);
    }

    #[test]
    fn logic_is_three_valued() {
        let m = [
            ("x", V::Missing),
            ("t", V::Bool(true)),
            ("f", V::Bool(false)),
        ];
        assert_eq!(value("x > 1", &m), Ok(V::Missing));
        assert_eq!(value("f and x > 1", &m), Ok(V::Bool(false)));
        assert_eq!(value("t or x > 1", &m), Ok(V::Bool(true)));
        assert_eq!(value("t and x > 1", &m), Ok(V::Missing));
        assert_eq!(value("not known(x)", &m), Ok(V::Bool(true)));
        assert_eq!(value("if(t, 1, 2)", &m), Ok(V::Num(1.0)));
    }

    #[test]
    fn text_comparisons_and_in() {
        let v = [
            ("level", V::Str("company".into())),
            ("industry", V::Str("Retail".into())),
        ];
        assert_eq!(value("level == 'company'", &v), Ok(V::Bool(true)));
        assert_eq!(
            value("industry in ['Finance', \"Retail\"]", &v),
            Ok(V::Bool(true))
        );
        assert_eq!(value("contains(industry, 'ret')", &v), Ok(V::Bool(true)));
        assert_eq!(
            value("level + 1", &v),
            Err(EvalError(
                "cannot apply `+` to text 'company' and number 1".into()
            ))
        );
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let e = Expr::parse("amount - * cost").unwrap_err();
        assert_eq!((e.message.as_str(), e.offset), ("unexpected `*`", 9));
        assert_eq!(
            Expr::parse("sumn(a)").unwrap_err().message,
            "unknown function `sumn`"
        );
        assert_eq!(
            Expr::parse("mx(a)").unwrap_err().message,
            "unknown function `mx`; did you mean `max`?"
        );
        assert_eq!(Expr::parse("(a + b").unwrap_err().message, "expected `)`");
        assert_eq!(
            Expr::parse("a $ b").unwrap_err().message,
            "unexpected character `$`"
        );
        assert_eq!(
            Expr::parse("a = b").unwrap_err().message,
            "unexpected character `=`; compare with `==`"
        );
        assert_eq!(
            Expr::parse("'abc").unwrap_err().message,
            "text without its closing quote"
        );
    }

    #[test]
    fn prints_back_what_it_parsed() {
        let e = Expr::parse("amount - quantity*unit_cost + round(x/3, 2)").unwrap();
        assert_eq!(
            e.to_string(),
            "(amount - (quantity * unit_cost)) + round(x / 3, 2)"
        );
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e);
        let e = Expr::parse("a > 1 and not (b in ['x', 'y'])").unwrap();
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn unknown_fields_are_reported() {
        let mut e = Expr::parse("amount - costs + portfolio.hhi").unwrap();
        assert_eq!(e.fields(), vec!["amount", "costs", "portfolio.hhi"]);
        assert_eq!(
            e.resolve(&|n| (n == "amount").then_some(0)),
            Err("costs".to_string())
        );
    }
}
