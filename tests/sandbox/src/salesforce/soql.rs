//! A strict, small SOQL front end: a hand-written tokenizer and a recursive-descent parser into
//! an AST. It accepts only the subset orglink issues (see the module docs of `salesforce`) and
//! reports everything else as `MALFORMED_QUERY`, the way Salesforce does, so a client bug shows
//! up as an error instead of a silently wrong result. Field names are checked later, against
//! the records (`INVALID_FIELD`), by the query executor.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A query that could not be parsed; always answered as `MALFORMED_QUERY`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SoqlError {
    pub message: String,
    /// Character offset in the query text where the problem was found.
    pub offset: usize,
}

/// Salesforce's way of pointing at the problem: the query, a caret line and the row/column.
pub fn describe_error(query: &str, offset: usize, message: &str) -> String {
    let before: String = query.chars().take(offset).collect();
    let row = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let line = query.lines().nth(row - 1).unwrap_or("");
    format!(
        "\n{line}\n{caret:>width$}\nERROR at Row:{row}:Column:{column}\n{message}",
        caret = "^",
        width = column
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Select,
    pub from: String,
    pub filter: Option<Expr>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `SELECT COUNT() FROM ...`: only `totalSize` is answered.
    Count,
    Fields(Vec<FieldRef>),
}

/// `Name` or `Owner.Email`, as written (case preserved), with where it starts in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub path: Vec<String>,
    pub offset: usize,
}

impl FieldRef {
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: FieldRef,
    pub descending: bool,
    pub nulls_last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Null,
    Date(Date),
    DateTime(OffsetDateTime),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LikePart {
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: FieldRef,
        op: CmpOp,
        value: Literal,
        value_offset: usize,
    },
    In {
        field: FieldRef,
        negated: bool,
        values: Vec<(Literal, usize)>,
    },
    /// `Id IN (SELECT AccountId FROM Opportunity WHERE ...)`
    InQuery {
        field: FieldRef,
        negated: bool,
        query: Box<Query>,
    },
    Like {
        field: FieldRef,
        pattern: Vec<LikePart>,
    },
}

/// Decodes a quoted SOQL string literal (`'O\'Brien'`) per Salesforce's escape table:
/// `\n \r \t \b \f \" \' \\ \uXXXX` (letters in either case), and nothing else (`\_` and `\%`
/// are for LIKE patterns only). `\b` decodes to backspace (U+0008), as client libraries
/// encode it.
pub fn decode_string_literal(quoted: &str) -> Result<String, SoqlError> {
    let body = quoted
        .strip_prefix('\'')
        .and_then(|b| b.strip_suffix('\''))
        .ok_or_else(|| SoqlError {
            message: "a string literal must be enclosed in single quotes".into(),
            offset: 0,
        })?;
    // A raw quote inside the body would have ended the literal.
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '\'' {
            return Err(SoqlError {
                message: "unescaped single quote inside a string literal".into(),
                offset: i + 1,
            });
        }
    }
    decode_body(body, false, 1).map(|parts| parts_to_string(&parts))
}

/// Decodes a quoted LIKE pattern: the string escapes plus `\_` and `\%` for literal `_`/`%`.
pub fn decode_like_pattern(quoted: &str) -> Result<Vec<LikePart>, SoqlError> {
    let body = quoted
        .strip_prefix('\'')
        .and_then(|b| b.strip_suffix('\''))
        .ok_or_else(|| SoqlError {
            message: "a LIKE pattern must be enclosed in single quotes".into(),
            offset: 0,
        })?;
    decode_body(body, true, 1)
}

fn parts_to_string(parts: &[LikePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            LikePart::Char(c) => *c,
            LikePart::One => '_',
            LikePart::Many => '%',
        })
        .collect()
}

/// `base` is the offset of the body in the query, for error positions.
fn decode_body(body: &str, like: bool, base: usize) -> Result<Vec<LikePart>, SoqlError> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    let err = |message: String, at: usize| SoqlError {
        message,
        offset: base + at,
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            out.push(match (like, c) {
                (true, '%') => LikePart::Many,
                (true, '_') => LikePart::One,
                _ => LikePart::Char(c),
            });
            i += 1;
            continue;
        }
        let Some(&next) = chars.get(i + 1) else {
            return Err(err(
                "Invalid string literal: ends with a backslash".into(),
                i,
            ));
        };
        let decoded = match next {
            'n' | 'N' => '\n',
            'r' | 'R' => '\r',
            't' | 'T' => '\t',
            'b' | 'B' => '\u{8}',
            'f' | 'F' => '\u{c}',
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '_' | '%' if like => next,
            'u' | 'U' => {
                let (c, used) = decode_unicode(&chars, i)
                    .ok_or_else(|| err("Invalid unicode escape sequence".into(), i))?;
                out.push(LikePart::Char(c));
                i += used;
                continue;
            }
            other => {
                return Err(err(
                    format!("Invalid string literal: illegal escape sequence \\{other}"),
                    i,
                ));
            }
        };
        out.push(LikePart::Char(decoded));
        i += 2;
    }
    Ok(out)
}

/// `\uXXXX` at `chars[i]`, with a following `\uXXXX` low surrogate when the first is a high
/// one. Returns the char and how many chars were used.
fn decode_unicode(chars: &[char], i: usize) -> Option<(char, usize)> {
    let hex = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        if digits.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(&digits, 16).ok()
        } else {
            None
        }
    };
    let first = hex(i + 2)?;
    if (0xD800..0xDC00).contains(&first) {
        if chars.get(i + 6) != Some(&'\\') || !matches!(chars.get(i + 7), Some('u' | 'U')) {
            return None;
        }
        let second = hex(i + 8)?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        return char::from_u32(code).map(|c| (c, 12));
    }
    char::from_u32(first).map(|c| (c, 6))
}

/// Parses a date (`2025-11-01`) or datetime literal (`2025-11-01T00:00:00Z`,
/// `2025-11-01T00:00:00.000+01:00`) as SOQL writes them: unquoted, with a zone.
pub fn parse_date_literal(text: &str) -> Option<Literal> {
    if text.len() == 10 {
        return parse_date(text).map(Literal::Date);
    }
    parse_datetime(text, true).map(Literal::DateTime)
}

fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = digits(&text[0..4])?;
    let month: u8 = digits(&text[5..7])?;
    let day: u8 = digits(&text[8..10])?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Datetimes as SOQL literals (`strict`: zone `Z` or `±hh:mm`) or as record values in
/// Salesforce's JSON (`2025-11-01T10:20:30.000+0000`, also accepted with `Z`/`±hh:mm`).
pub fn parse_datetime(text: &str, strict: bool) -> Option<OffsetDateTime> {
    if text.len() < 20 || text.as_bytes()[10] != b'T' {
        return None;
    }
    let date = parse_date(&text[..10])?;
    let rest = &text[11..];
    let b = rest.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s): (u8, u8, u8) = (
        digits(&rest[0..2])?,
        digits(&rest[3..5])?,
        digits(&rest[6..8])?,
    );
    let mut tail = &rest[8..];
    let mut millis = 0u16;
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..n.min(3)]);
        millis = padded.parse().ok()?;
        tail = &frac[n..];
    }
    let offset = match tail {
        "Z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = &tail[1..];
            let (oh, om) = match (z.len(), strict) {
                (5, _) if z.as_bytes()[2] == b':' => (&z[0..2], &z[3..5]),
                (4, false) => (&z[0..2], &z[2..4]),
                _ => return None,
            };
            let (oh, om): (i8, i8) = (digits(oh)?, digits(om)?);
            UtcOffset::from_hms(sign * oh, sign * om, 0).ok()?
        }
    };
    let time = Time::from_hms_milli(h, m, s, millis).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Salesforce's JSON rendering of a datetime: UTC, milliseconds, `+0000`.
pub fn format_datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// The raw body between the quotes, escapes undecoded.
    Str(String),
    Num(String),
    DateLit(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Dot,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    offset: usize,
}

fn tokenize(query: &str) -> Result<Vec<Token>, SoqlError> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '.' => {
                i += 1;
                Tok::Dot
            }
            '=' => {
                i += 1;
                Tok::Op("=")
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op("!=")
            }
            '<' => match chars.get(i + 1) {
                Some('=') => {
                    i += 2;
                    Tok::Op("<=")
                }
                Some('>') => {
                    i += 2;
                    Tok::Op("!=")
                }
                _ => {
                    i += 1;
                    Tok::Op("<")
                }
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    i += 2;
                    Tok::Op(">=")
                } else {
                    i += 1;
                    Tok::Op(">")
                }
            }
            '\'' => {
                i += 1;
                let mut body = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(SoqlError {
                                message: "unterminated string literal".into(),
                                offset: start,
                            });
                        }
                        Some('\\') => {
                            body.push('\\');
                            if let Some(&n) = chars.get(i + 1) {
                                body.push(n);
                            }
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            body.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::Str(body)
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let is_date = c.is_ascii_digit()
                    && chars.len() > i + 4
                    && chars[i..i + 4].iter().all(char::is_ascii_digit)
                    && chars[i + 4] == '-';
                if is_date {
                    while i < chars.len()
                        && (chars[i].is_ascii_alphanumeric() || ":.+-".contains(chars[i]))
                    {
                        i += 1;
                    }
                    Tok::DateLit(chars[start..i].iter().collect())
                } else {
                    i += 1;
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                        i += 1;
                    }
                    Tok::Num(chars[start..i].iter().collect())
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Tok::Ident(chars[start..i].iter().collect())
            }
            other => {
                return Err(SoqlError {
                    message: format!("unexpected token: '{other}'"),
                    offset: start,
                });
            }
        };
        out.push(Token { tok, offset: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        offset: chars.len(),
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser

const RESERVED: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "NULL", "TRUE", "FALSE", "OFFSET", "GROUP", "HAVING",
    "INCLUDES", "EXCLUDES", "WITH", "FOR", "USING", "TYPEOF",
];

pub fn parse(query: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(query)?;
    let mut p = Parser { tokens, pos: 0 };
    let q = p.query()?;
    p.expect_eof()?;
    Ok(q)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self) -> SoqlError {
        let t = self.peek();
        let shown = match &t.tok {
            Tok::Ident(s) | Tok::Num(s) | Tok::DateLit(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Op(o) => (*o).to_string(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Dot => ".".into(),
            Tok::Eof => "<EOF>".into(),
        };
        SoqlError {
            message: format!("unexpected token: '{shown}'"),
            offset: t.offset,
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.is_keyword(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<(), SoqlError> {
        if self.peek().tok == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect_eof(&self) -> Result<(), SoqlError> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn name(&mut self) -> Result<(String, usize), SoqlError> {
        match &self.peek().tok {
            Tok::Ident(s) if !RESERVED.iter().any(|k| k.eq_ignore_ascii_case(s)) => {
                let t = self.bump();
                let Tok::Ident(s) = t.tok else { unreachable!() };
                Ok((s, t.offset))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn field(&mut self) -> Result<FieldRef, SoqlError> {
        let (first, offset) = self.name()?;
        let mut path = vec![first];
        while self.peek().tok == Tok::Dot {
            self.bump();
            path.push(self.name()?.0);
        }
        Ok(FieldRef { path, offset })
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_keyword("SELECT")?;
        let select = if self.is_keyword("COUNT") && self.tokens[self.pos + 1].tok == Tok::LParen {
            self.bump();
            self.expect(Tok::LParen)?;
            self.expect(Tok::RParen)?;
            Select::Count
        } else {
            let mut fields = vec![self.field()?];
            while self.peek().tok == Tok::Comma {
                self.bump();
                fields.push(self.field()?);
            }
            Select::Fields(fields)
        };
        self.expect_keyword("FROM")?;
        let (from, _) = self.name()?;
        let filter = if self.eat_keyword("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                let field = self.field()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                // Salesforce's default: nulls first ascending, last descending.
                let mut nulls_last = descending;
                if self.eat_keyword("NULLS") {
                    if self.eat_keyword("LAST") {
                        nulls_last = true;
                    } else {
                        self.expect_keyword("FIRST")?;
                        nulls_last = false;
                    }
                }
                order_by.push(OrderItem {
                    field,
                    descending,
                    nulls_last,
                });
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        let limit = if self.eat_keyword("LIMIT") {
            match &self.peek().tok {
                Tok::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => {
                    let n = n.parse().map_err(|_| self.unexpected())?;
                    self.bump();
                    Some(n)
                }
                _ => return Err(self.unexpected()),
            }
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            filter,
            order_by,
            limit,
        })
    }

    /// SOQL refuses `a AND b OR c`: mixing the two needs parentheses.
    fn condition(&mut self) -> Result<Expr, SoqlError> {
        let first = self.unary()?;
        let joiner = if self.is_keyword("AND") {
            "AND"
        } else if self.is_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut items = vec![first];
        while self.eat_keyword(joiner) {
            items.push(self.unary()?);
        }
        if self.is_keyword("AND") || self.is_keyword("OR") {
            return Err(self.unexpected());
        }
        Ok(if joiner == "AND" {
            Expr::And(items)
        } else {
            Expr::Or(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.bump();
            let inner = self.condition()?;
            self.expect(Tok::RParen)?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SoqlError> {
        let field = self.field()?;
        if let Tok::Op(op) = self.peek().tok {
            self.bump();
            let op = match op {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            let value_offset = self.peek().offset;
            let value = self.literal()?;
            if value == Literal::Null && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                return Err(SoqlError {
                    message: "null can only be compared with = or !=".into(),
                    offset: value_offset,
                });
            }
            return Ok(Expr::Compare {
                field,
                op,
                value,
                value_offset,
            });
        }
        if self.eat_keyword("LIKE") {
            let t = self.peek().clone();
            let Tok::Str(body) = &t.tok else {
                return Err(self.unexpected());
            };
            let pattern = decode_body(body, true, t.offset + 1)?;
            self.bump();
            return Ok(Expr::Like { field, pattern });
        }
        let negated = self.eat_keyword("NOT");
        self.expect_keyword("IN")?;
        self.expect(Tok::LParen)?;
        if self.is_keyword("SELECT") {
            let query = self.query()?;
            self.expect(Tok::RParen)?;
            return Ok(Expr::InQuery {
                field,
                negated,
                query: Box::new(query),
            });
        }
        let mut values = Vec::new();
        loop {
            let at = self.peek().offset;
            values.push((self.literal()?, at));
            if self.peek().tok == Tok::Comma {
                self.bump();
            } else {
                break;
            }
        }
        self.expect(Tok::RParen)?;
        Ok(Expr::In {
            field,
            negated,
            values,
        })
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let t = self.peek().clone();
        let lit = match &t.tok {
            Tok::Str(body) => {
                Literal::String(parts_to_string(&decode_body(body, false, t.offset + 1)?))
            }
            Tok::Num(n) => Literal::Number(n.parse().map_err(|_| self.unexpected())?),
            Tok::DateLit(d) => parse_date_literal(d).ok_or_else(|| SoqlError {
                message: format!(
                    "line 1:{} no viable alternative at character '{d}'",
                    t.offset
                ),
                offset: t.offset,
            })?,
            Tok::Ident(s) if s.eq_ignore_ascii_case("null") => Literal::Null,
            Tok::Ident(s) if s.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(s) if s.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return Err(self.unexpected()),
        };
        self.bump();
        Ok(lit)
    }
}

/// Case-insensitive LIKE match.
pub fn like_matches(pattern: &[LikePart], text: &str) -> bool {
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let pattern: Vec<LikePart> = pattern
        .iter()
        .flat_map(|p| match p {
            LikePart::Char(c) => c.to_lowercase().map(LikePart::Char).collect::<Vec<_>>(),
            other => vec![other.clone()],
        })
        .collect();
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(LikePart::Many) => {
                star = Some((p, t));
                p += 1;
            }
            Some(LikePart::One) => {
                p += 1;
                t += 1;
            }
            Some(LikePart::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == LikePart::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Literal {
        Literal::String(s.into())
    }

    #[test]
    fn parses_the_queries_orglink_issues() {
        let q = parse(
            "SELECT Id, Name, Owner.Email FROM Account WHERE (Type LIKE 'Customer%' OR Id IN \
             ('001D000000IRFmaIAH','001D000000IomazIAB')) AND IsDeleted = false AND \
             SystemModstamp > 2025-11-01T00:00:00Z ORDER BY SystemModstamp ASC NULLS LAST, Id \
             LIMIT 500",
        )
        .unwrap();
        assert_eq!(q.from, "Account");
        let Select::Fields(fields) = &q.select else {
            panic!()
        };
        assert_eq!(fields[2].path, vec!["Owner", "Email"]);
        assert_eq!(q.limit, Some(500));
        assert_eq!(q.order_by.len(), 2);
        assert!(q.order_by[0].nulls_last && !q.order_by[0].descending);
        let Some(Expr::And(items)) = &q.filter else {
            panic!("{:?}", q.filter)
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Expr::Or(_)));
        let Expr::Compare { value, .. } = &items[2] else {
            panic!()
        };
        assert!(matches!(value, Literal::DateTime(d) if d.unix_timestamp() == 1_761_955_200));
    }

    #[test]
    fn refuses_mixed_and_or_without_parentheses() {
        let e = parse("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Id = null")
            .unwrap_err();
        assert!(e.message.contains("OR"), "{e:?}");
        assert!(
            parse("SELECT Id FROM Account WHERE Name = 'a' AND (Type = 'b' OR Id = null)").is_ok()
        );
        assert!(parse("SELECT Id FROM Account WHERE NOT (Name = 'a' OR Name = 'b')").is_ok());
    }

    #[test]
    fn refuses_what_is_outside_the_subset() {
        for bad in [
            "SELECT Id FROM Account LIMIT 5 OFFSET 10",
            "SELECT Id FROM Account GROUP BY Name",
            "SELECT FROM Account",
            "SELECT Id Account",
            "SELECT Id FROM Account WHERE Name = \"x\"",
            "SELECT Id FROM Account WHERE Name = 'x",
            "SELECT Id FROM Account WHERE Name > null",
            "SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS:3",
            "SELECT Id FROM Account WHERE SystemModstamp > 2025-13-01T00:00:00Z",
            "SELECT Id FROM Account WHERE SystemModstamp > 2025-11-01T00:00:00",
            "SELECT Id, FROM Account",
            "SELECT Id FROM Account;",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn string_escapes_follow_the_table() {
        assert_eq!(
            decode_string_literal(r#"'O\'Brien \\ \n\N\r\t\b\f\"'"#).unwrap(),
            "O'Brien \\ \n\n\r\t\u{8}\u{c}\""
        );
        assert_eq!(
            decode_string_literal(r"'caf\u00e9 \uD83D\uDE00'").unwrap(),
            "café 😀"
        );
        for bad in [
            r"'\_'",
            r"'\%'",
            r"'\x'",
            r"'\'",
            r"'\u12'",
            r"'\uD83D'",
            "'a'b'",
            "abc",
        ] {
            assert!(decode_string_literal(bad).is_err(), "{bad}");
        }
        // `%` and `_` are ordinary characters outside LIKE.
        assert_eq!(decode_string_literal("'50%_off'").unwrap(), "50%_off");
    }

    #[test]
    fn like_patterns_and_matching() {
        let p = decode_like_pattern(r"'Acme\_%'").unwrap();
        assert!(like_matches(&p, "ACME_corp"));
        assert!(!like_matches(&p, "AcmeXcorp"));
        let p = decode_like_pattern("'%a_c%'").unwrap();
        assert!(like_matches(&p, "xxabcyy"));
        assert!(!like_matches(&p, "xxacyy"));
        assert!(like_matches(&decode_like_pattern("'%'").unwrap(), ""));
        assert!(!like_matches(&decode_like_pattern("'a'").unwrap(), "ab"));
    }

    #[test]
    fn literals_of_each_kind() {
        let q = parse(
            "SELECT Id FROM Opportunity WHERE Probability >= 75 AND Amount < -1.5 AND IsWon = TRUE \
             AND CloseDate = 2025-01-31 AND StageName NOT IN ('a', 'b') AND AccountId != NULL",
        )
        .unwrap();
        let Some(Expr::And(items)) = q.filter else {
            panic!()
        };
        assert!(
            matches!(&items[0], Expr::Compare { op: CmpOp::Ge, value: Literal::Number(n), .. } if *n == 75.0)
        );
        assert!(matches!(&items[1], Expr::Compare { value: Literal::Number(n), .. } if *n == -1.5));
        assert!(matches!(
            &items[2],
            Expr::Compare {
                value: Literal::Bool(true),
                ..
            }
        ));
        assert!(matches!(
            &items[3],
            Expr::Compare {
                value: Literal::Date(_),
                ..
            }
        ));
        let Expr::In {
            negated, values, ..
        } = &items[4]
        else {
            panic!()
        };
        assert!(*negated);
        assert_eq!(
            values.iter().map(|v| v.0.clone()).collect::<Vec<_>>(),
            vec![lit("a"), lit("b")]
        );
        assert!(matches!(
            &items[5],
            Expr::Compare {
                op: CmpOp::Ne,
                value: Literal::Null,
                ..
            }
        ));
    }

    #[test]
    fn semi_join_and_count() {
        let q = parse(
            "SELECT COUNT() FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE IsWon = true)",
        )
        .unwrap();
        assert_eq!(q.select, Select::Count);
        assert!(matches!(
            q.filter,
            Some(Expr::InQuery { negated: false, .. })
        ));
    }

    #[test]
    fn datetimes_in_both_renderings() {
        let a = parse_datetime("2025-11-01T10:20:30.123+0000", false).unwrap();
        let b = parse_datetime("2025-11-01T11:20:30.123+01:00", true).unwrap();
        assert_eq!(a, b);
        assert_eq!(format_datetime(b), "2025-11-01T10:20:30.123+0000");
        assert!(parse_datetime("2025-11-01T10:20:30.123+0000", true).is_none());
    }

    /// The escaping simple-salesforce's `format.py` applies (backslash first).
    fn escape_like_client_libraries(s: &str, like: bool) -> String {
        let mut out = String::from("'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '%' | '_' if like => {
                    out.push('\\');
                    out.push(c);
                }
                other => out.push(other),
            }
        }
        out.push('\'');
        out
    }

    proptest::proptest! {
        #[test]
        fn escaped_strings_decode_to_themselves(s in "(?s).{0,40}") {
            let quoted = escape_like_client_libraries(&s, false);
            proptest::prop_assert_eq!(decode_string_literal(&quoted).unwrap(), s.clone());
            // Inside a whole query too: the tokenizer finds the literal's end.
            let q = parse(&format!("SELECT Id FROM Account WHERE Name = {quoted}")).unwrap();
            let Some(Expr::Compare { value: Literal::String(v), .. }) = q.filter else {
                panic!("not a comparison")
            };
            proptest::prop_assert_eq!(v, s);
        }

        #[test]
        fn escaped_like_patterns_match_only_themselves(s in "[a-z%_'\\\\]{0,12}") {
            let pattern = decode_like_pattern(&escape_like_client_libraries(&s, true)).unwrap();
            proptest::prop_assert!(like_matches(&pattern, &s));
            let longer = format!("{}x", s);
            proptest::prop_assert!(!like_matches(&pattern, &longer));
        }
    }

    #[test]
    fn error_position_is_reported() {
        let q = "SELECT Id FROM Account WHERE";
        let e = parse(q).unwrap_err();
        let text = describe_error(q, e.offset, &e.message);
        assert!(text.contains("ERROR at Row:1:Column:29"), "{text}");
        assert!(text.contains("<EOF>"), "{text}");
    }
}
