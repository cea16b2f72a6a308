//! The one place that decides what a failed call means: retry later (and when), sign in again,
//! or stop (with a reason a support lead can read). Callers get a [`Disposition`] and never
//! look at status codes.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::System;

/// An error answer as the API sent it, read from either system's envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiProblem {
    pub status: u16,
    /// Salesforce `errorCode`/`statusCode`; Zendesk `error` or `errors[0].code`.
    pub code: Option<String>,
    /// Salesforce `message`; Zendesk `description` or `errors[0].title`. Never a secret: the
    /// APIs do not echo credentials.
    pub message: String,
    /// Salesforce `fields`.
    pub fields: Vec<String>,
    /// Zendesk `details` (`{"name": [{"error": "DuplicateValue", ...}]}`), else `null`.
    pub details: Value,
}

impl ApiProblem {
    /// Reads an error body. Salesforce: `[{"message","errorCode","fields"}]` (OAuth:
    /// `{"error","error_description"}`). Zendesk: `{"error","description","details"}` or
    /// `{"errors":[{"code","title"}]}`; some 429s and 503s are plain text.
    pub fn parse(system: System, status: u16, body: &[u8]) -> ApiProblem {
        let mut p = ApiProblem {
            status,
            code: None,
            message: String::new(),
            fields: Vec::new(),
            details: Value::Null,
        };
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        match (system, &json) {
            (System::Salesforce, Some(Value::Array(items))) => {
                if let Some(first) = items.first() {
                    p.code = text(first.get("errorCode")).or_else(|| text(first.get("statusCode")));
                    p.message = text(first.get("message")).unwrap_or_default();
                    p.fields = first
                        .get("fields")
                        .and_then(Value::as_array)
                        .map(|f| f.iter().filter_map(|x| text(Some(x))).collect())
                        .unwrap_or_default();
                }
            }
            (_, Some(Value::Object(o))) => {
                if let Some(errors) = o.get("errors").and_then(Value::as_array) {
                    let first = errors.first();
                    p.code = text(first.and_then(|e| e.get("code")));
                    p.message = text(first.and_then(|e| e.get("title")))
                        .or_else(|| text(first.and_then(|e| e.get("detail"))))
                        .unwrap_or_default();
                } else {
                    p.code = match o.get("error") {
                        Some(Value::String(s)) => Some(s.clone()),
                        // Some Zendesk errors nest `{"error": {"title", "message"}}`.
                        Some(Value::Object(e)) => text(e.get("title")),
                        _ => None,
                    };
                    p.message = text(o.get("description"))
                        .or_else(|| text(o.get("error_description")))
                        .or_else(|| text(o.get("error").and_then(|e| e.get("message"))))
                        .unwrap_or_default();
                }
                p.details = o.get("details").cloned().unwrap_or(Value::Null);
            }
            _ => {
                // Plain text or HTML: keep a short, single-line excerpt for the reason.
                let t = String::from_utf8_lossy(body);
                p.message = t.split_whitespace().collect::<Vec<_>>().join(" ");
                p.message.truncate(200);
            }
        }
        p
    }

    /// A Zendesk validation detail (`details.{field}[].error`, older responses `type`), e.g.
    /// `DuplicateValue` on `name` or `external_id`.
    pub fn detail_error(&self, field: &str) -> Option<(&str, &str)> {
        self.details.get(field)?.as_array()?.iter().find_map(|d| {
            let kind = d
                .get("error")
                .or_else(|| d.get("type"))
                .and_then(Value::as_str)?;
            let description = d.get("description").and_then(Value::as_str).unwrap_or("");
            Some((kind, description))
        })
    }

    fn summary(&self) -> String {
        match (&self.code, self.message.is_empty()) {
            (Some(c), false) => format!("{c}: {}", self.message),
            (Some(c), true) => c.clone(),
            (None, false) => self.message.clone(),
            (None, true) => format!("HTTP {}", self.status),
        }
    }
}

/// What a failed call means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Transient: try again, no sooner than `after` when the API said so.
    RetryLater {
        after: Option<Duration>,
        reason: String,
    },
    /// The session expired: sign in again, then retry once.
    Reauthenticate,
    /// Retrying will not help. `review`: a person can fix it (a validation rule, a permission,
    /// a duplicate); otherwise it is a defect or a record that is gone.
    Permanent { reason: String, review: bool },
}

/// What a caller does with a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "disposition", rename_all = "snake_case")]
pub enum Disposition {
    /// Try again later (not before `after`, when known).
    Retry { after: Option<Duration> },
    /// A person must act; the reason says what is wrong in plain words.
    Review { reason: String },
    /// Stop: retrying or reviewing will not change the answer.
    GiveUp { reason: String },
}

impl Verdict {
    pub fn disposition(&self) -> Disposition {
        match self {
            Verdict::RetryLater { after, .. } => Disposition::Retry { after: *after },
            // Reached only when signing in again did not help.
            Verdict::Reauthenticate => Disposition::Review {
                reason: "Salesforce keeps refusing orglink's session after signing in again; check the integration user and the app's session policy".into(),
            },
            Verdict::Permanent { reason, review: true } => Disposition::Review {
                reason: reason.clone(),
            },
            Verdict::Permanent {
                reason,
                review: false,
            } => Disposition::GiveUp {
                reason: reason.clone(),
            },
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Verdict::RetryLater { .. })
    }

    fn retry(after: Option<Duration>, reason: impl Into<String>) -> Verdict {
        Verdict::RetryLater {
            after,
            reason: reason.into(),
        }
    }
    fn review(reason: impl Into<String>) -> Verdict {
        Verdict::Permanent {
            reason: reason.into(),
            review: true,
        }
    }
    fn give_up(reason: impl Into<String>) -> Verdict {
        Verdict::Permanent {
            reason: reason.into(),
            review: false,
        }
    }
}

/// How long Salesforce's rolling 24-hour allocation takes to free calls again, roughly:
/// a run that hits it should come back next hour, not in seconds.
pub const DAILY_LIMIT_BACKOFF: Duration = Duration::from_secs(3600);

/// Classifies a failed response. `retry_after` is the `Retry-After` header, when sent.
pub fn classify(system: System, problem: &ApiProblem, retry_after: Option<Duration>) -> Verdict {
    match system {
        System::Salesforce => classify_salesforce(problem, retry_after),
        System::Zendesk => classify_zendesk(problem, retry_after),
    }
}

/// Classifies a connection that failed before a complete answer arrived.
pub fn classify_transport(timeout: bool) -> Verdict {
    if timeout {
        Verdict::retry(None, "the request timed out")
    } else {
        Verdict::retry(
            None,
            "the connection failed before a complete answer arrived",
        )
    }
}

fn classify_salesforce(p: &ApiProblem, retry_after: Option<Duration>) -> Verdict {
    let code = p.code.as_deref().unwrap_or("");
    let summary = p.summary();
    match (p.status, code) {
        (401, "INVALID_SESSION_ID") => Verdict::Reauthenticate,
        // "This session is not valid for use with the REST API" and friends: signing in again
        // yields the same kind of session, so refreshing would loop.
        (401, _) => Verdict::review(format!(
            "Salesforce refused orglink's session ({summary}); check the app's session and API settings"
        )),
        (_, "REQUEST_LIMIT_EXCEEDED") if p.message.contains("Concurrent") => Verdict::retry(
            retry_after,
            format!("Salesforce is throttling concurrent requests ({summary})"),
        ),
        (_, "REQUEST_LIMIT_EXCEEDED") => Verdict::retry(
            Some(retry_after.unwrap_or(DAILY_LIMIT_BACKOFF)),
            format!("the Salesforce org's daily API allocation is spent ({summary})"),
        ),
        (429 | 420, _) => Verdict::retry(
            retry_after,
            format!("Salesforce is rate limiting ({summary})"),
        ),
        (s, _) if s >= 500 => Verdict::retry(
            retry_after,
            format!("Salesforce is unavailable ({summary})"),
        ),
        (404, "ENTITY_IS_DELETED") | (_, "ENTITY_IS_DELETED") => {
            Verdict::give_up(format!("the Salesforce record is deleted ({summary})"))
        }
        (404, _) => Verdict::give_up(format!(
            "the Salesforce record or resource does not exist ({summary})"
        )),
        (_, c) => classify_salesforce_code(c, &summary),
    }
}

/// Classifies a Salesforce error code, as a whole response or as one record's `statusCode` in
/// an sObject Collections result.
pub fn classify_salesforce_code(code: &str, summary: &str) -> Verdict {
    match code {
        "UNABLE_TO_LOCK_ROW" => Verdict::retry(
            None,
            format!("another process holds a lock on the Salesforce record ({summary})"),
        ),
        "QUERY_TIMEOUT" | "SERVER_UNAVAILABLE" => {
            Verdict::retry(None, format!("Salesforce timed out ({summary})"))
        }
        "ALL_OR_NONE_OPERATION_ROLLED_BACK" => Verdict::retry(
            None,
            "rolled back because another record in the same request failed".to_string(),
        ),
        "FIELD_CUSTOM_VALIDATION_EXCEPTION" => Verdict::review(format!(
            "a Salesforce validation rule refused the write ({summary}); an admin must relax the rule for the integration user or fix the record"
        )),
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" => Verdict::review(format!(
            "Zendesk_Sync_Status__c does not allow the value orglink writes ({summary}); install the field from infra/salesforce"
        )),
        "INVALID_FIELD"
        | "INVALID_FIELD_FOR_INSERT_UPDATE"
        | "INSUFFICIENT_ACCESS"
        | "INSUFFICIENT_ACCESS_OR_READONLY"
        | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"
        | "FIELD_INTEGRITY_EXCEPTION" => Verdict::review(format!(
            "the integration user cannot read or write a field ({summary}); assign the orglink permission set"
        )),
        "DUPLICATE_VALUE" | "DUPLICATES_DETECTED" => Verdict::review(format!(
            "another Salesforce account already holds this value ({summary})"
        )),
        "STRING_TOO_LONG" => {
            Verdict::review(format!("a value is too long for its field ({summary})"))
        }
        "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "NOT_FOUND" => Verdict::give_up(
            format!("the Salesforce record no longer exists ({summary})"),
        ),
        "INVALID_QUERY_LOCATOR" => Verdict::give_up(format!(
            "the query's cursor expired; run the query again ({summary})"
        )),
        _ => Verdict::give_up(format!("Salesforce refused the request ({summary})")),
    }
}

fn classify_zendesk(p: &ApiProblem, retry_after: Option<Duration>) -> Verdict {
    let summary = p.summary();
    match p.status {
        429 => Verdict::retry(retry_after, format!("Zendesk is rate limiting ({summary})")),
        // 409: two writes to the same record raced (documented for users/tickets).
        409 => Verdict::retry(
            retry_after,
            format!("Zendesk reported a conflicting write ({summary})"),
        ),
        s if s >= 500 => Verdict::retry(retry_after, format!("Zendesk is unavailable ({summary})")),
        401 => Verdict::review(format!(
            "Zendesk refused orglink's credentials ({summary}); check the API token and that token access is enabled"
        )),
        403 => Verdict::review(format!(
            "the Zendesk user orglink signs in as may not do this ({summary}); it needs the admin role"
        )),
        404 => Verdict::give_up(format!("the Zendesk record does not exist ({summary})")),
        422 => {
            let detail = ["name", "external_id", "domain_names"]
                .iter()
                .find_map(|f| p.detail_error(f).map(|(k, d)| format!("{f}: {k} ({d})")));
            Verdict::review(format!(
                "Zendesk refused the record ({})",
                detail.unwrap_or(summary)
            ))
        }
        _ => Verdict::give_up(format!("Zendesk refused the request ({summary})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sf(status: u16, body: &str) -> Verdict {
        classify(
            System::Salesforce,
            &ApiProblem::parse(System::Salesforce, status, body.as_bytes()),
            None,
        )
    }
    fn zd(status: u16, body: &str, retry_after: Option<u64>) -> Verdict {
        classify(
            System::Zendesk,
            &ApiProblem::parse(System::Zendesk, status, body.as_bytes()),
            retry_after.map(Duration::from_secs),
        )
    }

    #[test]
    fn salesforce_failures_are_classified() {
        assert_eq!(
            sf(
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            Verdict::Reauthenticate
        );
        assert!(matches!(
            sf(
                401,
                r#"[{"message":"This session is not valid for use with the REST API","errorCode":"INVALID_SESSION_ID_X"}]"#
            ),
            Verdict::Permanent { review: true, .. }
        ));
        let daily = sf(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert_eq!(
            daily.disposition(),
            Disposition::Retry {
                after: Some(DAILY_LIMIT_BACKOFF)
            }
        );
        let concurrent = sf(
            403,
            r#"[{"message":"ConcurrentRequests (Concurrent API Requests) Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert_eq!(concurrent.disposition(), Disposition::Retry { after: None });
        assert!(sf(503, "<html>Maintenance</html>").is_retryable());
        assert!(sf(400, r#"[{"message":"x","errorCode":"UNABLE_TO_LOCK_ROW"}]"#).is_retryable());
        let rule = sf(
            400,
            r#"[{"message":"Domain must be set","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":[]}]"#,
        );
        match rule.disposition() {
            Disposition::Review { reason } => assert!(
                reason.contains("validation rule") && reason.contains("Domain must be set"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sf(
                400,
                r#"[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]"#
            )
            .disposition(),
            Disposition::GiveUp { .. }
        ));
        assert!(matches!(
            sf(
                404,
                r#"[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED"}]"#
            )
            .disposition(),
            Disposition::GiveUp { .. }
        ));
    }

    #[test]
    fn zendesk_failures_are_classified_in_both_envelopes() {
        assert_eq!(
            zd(
                429,
                r#"{"errors":[{"code":"TooManyRequests","title":"Too many requests to update"}]}"#,
                Some(7)
            )
            .disposition(),
            Disposition::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            zd(
                429,
                "You have exceeded the rate limit for updating a single unique user.",
                None
            )
            .disposition(),
            Disposition::Retry { after: None }
        );
        let dup = r#"{"error":"RecordInvalid","description":"Record validation errors","details":{"name":[{"description":"Name: Acme has already been taken","error":"DuplicateValue"}]}}"#;
        let p = ApiProblem::parse(System::Zendesk, 422, dup.as_bytes());
        assert_eq!(p.code.as_deref(), Some("RecordInvalid"));
        assert_eq!(
            p.detail_error("name"),
            Some(("DuplicateValue", "Name: Acme has already been taken"))
        );
        let old = r#"{"error":"RecordInvalid","details":{"external_id":[{"description":"taken","type":"DuplicateValue"}]}}"#;
        let p = ApiProblem::parse(System::Zendesk, 422, old.as_bytes());
        assert_eq!(
            p.detail_error("external_id"),
            Some(("DuplicateValue", "taken"))
        );
        assert!(matches!(
            zd(422, dup, None),
            Verdict::Permanent { review: true, .. }
        ));
        assert!(matches!(
            zd(
                404,
                r#"{"error":"RecordNotFound","description":"Not found"}"#,
                None
            )
            .disposition(),
            Disposition::GiveUp { .. }
        ));
        assert!(zd(500, r#"{"error":"InternalServerError"}"#, None).is_retryable());
        assert!(matches!(
            zd(401, r#"{"error":"Couldn't authenticate you"}"#, None),
            Verdict::Permanent { review: true, .. }
        ));
    }

    #[test]
    fn plain_text_bodies_are_kept_short() {
        let body = "x ".repeat(1000);
        let p = ApiProblem::parse(System::Zendesk, 503, body.as_bytes());
        assert!(p.message.len() <= 200);
        assert_eq!(p.code, None);
    }
}
