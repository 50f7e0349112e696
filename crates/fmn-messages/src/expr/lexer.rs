//! Text to tokens.

/// A parse error in a catalog expression, template or condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Word(String),
    Str(String),
    Pipe,
    OrOr,
    AndAnd,
    LParen,
    RParen,
    Comma,
    Colon,
    EqEq,
    NotEq,
    Tilde,
    Bang,
}

/// The tokens of an expression or condition.
pub(super) fn lex(input: &str) -> Result<Vec<Tok>, ParseError> {
    let mut toks = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        if let Some((_, e)) = chars.next() {
                            // `\n`, `\t` and escaped quotes or backslashes are read;
                            // any other escape (`\s`, `\d`, `\.`) is kept for regexes.
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                '\\' | '"' | '\'' => s.push(e),
                                e => {
                                    s.push('\\');
                                    s.push(e);
                                }
                            }
                        }
                    } else if d == c {
                        closed = true;
                        break;
                    } else {
                        s.push(d);
                    }
                }
                if !closed {
                    return Err(ParseError(format!("unclosed string in {input:?}")));
                }
                toks.push(Tok::Str(s));
            }
            '|' | '&' | '=' | '!' => {
                chars.next();
                let next = chars.peek().map(|&(_, d)| d);
                let tok = match (c, next) {
                    ('|', Some('|')) => Some(Tok::OrOr),
                    ('&', Some('&')) => Some(Tok::AndAnd),
                    ('=', Some('=')) => Some(Tok::EqEq),
                    ('!', Some('=')) => Some(Tok::NotEq),
                    _ => None,
                };
                match tok {
                    Some(t) => {
                        chars.next();
                        toks.push(t);
                    }
                    None => match c {
                        '|' => toks.push(Tok::Pipe),
                        '!' => toks.push(Tok::Bang),
                        _ => return Err(ParseError(format!("stray {c:?} at {i} in {input:?}"))),
                    },
                }
            }
            '(' | ')' | ',' | ':' | '~' => {
                chars.next();
                toks.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    _ => Tok::Tilde,
                });
            }
            _ => {
                let mut s = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || "\"'|&=!(),:~".contains(d) {
                        break;
                    }
                    s.push(d);
                    chars.next();
                }
                toks.push(Tok::Word(s));
            }
        }
    }
    Ok(toks)
}
