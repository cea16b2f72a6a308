//! SOQL literal escaping: any string, quoted by orglink's builder, decodes (by the sandbox's
//! reading of Salesforce's escape table) to exactly itself, and a query built around it parses
//! as that one literal, so no value can change a query's shape. The same for LIKE prefixes
//! and IN lists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orglink_sandbox::salesforce::decode_string_literal;
use orglink_sandbox::salesforce::soql::{self as sandbox, CmpOp, Expr, LikePart, Literal};
use orglink_shared::salesforce::soql::{Cond, Select, quote, quote_like};

fuzz_target!(|values: (&str, &str)| {
    let (value, other) = values;
    let quoted = quote(value);
    assert_eq!(
        decode_string_literal(&quoted).as_deref(),
        Ok(value),
        "{quoted} does not decode to the value"
    );

    let query = Select::new("Account", ["Id"])
        .filter(Cond::eq("Name", value))
        .build()
        .expect("fixed names build");
    let parsed = sandbox::parse(&query).unwrap_or_else(|e| panic!("{query:?}: {}", e.message));
    match parsed.filter {
        Some(Expr::Compare {
            field,
            op: CmpOp::Eq,
            value: Literal::String(s),
            ..
        }) => {
            assert_eq!(field.dotted(), "Name");
            assert_eq!(s, value, "{query:?}");
        }
        other => panic!("{query:?} is not one comparison with a string: {other:?}"),
    }

    let query = Select::new("Account", ["Id"])
        .filter(Cond::in_list("Name", [value, other]))
        .build()
        .expect("fixed names build");
    match sandbox::parse(&query).map(|q| q.filter) {
        Ok(Some(Expr::In {
            negated: false,
            values,
            ..
        })) => {
            let got: Vec<&Literal> = values.iter().map(|(l, _)| l).collect();
            assert_eq!(
                got,
                [
                    &Literal::String(value.into()),
                    &Literal::String(other.into())
                ],
                "{query:?}"
            );
        }
        r => panic!("{query:?} is not one IN list of two strings: {r:?}"),
    }

    // LIKE: the value matches itself literally, then the one wildcard the builder adds.
    let like = quote_like(value);
    let decoded =
        sandbox::decode_like_pattern(&like).unwrap_or_else(|e| panic!("{like}: {}", e.message));
    let literal: Vec<LikePart> = value.chars().map(LikePart::Char).collect();
    assert_eq!(decoded, literal, "{like}");
    let query = Select::new("Account", ["Id"])
        .filter(Cond::like_prefix("Type", value))
        .build()
        .expect("fixed names build");
    match sandbox::parse(&query).map(|q| q.filter) {
        Ok(Some(Expr::Like { pattern, .. })) => {
            let mut expected = literal;
            expected.push(LikePart::Many);
            assert_eq!(pattern, expected, "{query:?}");
            assert!(sandbox::like_matches(&pattern, &format!("{value}{other}")));
        }
        r => panic!("{query:?} is not one LIKE: {r:?}"),
    }
});
