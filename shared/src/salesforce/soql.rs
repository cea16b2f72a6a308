//! A small SOQL builder. Values only enter a query through [`quote`] / [`quote_like`] (escaped
//! exactly per Salesforce's "Quoted String Escape Sequences") or typed literals, and field and
//! object names are checked to be plain identifiers, so no value can change a query's shape.

use std::fmt::Write as _;

use thiserror::Error;
use time::OffsetDateTime;
use time::macros::format_description;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SoqlError {
    #[error("{0:?} is not a SOQL field or object name")]
    BadName(String),
    #[error("an IN list needs at least one value")]
    EmptyIn,
}

/// `value` as a quoted SOQL string literal: `\` first, then quotes and control characters.
/// Other control characters (no short escape exists) go as `\uXXXX`.
pub fn quote(value: &str) -> String {
    quote_with(value, false)
}

/// `value` as a quoted LIKE pattern matching itself literally (`%` and `_` escaped too). Add
/// wildcards around it with [`Cond::like_prefix`] and friends, never by concatenation.
pub fn quote_like(value: &str) -> String {
    quote_with(value, true)
}

fn quote_with(value: &str, like: bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    escape_into(&mut out, value, like);
    out.push('\'');
    out
}

fn escape_into(out: &mut String, value: &str, like: bool) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '%' if like => out.push_str("\\%"),
            '_' if like => out.push_str("\\_"),
            c if c.is_control() && (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A typed value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Int(i64),
    Null,
    /// Rendered unquoted in UTC: `2025-11-01T00:00:00Z`.
    DateTime(OffsetDateTime),
}

impl Lit {
    fn render(&self, out: &mut String) {
        match self {
            Lit::Str(s) => out.push_str(&quote(s)),
            Lit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Lit::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Lit::Null => out.push_str("null"),
            Lit::DateTime(at) => out.push_str(&datetime_literal(*at)),
        }
    }
}

impl From<&str> for Lit {
    fn from(s: &str) -> Self {
        Lit::Str(s.to_string())
    }
}
impl From<String> for Lit {
    fn from(s: String) -> Self {
        Lit::Str(s)
    }
}
impl From<bool> for Lit {
    fn from(b: bool) -> Self {
        Lit::Bool(b)
    }
}

/// A datetime literal as SOQL writes it (unquoted, UTC, seconds).
pub fn datetime_literal(at: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC datetime formats")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp(String, Op, Lit),
    In(String, Vec<Lit>),
    /// `field LIKE pattern`; the pattern is already escaped, with its wildcards.
    Like(String, String),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn eq(field: &str, value: impl Into<Lit>) -> Cond {
        Cond::Cmp(field.into(), Op::Eq, value.into())
    }
    pub fn cmp(field: &str, op: Op, value: impl Into<Lit>) -> Cond {
        Cond::Cmp(field.into(), op, value.into())
    }
    pub fn in_list<I, L>(field: &str, values: I) -> Cond
    where
        I: IntoIterator<Item = L>,
        L: Into<Lit>,
    {
        Cond::In(field.into(), values.into_iter().map(Into::into).collect())
    }
    /// `field LIKE 'value%'`, `value` matched literally.
    pub fn like_prefix(field: &str, value: &str) -> Cond {
        let mut pattern = quote_like(value);
        pattern.insert(pattern.len() - 1, '%');
        Cond::Like(field.into(), pattern)
    }
    pub fn and(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond::And(conds.into_iter().collect())
    }
    pub fn or(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond::Or(conds.into_iter().collect())
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(cond: Cond) -> Cond {
        Cond::Not(Box::new(cond))
    }

    fn render(&self, out: &mut String) -> Result<(), SoqlError> {
        match self {
            Cond::Cmp(f, op, v) => {
                out.push_str(name(f)?);
                let _ = write!(out, " {} ", op.as_str());
                v.render(out);
            }
            Cond::In(f, values) => {
                if values.is_empty() {
                    return Err(SoqlError::EmptyIn);
                }
                out.push_str(name(f)?);
                out.push_str(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render(out);
                }
                out.push(')');
            }
            Cond::Like(f, pattern) => {
                out.push_str(name(f)?);
                out.push_str(" LIKE ");
                out.push_str(pattern);
            }
            Cond::And(list) | Cond::Or(list) => {
                let sep = if matches!(self, Cond::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                out.push('(');
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    c.render(out)?;
                }
                out.push(')');
            }
            Cond::Not(c) => {
                out.push_str("(NOT ");
                c.render(out)?;
                out.push(')');
            }
        }
        Ok(())
    }
}

/// `Name`, `Owner.Email`, `Zendesk_Org_ID__c`: letters, digits and underscores, dot-separated.
fn name(n: &str) -> Result<&str, SoqlError> {
    let ok = !n.is_empty()
        && n.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(n)
    } else {
        Err(SoqlError::BadName(n.to_string()))
    }
}

/// `SELECT fields FROM object [WHERE cond] [ORDER BY ...] [LIMIT n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    fields: Vec<String>,
    object: String,
    filter: Option<Cond>,
    order_by: Vec<(String, bool)>,
    limit: Option<u64>,
}

impl Select {
    pub fn new<I, S>(object: &str, fields: I) -> Select
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Select {
            fields: fields.into_iter().map(Into::into).collect(),
            object: object.to_string(),
            filter: None,
            order_by: Vec::new(),
            limit: None,
        }
    }
    pub fn filter(mut self, cond: Cond) -> Select {
        self.filter = Some(cond);
        self
    }
    pub fn order_by(mut self, field: &str, descending: bool) -> Select {
        self.order_by.push((field.to_string(), descending));
        self
    }
    pub fn limit(mut self, n: u64) -> Select {
        self.limit = Some(n);
        self
    }

    pub fn build(&self) -> Result<String, SoqlError> {
        let mut out = String::from("SELECT ");
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name(f)?);
        }
        out.push_str(" FROM ");
        out.push_str(name(&self.object)?);
        if let Some(c) = &self.filter {
            out.push_str(" WHERE ");
            c.render(&mut out)?;
        }
        if !self.order_by.is_empty() {
            out.push_str(" ORDER BY ");
            for (i, (f, desc)) in self.order_by.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(name(f)?);
                if *desc {
                    out.push_str(" DESC");
                }
            }
        }
        if let Some(n) = self.limit {
            let _ = write!(out, " LIMIT {n}");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_per_the_reference_table() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("\"x\"\n\r\t\u{8}\u{c}"), r#"'\"x\"\n\r\t\b\f'"#);
        assert_eq!(quote("100%_"), "'100%_'");
        assert_eq!(quote_like("100%_"), r"'100\%\_'");
        assert_eq!(quote("\u{1}"), r"'\u0001'");
        assert_eq!(quote("Zoë 🚀"), "'Zoë 🚀'");
    }

    #[test]
    fn builds_queries_and_refuses_bad_names() {
        let q = Select::new("Account", ["Id", "Owner.Email"])
            .filter(Cond::and([
                Cond::in_list("Id", ["001A", "001B"]),
                Cond::eq("IsDeleted", false),
                Cond::like_prefix("Type", "Customer"),
            ]))
            .order_by("SystemModstamp", false)
            .limit(10)
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT Id, Owner.Email FROM Account WHERE (Id IN ('001A', '001B') AND IsDeleted = false AND Type LIKE 'Customer%') ORDER BY SystemModstamp LIMIT 10"
        );
        assert!(matches!(
            Select::new("Account", ["Id FROM User --"]).build(),
            Err(SoqlError::BadName(_))
        ));
        assert_eq!(
            Select::new("Account", ["Id"])
                .filter(Cond::in_list::<_, &str>("Id", []))
                .build(),
            Err(SoqlError::EmptyIn)
        );
        let at = time::macros::datetime!(2025-11-01 00:00:00 UTC);
        assert_eq!(
            Select::new("Account", ["Id"])
                .filter(Cond::cmp("SystemModstamp", Op::Gt, Lit::DateTime(at)))
                .build()
                .unwrap(),
            "SELECT Id FROM Account WHERE SystemModstamp > 2025-11-01T00:00:00Z"
        );
    }
}
