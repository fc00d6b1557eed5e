//! The expression language shared by filters (`?filter=`, saved views, automation conditions),
//! compiled to SQL by `records::filter`, and by formula fields, evaluated by `expr::eval`.
//!
//! ```text
//! stage = "won" && amount >= 1000 && close_date >= @today - 30d
//! customer.city in ["上海", "北京"] || tags ~ "vip"
//! stage ever in ["proposal", "won"]
//! if(quantity > 10, price * quantity * 0.9, price * quantity)
//! ```

pub mod eval;
pub mod lexer;
pub mod parser;

pub use lexer::Unit;
pub use parser::parse;

/// A parse or type error, at a 1-based character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub position: usize,
    pub message: String,
}

impl ExprError {
    pub fn new(position: usize, message: impl Into<String>) -> Self {
        ExprError {
            position,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ExprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    NotContains,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Contains
                | BinaryOp::NotContains
        )
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Contains => "~",
            BinaryOp::NotContains => "!~",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// The comparison with its sides swapped (`1 < a` is `a > 1`).
    pub fn flipped(self) -> BinaryOp {
        match self {
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::Ge => BinaryOp::Le,
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::Le => BinaryOp::Ge,
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// 1-based character position of the expression (of the operator, for binary ones).
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    /// A number as written, so decimals stay exact.
    Number(String),
    Str(String),
    /// A field, or `lookup.field` one level deep.
    Field(Vec<String>),
    /// `@now`, `@today`, `@me`.
    Macro(String),
    Duration(i64, Unit),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Expr>),
    /// `field ever in [..]`: the field holds, or by the record's history once held, one of the
    /// values. Filters only: a formula sees one version of a record.
    EverIn(Box<Expr>, Vec<Expr>),
    Call(String, Vec<Expr>),
}

impl Expr {
    fn binary(op: BinaryOp, left: Expr, right: Expr, pos: usize) -> Expr {
        Expr {
            kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
            pos,
        }
    }

    /// Every field path the expression mentions.
    pub fn fields(&self) -> Vec<(&[String], usize)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let ExprKind::Field(path) = &e.kind {
                out.push((path.as_slice(), e.pos));
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Unary(_, inner) => inner.walk(f),
            ExprKind::Binary(_, l, r) => {
                l.walk(f);
                r.walk(f);
            }
            ExprKind::In(l, items) | ExprKind::EverIn(l, items) => {
                l.walk(f);
                items.iter().for_each(|i| i.walk(f));
            }
            ExprKind::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            _ => {}
        }
    }
}
