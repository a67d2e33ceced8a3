//! Expressions compiled to typed nodes, for the loops that evaluate one expression millions of
//! times (the KAM metrics: every condition over every activity, contact and tender).
//!
//! When rules are bound, each name is known as a row field of a fixed type, a value fixed for
//! the run (a param) or something only known per row (an extra column). An expression whose
//! parts all have fixed, compatible types compiles to nodes that read fields straight from the
//! row as numbers, yes/no or text and never build a [`V`]; any other expression keeps the tree
//! walk of [`Expr::eval`]. Both give the same values: typed nodes cannot meet a type error,
//! because an expression that could is not compiled.
//!
//! Typed nodes also run over a block of rows at a time ([`Compiled::eval_block`] on a
//! [`Columns`]): one loop per node and field instead of one walk of the nodes per row.
//!
//! ```
//! use kam::expr::Expr;
//! use kam::expr::typed::{Compiled, Row, Slot, Ty};
//! use std::borrow::Cow;
//!
//! struct Meeting { minutes_late: Option<f64> }
//! impl<'a> Row<'a, u8> for Meeting {
//!     fn num(&self, _field: u8) -> Option<f64> { self.minutes_late }
//!     fn flag(&self, _field: u8) -> Option<bool> { None }
//!     fn text(&self, _field: u8) -> Option<Cow<'a, str>> { None }
//! }
//! let mut e = Expr::parse("minutes_late > late_minutes").unwrap();
//! e.resolve(&|n| ["minutes_late", "late_minutes"].iter().position(|x| *x == n)).unwrap();
//! let c = Compiled::new(&e, &|slot| match slot {
//!     0 => Slot::Field(Ty::Num, 0u8),
//!     _ => Slot::Const(kam::expr::V::Num(5.0)),
//! });
//! assert!(c.is_typed());
//! let v = c.eval(&Meeting { minutes_late: Some(6.0) }, &|_| unreachable!()).unwrap();
//! assert_eq!(v, kam::expr::V::Bool(true));
//! ```

use std::borrow::Cow;

use super::{EvalError, Expr, Func, Op, V};
use crate::model::value::{business_days_between, months_between};

/// The type a name always has, known when rules are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A number (dates are numbers of days).
    Num,
    /// Yes/no.
    Bool,
    /// Text.
    Text,
}

/// What a bound slot is, for [`Compiled::new`].
#[derive(Debug, Clone)]
pub enum Slot<K> {
    /// A field every row has, of one type, read through [`Row`] with its key.
    Field(Ty, K),
    /// A value fixed for the whole run (a param).
    Const(V<'static>),
    /// Known only per row (an extra column): the expression is evaluated by tree walk.
    Dynamic,
}

/// A row a compiled expression reads its fields from. Each method is called only with keys
/// declared of its type; a field with no value is `None`.
pub trait Row<'a, K> {
    /// A number field.
    fn num(&self, field: K) -> Option<f64>;
    /// A yes/no field.
    fn flag(&self, field: K) -> Option<bool>;
    /// A text field.
    fn text(&self, field: K) -> Option<Cow<'a, str>>;
}

/// A block of rows that compiled expressions read a column at a time ([`Compiled::eval_block`]):
/// each node runs one loop over the block instead of one call per row, so the walk over the
/// nodes and the choice of field are made once per block, not once per row. The provided
/// methods read each row through [`Columns::row`]; a table overrides them where it can read a
/// column more directly.
pub trait Columns<'a, K: Copy> {
    /// How one row of the block reads.
    type Row: Row<'a, K>;
    /// The number of rows in the block.
    fn rows(&self) -> usize;
    /// Row `i` of the block.
    fn row(&self, i: usize) -> Self::Row;
    /// Appends the number field `field` of every row to `out`.
    fn nums(&self, field: K, out: &mut Vec<Option<f64>>) {
        out.extend((0..self.rows()).map(|i| self.row(i).num(field)));
    }
    /// Appends the yes/no field `field` of every row to `out`.
    fn flags(&self, field: K, out: &mut Vec<Option<bool>>) {
        out.extend((0..self.rows()).map(|i| self.row(i).flag(field)));
    }
    /// Appends the text field `field` of every row to `out`.
    fn texts(&self, field: K, out: &mut Vec<Option<Cow<'a, str>>>) {
        out.extend((0..self.rows()).map(|i| self.row(i).text(field)));
    }
    /// Appends `test` of the text field `field` on every row to `out` (`None` where the field
    /// has no value) without reading the texts, when the block can: a field holding a few
    /// distinct values stored as codes tests each value once. Returns false, appending
    /// nothing, when it cannot; [`Columns::texts`] is read instead.
    fn text_test(
        &self,
        field: K,
        test: &dyn Fn(&str) -> bool,
        out: &mut Vec<Option<bool>>,
    ) -> bool {
        let _ = (field, test, out);
        false
    }
}

/// The values of a typed expression on every row of a block, in row order.
#[derive(Debug, Clone, PartialEq)]
pub enum Column<'a> {
    /// Yes/no (`None`: not known).
    Flags(Vec<Option<bool>>),
    /// Numbers.
    Nums(Vec<Option<f64>>),
    /// Texts.
    Texts(Vec<Option<Cow<'a, str>>>),
}

impl<'a> Column<'a> {
    /// The value on row `i` of the block, as [`Compiled::eval`] gives it.
    pub fn value(&self, i: usize) -> V<'a> {
        match self {
            Column::Flags(v) => v[i].map_or(V::Missing, V::Bool),
            Column::Nums(v) => v[i].map_or(V::Missing, V::Num),
            Column::Texts(v) => v[i].clone().map_or(V::Missing, V::Str),
        }
    }
}

/// An expression ready for a hot loop: typed nodes when every part's type is fixed, the tree
/// walk otherwise.
#[derive(Debug, Clone)]
pub struct Compiled<K> {
    typed: Option<Node<K>>,
    tree: Expr,
}

impl<K: Copy> Compiled<K> {
    /// Compiles a resolved expression; `slot` says what each slot is.
    pub fn new(e: &Expr, slot: &impl Fn(usize) -> Slot<K>) -> Compiled<K> {
        Compiled {
            typed: node(e, slot),
            tree: e.clone(),
        }
    }

    /// Whether the expression runs on typed nodes (else by tree walk).
    pub fn is_typed(&self) -> bool {
        self.typed.is_some()
    }

    /// Evaluates on a row: typed nodes read `row`; the tree walk reads `get` (the same values
    /// by slot).
    pub fn eval<'a>(
        &'a self,
        row: &impl Row<'a, K>,
        get: &impl Fn(usize) -> V<'a>,
    ) -> Result<V<'a>, EvalError> {
        match &self.typed {
            Some(n) => Ok(n.value(row)),
            None => self.tree.eval(get),
        }
    }

    /// Evaluates on every row of a block, a column at a time, with the values [`Compiled::eval`]
    /// gives row by row. `None` when the expression runs by tree walk: evaluate it per row.
    pub fn eval_block<'a>(&'a self, block: &impl Columns<'a, K>) -> Option<Column<'a>> {
        let n = block.rows();
        Some(match self.typed.as_ref()? {
            Node::B(b) => {
                let mut out = Vec::with_capacity(n);
                b.column(block, &mut out);
                Column::Flags(out)
            }
            Node::N(x) => {
                let mut out = Vec::with_capacity(n);
                x.column(block, &mut out);
                Column::Nums(out)
            }
            Node::T(t) => {
                let mut out = Vec::with_capacity(n);
                t.column(block, &mut out);
                Column::Texts(out)
            }
        })
    }
}

#[derive(Debug, Clone)]
enum Node<K> {
    B(B<K>),
    N(N<K>),
    T(T<K>),
}

/// A yes/no node.
#[derive(Debug, Clone)]
enum B<K> {
    Const(Option<bool>),
    Field(K),
    Not(Box<B<K>>),
    And(Box<B<K>>, Box<B<K>>),
    Or(Box<B<K>>, Box<B<K>>),
    Known(Box<Node<K>>),
    /// `==`, `!=`, `<`, `<=`, `>`, `>=` on numbers.
    Cmp(Op, Box<N<K>>, Box<N<K>>),
    /// `==` (true) or `!=` (false) on text.
    TextEq(bool, Box<T<K>>, Box<T<K>>),
    /// `==` (true) or `!=` (false) on yes/no.
    FlagEq(bool, Box<B<K>>, Box<B<K>>),
    TextIn(Box<T<K>>, Vec<T<K>>),
    NumIn(Box<N<K>>, Vec<N<K>>),
    Contains(Box<T<K>>, Box<T<K>>),
    If(Box<B<K>>, Box<B<K>>, Box<B<K>>),
    Coalesce(Vec<B<K>>),
    /// The common shapes, one node each: a number field against a number (`minutes_late >
    /// 15`), a text field equal or not to a text (`kind == 'meeting'`) or among texts.
    FieldCmp(Op, K, f64),
    FieldIs(bool, K, String),
    FieldIn(K, Vec<String>),
}

/// A number node.
#[derive(Debug, Clone)]
enum N<K> {
    Const(Option<f64>),
    Field(K),
    Neg(Box<N<K>>),
    /// `+`, `-`, `*`, `/`.
    Arith(Op, Box<N<K>>, Box<N<K>>),
    /// `days`, `business_days`, `months`, `minutes`.
    Dates(Func, Box<N<K>>, Box<N<K>>),
    Abs(Box<N<K>>),
    Round(Box<N<K>>, Option<Box<N<K>>>),
    /// `min` (true) or `max` (false).
    MinMax(bool, Vec<N<K>>),
    If(Box<B<K>>, Box<N<K>>, Box<N<K>>),
    Coalesce(Vec<N<K>>),
}

/// A text node.
#[derive(Debug, Clone)]
enum T<K> {
    Const(Option<String>),
    Field(K),
    If(Box<B<K>>, Box<T<K>>, Box<T<K>>),
    Coalesce(Vec<T<K>>),
}

fn node<K: Copy>(e: &Expr, slot: &impl Fn(usize) -> Slot<K>) -> Option<Node<K>> {
    let flag = |e: &Expr| match node(e, slot)? {
        Node::B(b) => Some(Box::new(b)),
        _ => None,
    };
    let num = |e: &Expr| match node(e, slot)? {
        Node::N(n) => Some(n),
        _ => None,
    };
    let text = |e: &Expr| match node(e, slot)? {
        Node::T(t) => Some(t),
        _ => None,
    };
    let nums = |args: &[Expr]| args.iter().map(num).collect::<Option<Vec<_>>>();
    Some(match e {
        Expr::Num(n) => Node::N(N::Const(Some(*n))),
        Expr::Str(s) => Node::T(T::Const(Some(s.clone()))),
        Expr::Bool(b) => Node::B(B::Const(Some(*b))),
        Expr::Field(_, i) => match slot(*i) {
            Slot::Field(Ty::Num, k) => Node::N(N::Field(k)),
            Slot::Field(Ty::Bool, k) => Node::B(B::Field(k)),
            Slot::Field(Ty::Text, k) => Node::T(T::Field(k)),
            Slot::Const(V::Num(n)) => Node::N(N::Const(Some(n))),
            Slot::Const(V::Bool(b)) => Node::B(B::Const(Some(b))),
            Slot::Const(V::Str(s)) => Node::T(T::Const(Some(s.into_owned()))),
            Slot::Const(V::Missing) | Slot::Dynamic => return None,
        },
        Expr::Neg(x) => Node::N(N::Neg(Box::new(num(x)?))),
        Expr::Not(x) => Node::B(B::Not(flag(x)?)),
        Expr::Bin(Op::And, x, y) => Node::B(B::And(flag(x)?, flag(y)?)),
        Expr::Bin(Op::Or, x, y) => Node::B(B::Or(flag(x)?, flag(y)?)),
        Expr::Bin(op @ (Op::Add | Op::Sub | Op::Mul | Op::Div), x, y) => {
            Node::N(N::Arith(*op, Box::new(num(x)?), Box::new(num(y)?)))
        }
        Expr::Bin(op @ (Op::Eq | Op::Ne), x, y) => {
            let eq = *op == Op::Eq;
            match (node(x, slot)?, node(y, slot)?) {
                (Node::N(a), Node::N(b)) => Node::B(cmp(*op, a, b)),
                (Node::T(T::Field(k)), Node::T(T::Const(Some(c)))) => Node::B(B::FieldIs(eq, k, c)),
                (Node::T(a), Node::T(b)) => Node::B(B::TextEq(eq, Box::new(a), Box::new(b))),
                (Node::B(a), Node::B(b)) => Node::B(B::FlagEq(eq, Box::new(a), Box::new(b))),
                _ => return None,
            }
        }
        Expr::Bin(op, x, y) => Node::B(cmp(*op, num(x)?, num(y)?)),
        Expr::In(x, items) => match node(x, slot)? {
            Node::N(a) => Node::B(B::NumIn(Box::new(a), nums(items)?)),
            Node::T(a) => {
                let items = items.iter().map(text).collect::<Option<Vec<_>>>()?;
                let consts: Option<Vec<String>> = items
                    .iter()
                    .map(|i| match i {
                        T::Const(Some(c)) => Some(c.clone()),
                        _ => None,
                    })
                    .collect();
                match (a, consts) {
                    (T::Field(k), Some(c)) => Node::B(B::FieldIn(k, c)),
                    (a, _) => Node::B(B::TextIn(Box::new(a), items)),
                }
            }
            Node::B(_) => return None,
        },
        Expr::Call(func, args) => {
            match func {
                Func::Known => Node::B(B::Known(Box::new(node(&args[0], slot)?))),
                Func::If => {
                    let c = flag(&args[0])?;
                    match (node(&args[1], slot)?, node(&args[2], slot)?) {
                        (Node::B(a), Node::B(b)) => Node::B(B::If(c, Box::new(a), Box::new(b))),
                        (Node::N(a), Node::N(b)) => Node::N(N::If(c, Box::new(a), Box::new(b))),
                        (Node::T(a), Node::T(b)) => Node::T(T::If(c, Box::new(a), Box::new(b))),
                        _ => return None,
                    }
                }
                Func::Coalesce => match node(&args[0], slot)? {
                    Node::B(_) => Node::B(B::Coalesce(
                        args.iter()
                            .map(|a| flag(a).map(|b| *b))
                            .collect::<Option<Vec<_>>>()?,
                    )),
                    Node::N(_) => Node::N(N::Coalesce(nums(args)?)),
                    Node::T(_) => Node::T(T::Coalesce(
                        args.iter().map(text).collect::<Option<Vec<_>>>()?,
                    )),
                },
                Func::Abs => Node::N(N::Abs(Box::new(num(&args[0])?))),
                Func::Round => Node::N(N::Round(
                    Box::new(num(&args[0])?),
                    match args.get(1) {
                        Some(d) => Some(Box::new(num(d)?)),
                        None => None,
                    },
                )),
                Func::Min | Func::Max => Node::N(N::MinMax(*func == Func::Min, nums(args)?)),
                Func::Days | Func::BusinessDays | Func::Months | Func::Minutes => Node::N(
                    N::Dates(*func, Box::new(num(&args[0])?), Box::new(num(&args[1])?)),
                ),
                Func::Contains => Node::B(B::Contains(
                    Box::new(text(&args[0])?),
                    Box::new(text(&args[1])?),
                )),
            }
        }
    })
}

/// A comparison of numbers, as one node when it is a field against a number.
fn cmp<K>(op: Op, a: N<K>, b: N<K>) -> B<K> {
    match (a, b) {
        (N::Field(k), N::Const(Some(c))) => B::FieldCmp(op, k, c),
        (a, b) => B::Cmp(op, Box::new(a), Box::new(b)),
    }
}

fn compare(op: Op, a: f64, b: f64) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        _ => a >= b,
    }
}

/// `a == b` for the short texts rules compare fields with (`kind == 'meeting'`), without a
/// call to `memcmp`: two overlapping word loads cover 4 to 16 bytes.
#[inline]
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let u64_at = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
    let u32_at = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap());
    match n {
        0..4 => a == b,
        4..8 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        _ => a == b,
    }
}

/// `a in [...]` as the tree walk does it: true at the first item equal to `a`, else not known
/// when an item is not known, else false.
fn is_in<T: PartialEq>(a: T, items: impl Iterator<Item = Option<T>>) -> Option<bool> {
    let mut any_missing = false;
    for item in items {
        match item {
            Some(b) if b == a => return Some(true),
            Some(_) => {}
            None => any_missing = true,
        }
    }
    (!any_missing).then_some(false)
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `and` on yes/no/not known: false wins, then not known.
fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// `or` on yes/no/not known: true wins, then not known.
fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// `+`, `-`, `*`, `/`: not known when the result is not a finite number.
fn arith(op: Op, a: f64, b: f64) -> Option<f64> {
    match op {
        Op::Add => finite(a + b),
        Op::Sub => finite(a - b),
        Op::Mul => finite(a * b),
        _ if b == 0.0 => None,
        _ => finite(a / b),
    }
}

/// Combines two columns of a block in place: `out[i] = f(out[i], other[i])`.
fn zip_with<T: Copy>(
    out: &mut [Option<T>],
    other: &[Option<T>],
    f: impl Fn(Option<T>, Option<T>) -> Option<T>,
) {
    for (o, x) in out.iter_mut().zip(other) {
        *o = f(*o, *x);
    }
}

impl<K: Copy> Node<K> {
    fn value<'a>(&'a self, row: &impl Row<'a, K>) -> V<'a> {
        match self {
            Node::B(b) => b.eval(row).map_or(V::Missing, V::Bool),
            Node::N(n) => n.eval(row).map_or(V::Missing, V::Num),
            Node::T(t) => t.eval(row).map_or(V::Missing, V::Str),
        }
    }

    fn known<'a>(&'a self, row: &impl Row<'a, K>) -> bool {
        match self {
            Node::B(b) => b.eval(row).is_some(),
            Node::N(n) => n.eval(row).is_some(),
            Node::T(t) => t.eval(row).is_some(),
        }
    }
}

impl<K: Copy> Node<K> {
    /// Whether the node is known on each row of the block.
    fn known_column<'a>(&'a self, block: &impl Columns<'a, K>, out: &mut Vec<Option<bool>>) {
        let n = block.rows();
        match self {
            Node::B(b) => {
                let mut v = Vec::with_capacity(n);
                b.column(block, &mut v);
                out.extend(v.iter().map(|x| Some(x.is_some())));
            }
            Node::N(x) => {
                let mut v = Vec::with_capacity(n);
                x.column(block, &mut v);
                out.extend(v.iter().map(|x| Some(x.is_some())));
            }
            Node::T(t) => {
                let mut v = Vec::with_capacity(n);
                t.column(block, &mut v);
                out.extend(v.iter().map(|x| Some(x.is_some())));
            }
        }
    }
}

impl<K: Copy> B<K> {
    /// Appends the node's value on every row of the block to `out`: the common shapes one
    /// loop each, the rest row by row.
    fn column<'a>(&'a self, block: &impl Columns<'a, K>, out: &mut Vec<Option<bool>>) {
        let n = block.rows();
        let start = out.len();
        match self {
            B::Const(b) => out.extend(std::iter::repeat_n(*b, n)),
            B::Field(k) => block.flags(*k, out),
            B::Not(x) => {
                x.column(block, out);
                for v in &mut out[start..] {
                    *v = v.map(|b| !b);
                }
            }
            B::And(x, y) | B::Or(x, y) => {
                x.column(block, out);
                let mut other = Vec::with_capacity(n);
                y.column(block, &mut other);
                let f = if matches!(self, B::And(..)) { and } else { or };
                zip_with(&mut out[start..], &other, f);
            }
            B::Known(x) => x.known_column(block, out),
            B::Cmp(op, x, y) => {
                let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
                x.column(block, &mut a);
                y.column(block, &mut b);
                out.extend(
                    a.iter()
                        .zip(&b)
                        .map(|(a, b)| Some(compare(*op, (*a)?, (*b)?))),
                );
            }
            B::FieldCmp(op, k, c) => {
                let mut a = Vec::with_capacity(n);
                block.nums(*k, &mut a);
                out.extend(a.iter().map(|a| Some(compare(*op, (*a)?, *c))));
            }
            B::FieldIs(eq, k, b) => {
                if !block.text_test(*k, &|a| same_text(a, b) == *eq, out) {
                    let mut a = Vec::with_capacity(n);
                    block.texts(*k, &mut a);
                    out.extend(a.iter().map(|a| Some(same_text(a.as_deref()?, b) == *eq)));
                }
            }
            B::FieldIn(k, items) => {
                let test = |a: &str| items.iter().any(|b| same_text(a, b));
                if !block.text_test(*k, &test, out) {
                    let mut a = Vec::with_capacity(n);
                    block.texts(*k, &mut a);
                    out.extend(a.iter().map(|a| Some(test(a.as_deref()?))));
                }
            }
            _ => out.extend((0..n).map(|i| self.eval(&block.row(i)))),
        }
    }

    fn eval<'a>(&'a self, row: &impl Row<'a, K>) -> Option<bool> {
        match self {
            B::Const(b) => *b,
            B::Field(k) => row.flag(*k),
            B::Not(x) => x.eval(row).map(|b| !b),
            B::And(x, y) => and(x.eval(row), y.eval(row)),
            B::Or(x, y) => or(x.eval(row), y.eval(row)),
            B::Known(x) => Some(x.known(row)),
            B::Cmp(op, x, y) => {
                let (a, b) = (x.eval(row)?, y.eval(row)?);
                Some(compare(*op, a, b))
            }
            B::FieldCmp(op, k, b) => Some(compare(*op, row.num(*k)?, *b)),
            B::FieldIs(eq, k, b) => Some(same_text(&row.text(*k)?, b) == *eq),
            B::FieldIn(k, items) => {
                let a = row.text(*k)?;
                Some(items.iter().any(|b| same_text(&a, b)))
            }
            B::TextEq(eq, x, y) => {
                let (a, b) = (x.eval(row)?, y.eval(row)?);
                Some((a == b) == *eq)
            }
            B::FlagEq(eq, x, y) => {
                let (a, b) = (x.eval(row)?, y.eval(row)?);
                Some((a == b) == *eq)
            }
            B::TextIn(x, items) => is_in(x.eval(row)?, items.iter().map(|i| i.eval(row))),
            B::NumIn(x, items) => is_in(x.eval(row)?, items.iter().map(|i| i.eval(row))),
            B::Contains(x, y) => {
                let (a, b) = (x.eval(row)?, y.eval(row)?);
                Some(a.to_lowercase().contains(&b.to_lowercase()))
            }
            B::If(c, x, y) => match c.eval(row)? {
                true => x.eval(row),
                false => y.eval(row),
            },
            B::Coalesce(items) => items.iter().find_map(|i| i.eval(row)),
        }
    }
}

impl<K: Copy> N<K> {
    /// Appends the node's value on every row of the block to `out`.
    fn column<'a>(&'a self, block: &impl Columns<'a, K>, out: &mut Vec<Option<f64>>) {
        let n = block.rows();
        let start = out.len();
        match self {
            N::Const(x) => out.extend(std::iter::repeat_n(*x, n)),
            N::Field(k) => block.nums(*k, out),
            N::Neg(x) => {
                x.column(block, out);
                for v in &mut out[start..] {
                    *v = v.map(|x| -x);
                }
            }
            N::Arith(op, x, y) => {
                x.column(block, out);
                let mut other = Vec::with_capacity(n);
                y.column(block, &mut other);
                zip_with(&mut out[start..], &other, |a, b| arith(*op, a?, b?));
            }
            _ => out.extend((0..n).map(|i| self.eval(&block.row(i)))),
        }
    }

    fn eval<'a>(&'a self, row: &impl Row<'a, K>) -> Option<f64> {
        match self {
            N::Const(n) => *n,
            N::Field(k) => row.num(*k),
            N::Neg(x) => x.eval(row).map(|n| -n),
            N::Arith(op, x, y) => arith(*op, x.eval(row)?, y.eval(row)?),
            N::Dates(func, x, y) => {
                let (a, b) = (x.eval(row)?, y.eval(row)?);
                Some(match func {
                    Func::Days => b - a,
                    Func::BusinessDays => business_days_between(a, b),
                    Func::Months => months_between(a, b),
                    _ => ((b - a) * 1440.0 * 1e6).round() / 1e6,
                })
            }
            N::Abs(x) => x.eval(row).map(f64::abs),
            N::Round(x, digits) => {
                let x = x.eval(row)?;
                let d = digits
                    .as_ref()
                    .map_or(0, |d| d.eval(row).unwrap_or(0.0).clamp(0.0, 12.0) as i32);
                let k = 10f64.powi(d);
                Some((x * k).round() / k)
            }
            N::MinMax(min, items) => {
                let mut acc: Option<f64> = None;
                for i in items {
                    let x = i.eval(row)?;
                    acc = Some(match acc {
                        None => x,
                        Some(a) if *min => a.min(x),
                        Some(a) => a.max(x),
                    });
                }
                acc
            }
            N::If(c, x, y) => match c.eval(row)? {
                true => x.eval(row),
                false => y.eval(row),
            },
            N::Coalesce(items) => items.iter().find_map(|i| i.eval(row)),
        }
    }
}

impl<K: Copy> T<K> {
    /// Appends the node's value on every row of the block to `out`.
    fn column<'a>(&'a self, block: &impl Columns<'a, K>, out: &mut Vec<Option<Cow<'a, str>>>) {
        match self {
            T::Field(k) => block.texts(*k, out),
            _ => out.extend((0..block.rows()).map(|i| self.eval(&block.row(i)))),
        }
    }

    fn eval<'a>(&'a self, row: &impl Row<'a, K>) -> Option<Cow<'a, str>> {
        match self {
            T::Const(s) => s.as_deref().map(Cow::Borrowed),
            T::Field(k) => row.text(*k),
            T::If(c, x, y) => match c.eval(row)? {
                true => x.eval(row),
                false => y.eval(row),
            },
            T::Coalesce(items) => items.iter().find_map(|i| i.eval(row)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields n1 n2 (numbers), b1 b2 (yes/no), t1 t2 (text), then params p (2) and q ('a'),
    /// then x, an extra column of no fixed type.
    const NAMES: [&str; 9] = ["n1", "n2", "b1", "b2", "t1", "t2", "p", "q", "x"];

    struct R<'v>(&'v [V<'static>]);

    impl<'a> Row<'a, usize> for R<'_> {
        fn num(&self, k: usize) -> Option<f64> {
            self.0[k].num()
        }
        fn flag(&self, k: usize) -> Option<bool> {
            match self.0[k] {
                V::Bool(b) => Some(b),
                _ => None,
            }
        }
        fn text(&self, k: usize) -> Option<Cow<'a, str>> {
            match &self.0[k] {
                V::Str(s) => Some(Cow::Owned(s.to_string())),
                _ => None,
            }
        }
    }

    fn slot(i: usize) -> Slot<usize> {
        match i {
            0 | 1 => Slot::Field(Ty::Num, i),
            2 | 3 => Slot::Field(Ty::Bool, i),
            4 | 5 => Slot::Field(Ty::Text, i),
            6 => Slot::Const(V::Num(2.0)),
            7 => Slot::Const(V::Str(Cow::Borrowed("a"))),
            _ => Slot::Dynamic,
        }
    }

    /// Every combination of missing and present values of the six fields (x is 1).
    fn rows() -> Vec<Vec<V<'static>>> {
        let nums = [V::Missing, V::Num(0.0), V::Num(1.5), V::Num(-2.0)];
        let flags = [V::Missing, V::Bool(true), V::Bool(false)];
        let texts = [
            V::Missing,
            V::Str(Cow::Borrowed("a")),
            V::Str(Cow::Borrowed("Ab")),
        ];
        let mut out = Vec::new();
        for n1 in &nums {
            for n2 in &nums {
                for b1 in &flags {
                    for b2 in &flags {
                        for t1 in &texts {
                            for t2 in &texts {
                                out.push(vec![
                                    n1.clone(),
                                    n2.clone(),
                                    b1.clone(),
                                    b2.clone(),
                                    t1.clone(),
                                    t2.clone(),
                                    V::Num(2.0),
                                    V::Str(Cow::Borrowed("a")),
                                    V::Num(1.0),
                                ]);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Every row of [`rows`] as one block; `coded`: its text fields tested through codes, each
    /// distinct text (or none) once, as a table whose texts are stored coded does it.
    struct Block<'v> {
        rows: &'v [Vec<V<'static>>],
        coded: bool,
    }

    impl<'a, 'v> Columns<'a, usize> for Block<'v> {
        type Row = R<'v>;
        fn rows(&self) -> usize {
            self.rows.len()
        }
        fn row(&self, i: usize) -> R<'v> {
            R(&self.rows[i])
        }
        fn text_test(
            &self,
            field: usize,
            test: &dyn Fn(&str) -> bool,
            out: &mut Vec<Option<bool>>,
        ) -> bool {
            if !self.coded {
                return false;
            }
            let mut distinct: Vec<Option<&str>> = Vec::new();
            let codes: Vec<usize> = self
                .rows
                .iter()
                .map(|r| {
                    let t = match &r[field] {
                        V::Str(s) => Some(s.as_ref()),
                        _ => None,
                    };
                    distinct.iter().position(|d| *d == t).unwrap_or_else(|| {
                        distinct.push(t);
                        distinct.len() - 1
                    })
                })
                .collect();
            let table: Vec<Option<bool>> = distinct.iter().map(|t| t.map(test)).collect();
            out.extend(codes.iter().map(|&c| table[c]));
            true
        }
    }

    fn check(src: &str, typed: bool) {
        let mut e = Expr::parse(src).unwrap();
        e.resolve(&|n| NAMES.iter().position(|x| *x == n)).unwrap();
        let c = Compiled::new(&e, &slot);
        assert_eq!(c.is_typed(), typed, "{src}");
        let all = rows();
        for row in &all {
            let get = |i: usize| row[i].clone();
            let want = e.eval(&get);
            let got = c.eval(&R(row), &get);
            match (&want, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{src} on {row:?}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{src} on {row:?}: tree {want:?}, compiled {got:?}"),
            }
        }
        // A column at a time: the same values, in row order; nothing for the tree walk.
        match c.eval_block(&Block {
            rows: &all,
            coded: false,
        }) {
            Some(column) => {
                assert!(typed, "{src}");
                for (i, row) in all.iter().enumerate() {
                    let get = |i: usize| row[i].clone();
                    let want = c.eval(&R(row), &get).unwrap();
                    assert_eq!(column.value(i), want, "{src} on {row:?}, as a column");
                }
                // And with the texts tested through codes.
                let coded = c
                    .eval_block(&Block {
                        rows: &all,
                        coded: true,
                    })
                    .expect("typed");
                assert_eq!(coded, column, "{src}, texts coded");
            }
            None => assert!(!typed, "{src}"),
        }
    }

    #[test]
    fn typed_nodes_give_the_tree_walks_values_on_every_combination_of_missing_values() {
        for src in [
            "n1 > p",
            "n1 >= n2 and b1",
            "n1 == n2 or not b2",
            "n1 != 0 or b1 == b2",
            "b1 != b2",
            "not known(n1) or n1 < 1 and known(t1)",
            "(not known(n1) or n1 > p) and n2 > p",
            "t1 == 'a'",
            "t1 != q",
            "t1 == t2",
            "t1 in ['a', 'b', q]",
            "t1 in ['b', t2]",
            "n1 in [0, 1.5, n2]",
            "contains(t1, 'A')",
            "contains(t2, t1)",
            "n1 + n2 * 2 - -n1",
            "n1 / n2",
            "n1 / 0 + 1",
            "round(n1 / 3, 2) + round(n2) + round(n1, n2)",
            "abs(n2) + min(n1, n2, p) + max(n1, 1)",
            "days(n1, n2) + business_days(n1, n2) + months(n1, n2) + minutes(n1, n2)",
            "if(b1, n1, n2) > 0",
            "if(b1, t1, t2) == 'a'",
            "if(b1, b2, not b2)",
            "coalesce(n1, n2, p)",
            "coalesce(t1, t2)",
            "coalesce(b1, b2, false)",
            "known(coalesce(n1, n2))",
            "-n1",
            "true and b1",
            "not (n1 > 1) or not b1 and (b2 or t2 != 'a')",
            "not known(t1) and known(b1) or known(n1 - n2)",
            "n1 * -n2 / (n2 - 1.5) > n1 + 1",
            "t1 in ['a', 'Ab'] and not (t2 == 'Ab')",
            "false or b1 == (not b2)",
        ] {
            check(src, true);
        }
    }

    #[test]
    fn mixed_or_unknown_types_keep_the_tree_walk_and_its_errors() {
        for src in [
            "x > 0",
            "n1 + x",
            "t1 + 1",
            "n1 == t1",
            "t1 < t2",
            "b1 in [true, false]",
            "if(b1, n1, t1) == 1",
            "coalesce(n1, t1)",
            "not n1",
            "b1 and n1 > 0 or t1",
        ] {
            check(src, false);
        }
    }

    #[test]
    fn short_texts_compare_like_str_at_every_length() {
        let words: Vec<String> = (0..=20)
            .map(|n| (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect())
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(super::same_text(a, b), a == b, "{a:?} {b:?}");
            }
            // The same length with one byte changed, at every position.
            for i in 0..a.len() {
                let mut c = a.clone().into_bytes();
                c[i] = b'_';
                let c = String::from_utf8(c).unwrap();
                assert!(!super::same_text(a, &c), "{a:?} {c:?}");
            }
        }
    }
}
