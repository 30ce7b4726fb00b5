//! A subset of OData `$filter`: comparisons (`eq ne gt ge lt le`) of properties with string,
//! number, boolean, null and date-time literals, `and`, `or`, `not`, parentheses,
//! `startswith`, `endswith`, `contains`, and lambda `any` over collections such as
//! `singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')`. It is
//! evaluated against an entity's JSON (times in UTC).

use jiff::Timestamp;
use serde_json::Value;

use super::error::GraphError;
use super::extprops;
use super::wire;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Time(Timestamp),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Vec<String>),
    Lit(Lit),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, Op, Operand),
    Func(String, Operand, Operand),
    /// `path/any(var: body)`; without a lambda, "the collection is not empty".
    Any(Vec<String>, Option<(String, Box<Expr>)>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Time(Timestamp),
    Slash,
    Open,
    Close,
    Comma,
    Colon,
}

fn lex(text: &str) -> Result<Vec<Tok>, GraphError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '/' | '(' | ')' | ',' | ':' => {
                toks.push(match c {
                    '/' => Tok::Slash,
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Colon,
                });
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(GraphError::invalid_filter("unterminated string literal"));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], '-' | ':' | '.' | '+'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if let Ok(n) = word.parse::<f64>() {
                    toks.push(Tok::Num(n));
                } else if let Some(ts) = wire::parse_instant(&word) {
                    toks.push(Tok::Time(ts));
                } else {
                    return Err(GraphError::invalid_filter(format!(
                        "'{word}' is not a literal"
                    )));
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '@' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '@'))
                {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            c => return Err(GraphError::invalid_filter(format!("unexpected '{c}'"))),
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), GraphError> {
        match self.next() {
            Some(t) if t == tok => Ok(()),
            _ => Err(GraphError::invalid_filter(format!("expected {what}"))),
        }
    }

    fn or(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, GraphError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::Close, "')'")?;
            return Ok(inner);
        }
        for func in ["startswith", "endswith", "contains"] {
            if self.keyword(func) && self.toks.get(self.pos + 1) == Some(&Tok::Open) {
                self.pos += 2;
                let a = self.operand()?;
                self.expect(Tok::Comma, "','")?;
                let b = self.operand()?;
                self.expect(Tok::Close, "')'")?;
                return Ok(Expr::Func(func.to_string(), a, b));
            }
        }
        let left = self.operand()?;
        if let Operand::Path(path) = &left
            && let Some(last) = path.last()
            && (last.eq_ignore_ascii_case("any") && self.peek() == Some(&Tok::Open))
        {
            let collection = path[..path.len() - 1].to_vec();
            self.pos += 1;
            if self.peek() == Some(&Tok::Close) {
                self.pos += 1;
                return Ok(Expr::Any(collection, None));
            }
            let var = match self.next() {
                Some(Tok::Ident(v)) => v,
                _ => return Err(GraphError::invalid_filter("expected a lambda variable")),
            };
            self.expect(Tok::Colon, "':'")?;
            let body = self.or()?;
            self.expect(Tok::Close, "')'")?;
            return Ok(Expr::Any(collection, Some((var, Box::new(body)))));
        }
        let op = match self.peek() {
            Some(Tok::Ident(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => Some(Op::Eq),
                "ne" => Some(Op::Ne),
                "gt" => Some(Op::Gt),
                "ge" => Some(Op::Ge),
                "lt" => Some(Op::Lt),
                "le" => Some(Op::Le),
                _ => None,
            },
            _ => None,
        };
        match op {
            Some(op) => {
                self.pos += 1;
                let right = self.operand()?;
                Ok(Expr::Cmp(left, op, right))
            }
            // A bare boolean property.
            None => Ok(Expr::Cmp(left, Op::Eq, Operand::Lit(Lit::Bool(true)))),
        }
    }

    fn operand(&mut self) -> Result<Operand, GraphError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Operand::Lit(Lit::Str(s))),
            Some(Tok::Num(n)) => Ok(Operand::Lit(Lit::Num(n))),
            Some(Tok::Time(t)) => Ok(Operand::Lit(Lit::Time(t))),
            Some(Tok::Ident(w)) if w == "true" || w == "false" => {
                Ok(Operand::Lit(Lit::Bool(w == "true")))
            }
            Some(Tok::Ident(w)) if w == "null" => Ok(Operand::Lit(Lit::Null)),
            Some(Tok::Ident(first))
                if !["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&first)) =>
            {
                let mut path = vec![first];
                while self.peek() == Some(&Tok::Slash) {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Ident(w)) => path.push(w),
                        _ => {
                            return Err(GraphError::invalid_filter(
                                "expected a property name after '/'",
                            ));
                        }
                    }
                }
                Ok(Operand::Path(path))
            }
            _ => Err(GraphError::invalid_filter(
                "expected a property or a literal",
            )),
        }
    }
}

pub fn parse(text: &str) -> Result<Expr, GraphError> {
    let mut parser = Parser {
        toks: lex(text)?,
        pos: 0,
    };
    if parser.toks.is_empty() {
        return Err(GraphError::invalid_filter("empty"));
    }
    let expr = parser.or()?;
    if parser.pos != parser.toks.len() {
        return Err(GraphError::invalid_filter(
            "unexpected text after the expression",
        ));
    }
    Ok(expr)
}

/// What a filter is evaluated against: an entity's JSON and the names it may use.
pub struct Subject<'a> {
    pub json: &'a Value,
    /// Top-level properties that exist even when absent from the JSON (then null).
    pub known: &'a [&'a str],
    pub entity: &'a str,
}

struct Scope<'a> {
    var: Option<(&'a str, &'a Value)>,
}

fn lookup(subject: &Subject<'_>, scope: &Scope<'_>, path: &[String]) -> Result<Value, GraphError> {
    let (mut current, rest) = match scope.var {
        Some((var, value)) if path.first().is_some_and(|p| p == var) => (value, &path[1..]),
        _ => {
            let first = path.first().map(String::as_str).unwrap_or("");
            let name = subject
                .known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(first))
                .ok_or_else(|| GraphError::unknown_property(first, subject.entity))?;
            match subject.json.get(*name) {
                Some(v) => (v, &path[1..]),
                None => return Ok(Value::Null),
            }
        }
    };
    for segment in rest {
        current = match current.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(segment))
                .map(|(_, v)| v)
        }) {
            Some(v) => v,
            None => return Ok(Value::Null),
        };
    }
    Ok(current.clone())
}

fn literal(
    subject: &Subject<'_>,
    scope: &Scope<'_>,
    operand: &Operand,
) -> Result<(Lit, bool), GraphError> {
    match operand {
        Operand::Lit(l) => Ok((l.clone(), false)),
        Operand::Path(path) => {
            let is_id = path.last().is_some_and(|p| p.eq_ignore_ascii_case("id"));
            let lit = match lookup(subject, scope, path)? {
                Value::String(s) => Lit::Str(s),
                Value::Number(n) => Lit::Num(n.as_f64().unwrap_or(0.0)),
                Value::Bool(b) => Lit::Bool(b),
                _ => Lit::Null,
            };
            Ok((lit, is_id))
        }
    }
}

fn compare(a: &Lit, op: Op, b: &Lit, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (a, b) {
        (Lit::Str(x), Lit::Str(y)) if exact => {
            // Extended property ids: type and GUID case-insensitively, the name exactly.
            let (x, y) = (
                extprops::canonical(x).unwrap_or(x.clone()),
                extprops::canonical(y).unwrap_or(y.clone()),
            );
            Some(x.cmp(&y))
        }
        (Lit::Str(x), Lit::Str(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Lit::Num(x), Lit::Num(y)) => x.partial_cmp(y),
        (Lit::Bool(x), Lit::Bool(y)) => Some(x.cmp(y)),
        (Lit::Time(x), Lit::Time(y)) => Some(x.cmp(y)),
        (Lit::Str(s), Lit::Time(t)) => wire::parse_instant(s).map(|x| x.cmp(t)),
        (Lit::Time(t), Lit::Str(s)) => wire::parse_instant(s).map(|y| t.cmp(&y)),
        (Lit::Null, Lit::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (_, None) => false,
    }
}

fn eval_in(expr: &Expr, subject: &Subject<'_>, scope: &Scope<'_>) -> Result<bool, GraphError> {
    Ok(match expr {
        Expr::And(a, b) => eval_in(a, subject, scope)? && eval_in(b, subject, scope)?,
        Expr::Or(a, b) => eval_in(a, subject, scope)? || eval_in(b, subject, scope)?,
        Expr::Not(a) => !eval_in(a, subject, scope)?,
        Expr::Cmp(a, op, b) => {
            let (x, x_id) = literal(subject, scope, a)?;
            let (y, y_id) = literal(subject, scope, b)?;
            compare(&x, *op, &y, x_id || y_id)
        }
        Expr::Func(name, a, b) => {
            let (Lit::Str(x), _) = literal(subject, scope, a)? else {
                return Ok(false);
            };
            let (Lit::Str(y), _) = literal(subject, scope, b)? else {
                return Ok(false);
            };
            let (x, y) = (x.to_lowercase(), y.to_lowercase());
            match name.as_str() {
                "startswith" => x.starts_with(&y),
                "endswith" => x.ends_with(&y),
                _ => x.contains(&y),
            }
        }
        Expr::Any(path, lambda) => {
            let items = match lookup(subject, scope, path)? {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                _ => return Err(GraphError::invalid_filter("any() needs a collection")),
            };
            match lambda {
                None => !items.is_empty(),
                Some((var, body)) => {
                    let mut found = false;
                    for item in &items {
                        let inner = Scope {
                            var: Some((var.as_str(), item)),
                        };
                        if eval_in(body, subject, &inner)? {
                            found = true;
                            break;
                        }
                    }
                    found
                }
            }
        }
    })
}

fn walk(expr: &Expr, bound: &mut Vec<String>, out: &mut Vec<String>) {
    let mut operand = |o: &Operand, bound: &Vec<String>| {
        if let Operand::Path(path) = o
            && let Some(first) = path.first()
            && !bound.contains(first)
        {
            out.push(first.clone());
        }
    };
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            walk(a, bound, out);
            walk(b, bound, out);
        }
        Expr::Not(a) => walk(a, bound, out),
        Expr::Cmp(x, _, y) | Expr::Func(_, x, y) => {
            operand(x, bound);
            operand(y, bound);
        }
        Expr::Any(path, lambda) => {
            operand(&Operand::Path(path.clone()), bound);
            if let Some((var, body)) = lambda {
                bound.push(var.clone());
                walk(body, bound, out);
                bound.pop();
            }
        }
    }
}

/// The entity's properties a filter reads.
pub fn properties(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out
}

/// Refuses a filter that names a property the entity does not have (even when there is
/// nothing to filter).
pub fn check(expr: &Expr, known: &[&str], entity: &str) -> Result<(), GraphError> {
    for name in properties(expr) {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
            return Err(GraphError::unknown_property(&name, entity));
        }
    }
    Ok(())
}

/// Whether a filter reads more than the extended properties (which need no rendering).
pub fn needs_full_json(expr: &Expr) -> bool {
    properties(expr)
        .iter()
        .any(|n| !n.eq_ignore_ascii_case("singleValueExtendedProperties"))
}

/// The items a query's `$filter` keeps (all without one). `json` renders an item, fully or
/// only its extended properties (see [`needs_full_json`]).
pub fn matching<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    filter: Option<&Expr>,
    known: &[&str],
    entity: &str,
    json: impl Fn(&T, bool) -> Value,
) -> Result<Vec<&'a T>, GraphError> {
    let Some(filter) = filter else {
        return Ok(items.collect());
    };
    check(filter, known, entity)?;
    let full = needs_full_json(filter);
    let mut out = Vec::new();
    for item in items {
        let value = json(item, full);
        let subject = Subject {
            json: &value,
            known,
            entity,
        };
        if eval(filter, &subject)? {
            out.push(item);
        }
    }
    Ok(out)
}

/// Whether the entity matches the filter.
pub fn eval(expr: &Expr, subject: &Subject<'_>) -> Result<bool, GraphError> {
    eval_in(expr, subject, &Scope { var: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(filter: &str, json: &Value) -> bool {
        let subject = Subject {
            json,
            known: &[
                "subject",
                "singleValueExtendedProperties",
                "isAllDay",
                "lastModifiedDateTime",
            ],
            entity: "event",
        };
        eval(&parse(filter).unwrap(), &subject).unwrap()
    }

    #[test]
    fn the_documented_extended_property_filter_matches() {
        let event = json!({"singleValueExtendedProperties": [
            {"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId", "value": "Appt-42"}
        ]});
        let f = |id: &str, v: &str| {
            format!("singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{v}')")
        };
        assert!(matches(
            &f(
                "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId",
                "Appt-42"
            ),
            &event
        ));
        assert!(matches(
            &f(
                "string {66F5A359-4659-4830-9070-00047EC6AC6E} Name crmsyncId",
                "appt-42"
            ),
            &event
        ));
        assert!(!matches(
            &f(
                "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CRMSYNCID",
                "Appt-42"
            ),
            &event
        ));
        assert!(!matches(
            &f(
                "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId",
                "Appt-43"
            ),
            &event
        ));
    }

    #[test]
    fn comparisons_functions_and_logic() {
        let e = json!({"subject": "Lunch", "isAllDay": false, "lastModifiedDateTime": "2026-01-02T10:00:00.0000000Z"});
        assert!(matches("subject eq 'lunch'", &e));
        assert!(matches("startswith(subject,'Lu') and not isAllDay", &e));
        assert!(matches("lastModifiedDateTime ge 2026-01-01T00:00:00Z", &e));
        assert!(!matches(
            "lastModifiedDateTime lt 2026-01-01T00:00:00Z or subject eq 'x'",
            &e
        ));
        assert!(matches("(subject ne 'x')", &e));
    }

    #[test]
    fn bad_filters_are_refused_not_panicked_on() {
        for bad in [
            "",
            "subject eq",
            "subject eq 'x",
            "(subject eq 'x'",
            "a/Any(x x)",
            "subject ~ 1",
            "eq eq eq",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let subject = Subject {
            json: &json!({}),
            known: &["subject"],
            entity: "event",
        };
        assert!(eval(&parse("nosuch eq 1").unwrap(), &subject).is_err());
    }
}
