//! A recursive-descent parser from tokens to [`Expr`]. Precedence, loosest first:
//! `||`, `&&`, `!`, comparisons (`= != > >= < <= ~ !~ in`, `ever in`), `+ -`, `* /`,
//! unary `-`.

use super::lexer::{Spanned, Token, tokenize};
use super::{BinaryOp, Expr, ExprError, ExprKind, UnaryOp};

/// Nesting deeper than this is refused (it would only ever be an attack or a mistake).
const MAX_DEPTH: usize = 64;

pub fn parse(input: &str) -> Result<Expr, ExprError> {
    let tokens = tokenize(input)?;
    if tokens.len() == 1 {
        return Err(ExprError::new(1, "the expression is empty"));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(ExprError::new(
            parser.pos(),
            format!(
                "expected an operator such as && or ||, found {}",
                other.describe()
            ),
        )),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].token
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].pos
    }

    fn next(&mut self) -> Spanned {
        let token = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == token {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), ExprError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(ExprError::new(
                self.pos(),
                format!("expected {what}, found {}", self.peek().describe()),
            ))
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::new(
                self.pos(),
                "the expression is nested too deeply",
            ));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while *self.peek() == Token::Or {
            let pos = self.next().pos;
            let right = self.and()?;
            left = Expr::binary(BinaryOp::Or, left, right, pos);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.not()?;
        while *self.peek() == Token::And {
            let pos = self.next().pos;
            let right = self.not()?;
            left = Expr::binary(BinaryOp::And, left, right, pos);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if *self.peek() == Token::Not {
            let pos = self.next().pos;
            let inner = self.nested(Self::not)?;
            return Ok(Expr {
                kind: ExprKind::Unary(UnaryOp::Not, Box::new(inner)),
                pos,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.additive()?;
        let op = match self.peek() {
            Token::Eq => BinaryOp::Eq,
            Token::Ne => BinaryOp::Ne,
            Token::Gt => BinaryOp::Gt,
            Token::Ge => BinaryOp::Ge,
            Token::Lt => BinaryOp::Lt,
            Token::Le => BinaryOp::Le,
            Token::Contains => BinaryOp::Contains,
            Token::NotContains => BinaryOp::NotContains,
            Token::Ident(word) if word.eq_ignore_ascii_case("in") => {
                let pos = self.next().pos;
                let list = self.list()?;
                return Ok(Expr {
                    kind: ExprKind::In(Box::new(left), list),
                    pos,
                });
            }
            Token::Ident(word) if word.eq_ignore_ascii_case("ever") => {
                let pos = self.next().pos;
                match self.peek() {
                    Token::Ident(word) if word.eq_ignore_ascii_case("in") => {
                        self.next();
                    }
                    other => {
                        return Err(ExprError::new(
                            self.pos(),
                            format!(
                                "expected 'in' after 'ever' (stage ever in [\"won\"]), found {}",
                                other.describe()
                            ),
                        ));
                    }
                }
                let list = self.list()?;
                return Ok(Expr {
                    kind: ExprKind::EverIn(Box::new(left), list),
                    pos,
                });
            }
            _ => return Ok(left),
        };
        let pos = self.next().pos;
        let right = self.additive()?;
        if matches!(
            self.peek(),
            Token::Eq
                | Token::Ne
                | Token::Gt
                | Token::Ge
                | Token::Lt
                | Token::Le
                | Token::Contains
                | Token::NotContains
        ) {
            return Err(ExprError::new(
                self.pos(),
                "comparisons cannot be chained; join them with && or ||",
            ));
        }
        Ok(Expr::binary(op, left, right, pos))
    }

    fn list(&mut self) -> Result<Vec<Expr>, ExprError> {
        self.expect(&Token::LBracket, "'[' to start a list")?;
        let mut items = Vec::new();
        if *self.peek() == Token::RBracket {
            return Err(ExprError::new(self.pos(), "the list is empty"));
        }
        loop {
            items.push(self.additive()?);
            if self.eat(&Token::RBracket) {
                return Ok(items);
            }
            self.expect(&Token::Comma, "',' or ']'")?;
        }
    }

    fn additive(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Token::Plus => BinaryOp::Add,
                Token::Minus => BinaryOp::Sub,
                _ => return Ok(left),
            };
            let pos = self.next().pos;
            let right = self.multiplicative()?;
            left = Expr::binary(op, left, right, pos);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Token::Star => BinaryOp::Mul,
                Token::Slash => BinaryOp::Div,
                _ => return Ok(left),
            };
            let pos = self.next().pos;
            let right = self.unary()?;
            left = Expr::binary(op, left, right, pos);
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if *self.peek() == Token::Minus {
            let pos = self.next().pos;
            let inner = self.nested(Self::unary)?;
            return Ok(Expr {
                kind: ExprKind::Unary(UnaryOp::Neg, Box::new(inner)),
                pos,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Spanned { token, pos } = self.next();
        let kind = match token {
            Token::Number(n) => ExprKind::Number(n),
            Token::Str(s) => ExprKind::Str(s),
            Token::Duration(n, unit) => ExprKind::Duration(n, unit),
            Token::Macro(m) => ExprKind::Macro(m),
            Token::LParen => {
                let inner = self.nested(Self::or)?;
                self.expect(&Token::RParen, "')'")?;
                return Ok(inner);
            }
            Token::Ident(word) => match word.to_lowercase().as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "null" => ExprKind::Null,
                _ if *self.peek() == Token::LParen => {
                    self.next();
                    let mut args = Vec::new();
                    if !self.eat(&Token::RParen) {
                        loop {
                            args.push(self.nested(Self::or)?);
                            if self.eat(&Token::RParen) {
                                break;
                            }
                            self.expect(&Token::Comma, "',' or ')'")?;
                        }
                    }
                    ExprKind::Call(word.to_lowercase(), args)
                }
                _ => {
                    let mut path = vec![word];
                    while self.eat(&Token::Dot) {
                        match self.next() {
                            Spanned {
                                token: Token::Ident(part),
                                ..
                            } => path.push(part),
                            other => {
                                return Err(ExprError::new(
                                    other.pos,
                                    format!(
                                        "expected a field name after '.', found {}",
                                        other.token.describe()
                                    ),
                                ));
                            }
                        }
                    }
                    ExprKind::Field(path)
                }
            },
            Token::End => {
                return Err(ExprError::new(
                    pos,
                    "expected a value or a field, but the expression ended",
                ));
            }
            other => {
                return Err(ExprError::new(
                    pos,
                    format!("expected a value or a field, found {}", other.describe()),
                ));
            }
        };
        Ok(Expr { kind, pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Binary(op, l, r) => format!("({} {op:?} {})", shape(l), shape(r)),
            ExprKind::Unary(op, i) => format!("({op:?} {})", shape(i)),
            ExprKind::Field(p) => p.join("."),
            ExprKind::Number(n) => n.clone(),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::In(l, items) => format!("({} in {})", shape(l), items.len()),
            ExprKind::EverIn(l, items) => format!("({} ever in {})", shape(l), items.len()),
            ExprKind::Call(f, args) => format!("{f}/{}", args.len()),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn precedence() {
        let e = parse("stage = \"won\" && amount >= 1000 || !closed").unwrap();
        assert_eq!(
            shape(&e),
            "(((stage Eq \"won\") And (amount Ge 1000)) Or (Not closed))"
        );
        let e = parse("a + b * 2 > c - 1").unwrap();
        assert_eq!(shape(&e), "((a Add (b Mul 2)) Gt (c Sub 1))");
        assert_eq!(
            shape(&parse("customer.city in [\"a\", \"b\"]").unwrap()),
            "(customer.city in 2)"
        );
        assert_eq!(shape(&parse("if(a > 1, b, c)").unwrap()), "if/3");
        assert_eq!(
            shape(&parse("a = 1 && stage EVER in [\"x\", \"y\"]").unwrap()),
            "((a Eq 1) And (stage ever in 2))"
        );
        // `ever` and `in` stay usable as field names.
        assert_eq!(
            shape(&parse("ever in [1] || in ever in [2]").unwrap()),
            "((ever in 1) Or (in ever in 1))"
        );
        assert_eq!(
            shape(&parse("!(a = 1) and b = 2").unwrap()),
            "((Not (a Eq 1)) And (b Eq 2))"
        );
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("", 1),
            ("a =", 4),
            ("a = 1 b", 7),
            ("(a = 1", 7),
            ("a = = 1", 5),
            ("a in 1", 6),
            ("a in []", 7),
            ("a = 1 = 2", 7),
            ("customer. = 1", 11),
            ("stage ever = \"won\"", 12),
            ("stage ever", 11),
            ("stage ever in \"won\"", 15),
            ("stage ever in []", 16),
        ];
        for (input, pos) in cases {
            let err = parse(input).unwrap_err();
            assert_eq!(err.position, pos, "{input}: {err:?}");
        }
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).unwrap_err().message.contains("deeply"));
    }
}
