//! A small arithmetic expression language shared by mapping files (derived fields).
//!
//! Grammar: numbers, field names, `+ - * /`, unary minus, parentheses and the functions
//! `min`, `max`, `abs`, `round(x[, digits])` and `coalesce(a, b, …)`. A missing field makes the
//! result missing (except inside `coalesce`); division by zero is missing too.

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal number.
    Num(f64),
    /// A field reference, resolved to a slot by [`Expr::resolve`].
    Field(String, usize),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
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
}

const FUNCS: &[(&str, Func)] = &[
    ("min", Func::Min),
    ("max", Func::Max),
    ("abs", Func::Abs),
    ("round", Func::Round),
    ("coalesce", Func::Coalesce),
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
    Ident(String),
    Sym(char),
}

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
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text.parse().map_err(|_| ParseError {
                message: format!("`{text}` is not a number"),
                offset: start,
                len: i - start,
            })?;
            out.push((Tok::Num(n), start, i - start));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((
                Tok::Ident(chars[start..i].iter().collect()),
                start,
                i - start,
            ));
        } else if "+-*/(),".contains(c) {
            out.push((Tok::Sym(c), i, 1));
            i += 1;
        } else {
            return Err(ParseError {
                message: format!("unexpected character `{c}`"),
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
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.term()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.term()?));
        }
    }
    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat('-') {
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
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if self.eat('(') {
                    let Some(func) = FUNCS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f) else {
                        self.pos -= 2;
                        let names = FUNCS.iter().map(|(n, _)| *n);
                        let hint = crate::diag::did_you_mean(&name, names)
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return self.err(format!("unknown function `{name}`{hint}"));
                    };
                    let mut args = Vec::new();
                    if !self.eat(')') {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(')') {
                                break;
                            }
                            if !self.eat(',') {
                                return self.err("expected `,` or `)`");
                            }
                        }
                    }
                    let ok = match func {
                        Func::Abs => args.len() == 1,
                        Func::Round => (1..=2).contains(&args.len()),
                        Func::Min | Func::Max | Func::Coalesce => !args.is_empty(),
                    };
                    if !ok {
                        return self.err(format!("wrong number of arguments to `{name}`"));
                    }
                    Ok(Expr::Call(func, args))
                } else {
                    Ok(Expr::Field(name, usize::MAX))
                }
            }
            Some(Tok::Sym('(')) => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(')') {
                    return self.err("expected `)`");
                }
                Ok(e)
            }
            Some(Tok::Sym(c)) => self.err(format!("unexpected `{c}`")),
            None => self.err("the expression ends too early"),
        }
    }
}

impl fmt::Display for Expr {
    /// Writes the expression back in the language's syntax, fully parenthesised where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Field(name, _) => f.write_str(name),
            Expr::Neg(e) => write!(f, "-{}", Paren(e)),
            Expr::Bin(op, a, b) => {
                let sym = match op {
                    Op::Add => "+",
                    Op::Sub => "-",
                    Op::Mul => "*",
                    Op::Div => "/",
                };
                write!(f, "{} {sym} {}", Paren(a), Paren(b))
            }
            Expr::Call(func, args) => {
                let name = FUNCS
                    .iter()
                    .find(|(_, g)| g == func)
                    .map_or("?", |(n, _)| n);
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                write!(f, "{name}({})", args.join(", "))
            }
        }
    }
}

/// Parenthesises a binary sub-expression when printing.
struct Paren<'a>(&'a Expr);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Bin(..) => write!(f, "({})", self.0),
            e => write!(f, "{e}"),
        }
    }
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
        let e = p.expr()?;
        if p.pos != p.toks.len() {
            return p.err("unexpected text after the expression");
        }
        Ok(e)
    }

    /// Field names the expression reads, in order of appearance.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Field(n, _) = e {
                out.push(n.as_str());
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Neg(e) => e.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            Expr::Num(_) | Expr::Field(..) => {}
        }
    }

    /// Binds every field name to a slot; returns the first name `slot_of` does not know.
    pub fn resolve(&mut self, slot_of: &impl Fn(&str) -> Option<usize>) -> Result<(), String> {
        match self {
            Expr::Field(name, slot) => {
                *slot = slot_of(name).ok_or_else(|| name.clone())?;
                Ok(())
            }
            Expr::Neg(e) => e.resolve(slot_of),
            Expr::Bin(_, a, b) => {
                a.resolve(slot_of)?;
                b.resolve(slot_of)
            }
            Expr::Call(_, args) => args.iter_mut().try_for_each(|a| a.resolve(slot_of)),
            Expr::Num(_) => Ok(()),
        }
    }

    /// Evaluates with resolved slots; `None` is a missing value.
    pub fn eval(&self, get: &impl Fn(usize) -> Option<f64>) -> Option<f64> {
        match self {
            Expr::Num(n) => Some(*n),
            Expr::Field(_, slot) => get(*slot),
            Expr::Neg(e) => e.eval(get).map(|v| -v),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(get)?, b.eval(get)?);
                let v = match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div if b == 0.0 => return None,
                    Op::Div => a / b,
                };
                v.is_finite().then_some(v)
            }
            Expr::Call(func, args) => match func {
                Func::Coalesce => args.iter().find_map(|a| a.eval(get)),
                Func::Abs => args[0].eval(get).map(f64::abs),
                Func::Round => {
                    let x = args[0].eval(get)?;
                    let digits = match args.get(1) {
                        Some(d) => d.eval(get)?.clamp(0.0, 12.0) as i32,
                        None => 0,
                    };
                    let k = 10f64.powi(digits);
                    Some((x * k).round() / k)
                }
                Func::Min | Func::Max => {
                    let vals: Option<Vec<f64>> = args.iter().map(|a| a.eval(get)).collect();
                    let vals = vals?;
                    let it = vals.into_iter();
                    if *func == Func::Min {
                        it.reduce(f64::min)
                    } else {
                        it.reduce(f64::max)
                    }
                }
            },
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
        e.eval(&|i| vals[i].1)
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
    fn syntax_errors_point_at_the_problem() {
        let e = Expr::parse("amount - * cost").unwrap_err();
        assert_eq!((e.message.as_str(), e.offset), ("unexpected `*`", 9));
        let e = Expr::parse("sumn(a)").unwrap_err();
        assert_eq!(e.message, "unknown function `sumn`");
        let e = Expr::parse("mx(a)").unwrap_err();
        assert_eq!(e.message, "unknown function `mx`; did you mean `max`?");
        assert_eq!(Expr::parse("(a + b").unwrap_err().message, "expected `)`");
        assert_eq!(
            Expr::parse("a $ b").unwrap_err().message,
            "unexpected character `$`"
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
    }

    #[test]
    fn unknown_fields_are_reported() {
        let mut e = Expr::parse("amount - costs").unwrap();
        assert_eq!(e.fields(), vec!["amount", "costs"]);
        assert_eq!(
            e.resolve(&|n| (n == "amount").then_some(0)),
            Err("costs".to_string())
        );
    }
}
