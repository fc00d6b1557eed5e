//! Tokens of the expression language, each with the character position it starts at.

use super::ExprError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    /// A number as written (kept as text so decimals stay exact).
    Number(String),
    /// `30d`, `2h`, `6mo` …
    Duration(i64, Unit),
    Macro(String),
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    NotContains,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("'{s}'"),
            Token::Str(s) => format!("the text \"{s}\""),
            Token::Number(n) => format!("the number {n}"),
            Token::Duration(n, _) => format!("the duration {n}"),
            Token::Macro(m) => format!("@{m}"),
            Token::End => "the end of the expression".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Token::Eq => "=",
            Token::Ne => "!=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Contains => "~",
            Token::NotContains => "!~",
            Token::And => "&&",
            Token::Or => "||",
            Token::Not => "!",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Dot => ".",
            _ => "",
        }
    }
}

/// A token and its 1-based character position.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub pos: usize,
}

/// The longest expression accepted, in characters.
pub const MAX_LENGTH: usize = 4_000;

pub fn tokenize(input: &str) -> Result<Vec<Spanned>, ExprError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_LENGTH {
        return Err(ExprError::new(
            MAX_LENGTH,
            format!("the expression is longer than {MAX_LENGTH} characters"),
        ));
    }
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let (token, width) = match two.as_str() {
            "==" => (Token::Eq, 2),
            "!=" | "<>" => (Token::Ne, 2),
            ">=" => (Token::Ge, 2),
            "<=" => (Token::Le, 2),
            "!~" => (Token::NotContains, 2),
            "&&" => (Token::And, 2),
            "||" => (Token::Or, 2),
            _ => match c {
                '=' => (Token::Eq, 1),
                '>' => (Token::Gt, 1),
                '<' => (Token::Lt, 1),
                '~' => (Token::Contains, 1),
                '!' => (Token::Not, 1),
                '+' => (Token::Plus, 1),
                '-' => (Token::Minus, 1),
                '*' => (Token::Star, 1),
                '/' => (Token::Slash, 1),
                '(' => (Token::LParen, 1),
                ')' => (Token::RParen, 1),
                '[' => (Token::LBracket, 1),
                ']' => (Token::RBracket, 1),
                ',' => (Token::Comma, 1),
                '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => (Token::Dot, 1),
                '"' | '\'' => {
                    let (text, end) = string(&chars, i)?;
                    tokens.push(Spanned {
                        token: Token::Str(text),
                        pos,
                    });
                    i = end;
                    continue;
                }
                '@' => {
                    let end = word_end(&chars, i + 1);
                    let name: String = chars[i + 1..end].iter().collect();
                    if name.is_empty() {
                        return Err(ExprError::new(
                            pos,
                            "expected a macro name after '@' (@now, @today, @me)",
                        ));
                    }
                    tokens.push(Spanned {
                        token: Token::Macro(name.to_lowercase()),
                        pos,
                    });
                    i = end;
                    continue;
                }
                c if c.is_ascii_digit() || c == '.' => {
                    let (token, end) = number(&chars, i)?;
                    tokens.push(Spanned { token, pos });
                    i = end;
                    continue;
                }
                c if c.is_alphabetic() || c == '_' => {
                    let end = word_end(&chars, i);
                    let word: String = chars[i..end].iter().collect();
                    let token = match word.to_lowercase().as_str() {
                        "and" => Token::And,
                        "or" => Token::Or,
                        "not" => Token::Not,
                        _ => Token::Ident(word),
                    };
                    tokens.push(Spanned { token, pos });
                    i = end;
                    continue;
                }
                other => {
                    return Err(ExprError::new(
                        pos,
                        format!("unexpected character '{other}'"),
                    ));
                }
            },
        };
        tokens.push(Spanned { token, pos });
        i += width;
    }
    tokens.push(Spanned {
        token: Token::End,
        pos: chars.len() + 1,
    });
    Ok(tokens)
}

fn word_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    i
}

fn string(chars: &[char], start: usize) -> Result<(String, usize), ExprError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((out, i + 1)),
            '\\' => {
                let escaped = chars
                    .get(i + 1)
                    .ok_or_else(|| ExprError::new(i + 1, "expected a character after '\\'"))?;
                match escaped {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '\\' | '"' | '\'' => out.push(*escaped),
                    other => {
                        return Err(ExprError::new(
                            i + 2,
                            format!("unknown escape '\\{other}' (use \\\\, \\\", \\n or \\t)"),
                        ));
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(ExprError::new(
        start + 1,
        format!("this text is never closed: expected a closing {quote}"),
    ))
}

fn number(chars: &[char], start: usize) -> Result<(Token, usize), ExprError> {
    let mut i = start;
    let mut seen_dot = false;
    while i < chars.len() && (chars[i].is_ascii_digit() || (chars[i] == '.' && !seen_dot)) {
        seen_dot |= chars[i] == '.';
        i += 1;
    }
    let text: String = chars[start..i].iter().collect();
    if text == "." || text.ends_with('.') {
        return Err(ExprError::new(
            start + 1,
            format!("'{text}' is not a number"),
        ));
    }
    let end = word_end(chars, i);
    if end == i {
        return Ok((Token::Number(text), i));
    }
    let suffix: String = chars[i..end].iter().collect();
    let unit = match suffix.as_str() {
        "min" => Unit::Minutes,
        "h" => Unit::Hours,
        "d" => Unit::Days,
        "w" => Unit::Weeks,
        "mo" => Unit::Months,
        "y" => Unit::Years,
        _ => {
            return Err(ExprError::new(
                i + 1,
                format!("unknown unit '{suffix}' (use min, h, d, w, mo or y)"),
            ));
        }
    };
    if seen_dot {
        return Err(ExprError::new(
            start + 1,
            "a duration must be a whole number, like 30d",
        ));
    }
    let n = text
        .parse::<i64>()
        .map_err(|_| ExprError::new(start + 1, format!("'{text}' is too large")))?;
    Ok((Token::Duration(n, unit), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Token> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds("a >= 1.5 && b !~ \"x\\\"y\" || !c"),
            [
                Token::Ident("a".into()),
                Token::Ge,
                Token::Number("1.5".into()),
                Token::And,
                Token::Ident("b".into()),
                Token::NotContains,
                Token::Str("x\"y".into()),
                Token::Or,
                Token::Not,
                Token::Ident("c".into()),
                Token::End
            ]
        );
        assert_eq!(
            kinds("@today + 30d"),
            [
                Token::Macro("today".into()),
                Token::Plus,
                Token::Duration(30, Unit::Days),
                Token::End
            ]
        );
        assert_eq!(kinds("城市 = '上海'")[0], Token::Ident("城市".into()));
    }

    #[test]
    fn errors_point_at_the_character() {
        assert_eq!(tokenize("a = \"open").unwrap_err().position, 5);
        assert_eq!(tokenize("a # b").unwrap_err().position, 3);
        assert_eq!(tokenize("@today + 3q").unwrap_err().position, 11);
    }
}
