//! EventBridge events from Salesforce Event Relay: Account change events (CDC), the change
//! under `detail.payload` (the older AppFlow route puts it directly under `detail`; both are
//! read). One change names one or more accounts in `ChangeEventHeader.recordIds`: each gets
//! its own message, with one event id (`cdc:<transactionKey>:<sequenceNumber>`, stable across
//! redeliveries, else EventBridge's `id`).
//!
//! Which change becomes which event kind:
//! - UPDATE touching only the four link fields (+ LastModifiedDate, SystemModstamp): orglink's
//!   own write-back, an echo — unless `Zendesk_Domain__c` or `Zendesk_Org_ID__c` now holds a
//!   value other than what the link record says orglink wrote (a person's edit:
//!   `domain_changed`, resp. `manual`);
//! - `Type` changed to a customer type → `became_customer`; `Name` → `name_changed`;
//!   `Website` or `Zendesk_Domain__c` → `domain_changed`; anything else is ignored, with the
//!   fields named;
//! - CREATE/UNDELETE of a customer-type account → `became_customer`, otherwise ignored;
//! - DELETE, gap and overflow events are ignored (no field data; reconcile catches up).
//!
//! The source names the Salesforce org (`aws.partner/salesforce.com/<org id>/<channel>`): an
//! org other than the bound one is refused (ignored with a "refused" reason, logged as an
//! error; an error result would only make EventBridge retry it).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_shared::aws::{ExceptionStore, LinkStore, OrgMirror, WorkQueue};
use orglink_shared::contract::{EventKind, LinkField};
use orglink_shared::ids::AccountId;
use orglink_shared::signature::EventId;
use orglink_shared::sync_request::{RequestSource, SyncRequest};

use crate::{EventResult, Intake, InvocationError, Outcome, Summary};

/// The EventBridge detail-type of Account change events.
pub const ACCOUNT_CHANGE_EVENT: &str = "AccountChangeEvent";

pub async fn handle_event_relay<Q, L, M, E>(
    event: &Value,
    intake: &Intake<Q, L, M, E>,
) -> Result<Summary, InvocationError>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    let now = intake.now();
    let (planned, done) = plan(event, intake, now).await?;
    let mut results = done;
    results.extend(intake.enqueue(planned).await?);
    let summary = Summary::new(RequestSource::EventRelay, results);
    summary.log();
    Ok(summary)
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

type Planned = Vec<(SyncRequest, EventResult)>;

async fn plan<Q, L, M, E>(
    event: &Value,
    intake: &Intake<Q, L, M, E>,
    now: OffsetDateTime,
) -> Result<(Planned, Vec<EventResult>), InvocationError>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    let bridge_id = text(event, "/id").unwrap_or("unknown");
    let detail = event.get("detail").unwrap_or(&Value::Null);
    // Event Relay nests the change under `payload`; AppFlow put it directly under `detail`.
    let payload = match detail.get("payload") {
        Some(p) if p.is_object() => p,
        _ => detail,
    };
    let header = payload.get("ChangeEventHeader").unwrap_or(&Value::Null);
    let event_id = event_id(header, bridge_id);
    let whole = |reason: String| {
        Ok((
            vec![],
            vec![EventResult::new(&event_id, Outcome::Ignored).reason(reason)],
        ))
    };

    let detail_type = text(event, "/detail-type").unwrap_or("");
    if detail_type != ACCOUNT_CHANGE_EVENT {
        return whole(format!(
            "detail-type {detail_type:?} is not an Account change event"
        ));
    }
    let source = text(event, "/source").unwrap_or("");
    let binding = intake.config.binding();
    let org_ok = source_org(source)
        .map(|org| binding.check(org, binding.zendesk_subdomain().as_str()).map_err(|e| e.to_string()))
        .unwrap_or_else(|| Err(format!("source {source:?} names no Salesforce org (expected aws.partner/salesforce.com/<org id>/<channel>)")));
    if let Err(why) = org_ok {
        tracing::error!(event_id = %event_id, error = %why, outcome = "refused", "event refused");
        return whole(format!("refused: {why}"));
    }
    if !header.is_object() {
        return whole("the event has no ChangeEventHeader".into());
    }
    if let Some(entity) = text(header, "/entityName")
        && entity != "Account"
    {
        return whole(format!("a change to {entity}, not Account"));
    }
    let change_type = text(header, "/changeType").unwrap_or("");
    let ids: Vec<&str> = header
        .get("recordIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return whole("ChangeEventHeader.recordIds names no record".into());
    }
    let changed: Vec<&str> = header
        .get("changedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let occurred_at = header
        .get("commitTimestamp")
        .and_then(Value::as_i64)
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .or_else(|| text(event, "/time").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()))
        .unwrap_or(now);
    let modstamp =
        text(payload, "/SystemModstamp").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());

    let mut planned = Vec::new();
    let mut done = Vec::new();
    for (i, raw) in ids.iter().enumerate() {
        let base = EventResult::new(&event_id, Outcome::Ignored);
        if raw.contains('*') {
            done.push(base.reason(format!(
                "recordIds[{i}] {raw:?} is a wildcard (a field-type conversion), not one account"
            )));
            continue;
        }
        let account = match AccountId::parse(raw) {
            Ok(a) => a,
            Err(e) => {
                done.push(base.reason(format!("recordIds[{i}]: {e}")));
                continue;
            }
        };
        let base = base.account(&account);
        let decision = match change_type {
            "UPDATE" => classify_update(intake, &account, payload, &changed).await?,
            "CREATE" | "UNDELETE" => {
                if is_customer(intake, text(payload, "/Type")) {
                    Decision::Enqueue(EventKind::BecameCustomer)
                } else {
                    Decision::Ignore(format!(
                        "a {} of an account whose Type is not a customer type: an opportunity event or a later change decides",
                        change_type.to_ascii_lowercase()
                    ))
                }
            }
            "DELETE" => Decision::Ignore(
                "the account was deleted: reconcile reports its organization as orphaned".into(),
            ),
            t if t.starts_with("GAP_") => Decision::Ignore(format!(
                "{t} carries no field data: the nightly reconcile catches up"
            )),
            other => Decision::Ignore(format!("change type {other:?} is not one orglink acts on")),
        };
        match decision {
            Decision::Enqueue(kind) => {
                let request = SyncRequest {
                    account_id: account.clone(),
                    event_id: event_id.clone(),
                    kind,
                    source: RequestSource::EventRelay,
                    occurred_at,
                    account_modstamp: modstamp,
                    org_id: None,
                    note: None,
                };
                planned.push((
                    request,
                    EventResult {
                        outcome: Outcome::Enqueued,
                        ..base
                    }
                    .reason(kind.as_str()),
                ));
            }
            Decision::Echo(why) => done.push(
                EventResult {
                    outcome: Outcome::EchoDropped,
                    ..base
                }
                .reason(why),
            ),
            Decision::Ignore(why) => done.push(base.reason(why)),
        }
    }
    Ok((planned, done))
}

enum Decision {
    Enqueue(EventKind),
    Echo(String),
    Ignore(String),
}

/// `aws.partner/salesforce.com/<org id>/<channel id>` → the org id.
fn source_org(source: &str) -> Option<&str> {
    let rest = source.strip_prefix("aws.partner/salesforce.com/")?;
    rest.split('/').next().filter(|o| !o.is_empty())
}

/// A stable id for the change: the same change relayed twice has the same one.
fn event_id(header: &Value, bridge_id: &str) -> String {
    let key = text(header, "/transactionKey");
    let seq = header.get("sequenceNumber").and_then(Value::as_i64);
    if let (Some(key), Some(seq)) = (key, seq)
        && let Ok(id) = EventId::parse(&format!("cdc:{key}:{seq}"))
    {
        return id.as_str().to_string();
    }
    match EventId::parse(&format!("eb:{bridge_id}")) {
        Ok(id) => id.as_str().to_string(),
        // Not an id SQS can carry as is: the queue hashes it into the deduplication id anyway.
        Err(_) => format!(
            "eb:{}",
            bridge_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(60)
                .collect::<String>()
        ),
    }
}

fn is_customer<Q, L, M, E>(intake: &Intake<Q, L, M, E>, account_type: Option<&str>) -> bool {
    let Some(t) = account_type.map(str::trim) else {
        return false;
    };
    intake
        .config
        .eligibility()
        .customer_type_prefixes()
        .iter()
        .any(|p| {
            t.len() >= p.len()
                && t.is_char_boundary(p.len())
                && t[..p.len()].eq_ignore_ascii_case(p)
        })
}

fn has(changed: &[&str], field: &str) -> bool {
    changed.iter().any(|f| f.trim().eq_ignore_ascii_case(field))
}

async fn classify_update<Q, L, M, E>(
    intake: &Intake<Q, L, M, E>,
    account: &AccountId,
    payload: &Value,
    changed: &[&str],
) -> Result<Decision, InvocationError>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    if LinkField::only_link_fields(changed.iter().copied()) {
        // Only orglink writes the status and sync time; the org id and the domain a person
        // may edit too, which the link record tells apart.
        let record = intake.links.get(account).await?;
        for (field, kind) in [
            (LinkField::ZendeskOrgId, EventKind::Manual),
            (LinkField::ZendeskDomain, EventKind::DomainChanged),
        ] {
            let name = field.api_name();
            if !has(changed, name) {
                continue;
            }
            // A field absent from the payload cannot be compared: treated as the echo it
            // almost always is (reconcile catches a missed edit).
            let Some(new) = payload.get(name) else {
                continue;
            };
            let new = new.as_str().unwrap_or("");
            let written = record
                .as_ref()
                .and_then(|r| r.written_salesforce.get(name))
                .map(String::as_str)
                .unwrap_or("");
            if !new.eq_ignore_ascii_case(written) {
                return Ok(Decision::Enqueue(kind));
            }
        }
        return Ok(Decision::Echo(format!(
            "only link fields changed ({}), to what orglink wrote: its own write-back",
            changed.join(", ")
        )));
    }
    if has(changed, "Type") {
        if is_customer(intake, payload.get("Type").and_then(Value::as_str)) {
            return Ok(Decision::Enqueue(EventKind::BecameCustomer));
        }
        if !has(changed, "Name")
            && !has(changed, "Website")
            && !has(changed, LinkField::ZendeskDomain.api_name())
        {
            return Ok(Decision::Ignore(
                "Type changed to a non-customer type: an existing link is kept and reconcile reports it".into(),
            ));
        }
    }
    if has(changed, "Name") {
        return Ok(Decision::Enqueue(EventKind::NameChanged));
    }
    if has(changed, "Website") || has(changed, LinkField::ZendeskDomain.api_name()) {
        return Ok(Decision::Enqueue(EventKind::DomainChanged));
    }
    Ok(Decision::Ignore(format!(
        "no field orglink acts on changed ({})",
        changed.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use orglink_shared::aws::LinkRecord;
    use serde_json::json;

    const ORG: &str = "00D000000000001EAA";
    const A: &str = "001D000000IRFmaIAH";
    const B: &str = "001D000000IomazIAB";

    fn relay(change_type: &str, ids: &[&str], changed: &[&str], fields: Value) -> Value {
        let mut payload = json!({
            "ChangeEventHeader": {
                "entityName": "Account", "recordIds": ids, "changeType": change_type,
                "changedFields": changed, "changeOrigin": "com/salesforce/api/rest/62.0",
                "transactionKey": "0004d9f1-b2b9-4e3b-a53b-0d3a4e0e1c2f", "sequenceNumber": 1,
                "commitTimestamp": 1_767_225_590_000i64, "commitNumber": 1, "commitUser": "005000000000001AAA"
            },
            "LastModifiedDate": "2026-01-01T00:00:00.000Z", "SystemModstamp": "2026-01-01T00:00:00.000Z"
        });
        for (k, v) in fields.as_object().unwrap() {
            payload[k] = v.clone();
        }
        json!({
            "version": "0", "id": "5d1b9b1c-64b6-4b0a-9e4a-2a1d7c1f6e11", "detail-type": "AccountChangeEvent",
            "source": format!("aws.partner/salesforce.com/{ORG}/0YLRM0000004Dfg4AE"), "account": "123456789012",
            "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"payload": payload, "schemaId": "s", "id": "e"}
        })
    }

    async fn run(intake: &MemIntake, event: Value) -> Summary {
        handle_event_relay(&event, intake).await.unwrap()
    }

    #[tokio::test]
    async fn one_message_per_record_id_with_the_kind_from_the_fields() {
        let intake = intake();
        let s = run(
            &intake,
            relay(
                "UPDATE",
                &[A, B],
                &["Name", "LastModifiedDate"],
                json!({"Name": "Acme"}),
            ),
        )
        .await;
        assert_eq!((s.received, s.enqueued), (2, 2));
        let q = drain(&intake).await;
        assert_eq!(q.len(), 2);
        for (req, group, _) in &q {
            assert_eq!(req.kind, EventKind::NameChanged);
            assert_eq!(req.event_id, "cdc:0004d9f1-b2b9-4e3b-a53b-0d3a4e0e1c2f:1");
            assert_eq!(group, req.account_id.as_str());
            assert_eq!(req.source, RequestSource::EventRelay);
            assert_eq!(req.occurred_at.unix_timestamp(), 1_767_225_590);
            assert_eq!(
                req.account_modstamp.unwrap().unix_timestamp(),
                1_767_225_600
            );
        }
        assert_ne!(
            q[0].2, q[1].2,
            "one event, two accounts: two deduplication ids"
        );
        for (changed, fields, kind) in [
            (
                vec!["Type"],
                json!({"Type": "Customer - Direct"}),
                EventKind::BecameCustomer,
            ),
            (
                vec!["Website"],
                json!({"Website": "acme.com"}),
                EventKind::DomainChanged,
            ),
        ] {
            let mut e = relay("UPDATE", &[A], &changed, fields);
            e["detail"]["payload"]["ChangeEventHeader"]["sequenceNumber"] =
                json!(kind.as_str().len());
            run(&intake, e).await;
            assert_eq!(drain(&intake).await[0].0.kind, kind);
        }
        // AppFlow's shape: the change directly under detail.
        let mut flat = relay("CREATE", &[A], &[], json!({"Type": "Customer"}));
        flat["detail"] = flat["detail"]["payload"].clone();
        flat["detail"]["ChangeEventHeader"]["sequenceNumber"] = json!(99);
        let s = run(&intake, flat).await;
        assert_eq!(s.enqueued, 1, "{s:?}");
    }

    #[tokio::test]
    async fn echoes_and_person_edits_of_link_fields() {
        let intake = intake();
        let mut record = LinkRecord::new(AccountId::parse(A).unwrap());
        record
            .written_salesforce
            .insert("Zendesk_Domain__c".into(), "acme.com".into());
        record.synced_modstamp_ms = Some(1);
        intake.links.save(&record).await.unwrap();
        let echo = relay(
            "UPDATE",
            &[A],
            &[
                "Zendesk_Sync_Status__c",
                "Last_Zendesk_Sync_At__c",
                "Zendesk_Domain__c",
                "LastModifiedDate",
                "SystemModstamp",
            ],
            json!({"Zendesk_Domain__c": "acme.com", "Zendesk_Sync_Status__c": "Linked"}),
        );
        let s = run(&intake, echo).await;
        assert_eq!((s.received, s.echoes_dropped), (1, 1), "{s:?}");
        assert!(drain(&intake).await.is_empty());
        // A person set the reviewed domain to something else: that is a domain change.
        let edit = relay(
            "UPDATE",
            &[A],
            &["Zendesk_Domain__c", "LastModifiedDate"],
            json!({"Zendesk_Domain__c": "acme.io"}),
        );
        let s = run(&intake, edit).await;
        assert_eq!(s.enqueued, 1, "{s:?}");
        assert_eq!(drain(&intake).await[0].0.kind, EventKind::DomainChanged);
    }

    #[tokio::test]
    async fn what_is_ignored_says_why() {
        let intake = intake();
        let cases = [
            (
                relay("UPDATE", &[A], &["Phone", "LastModifiedDate"], json!({})),
                "no field orglink acts on changed (Phone, LastModifiedDate)",
            ),
            (
                relay("UPDATE", &[A], &["Type"], json!({"Type": "Prospect"})),
                "non-customer",
            ),
            (
                relay("CREATE", &[A], &[], json!({"Type": "Prospect"})),
                "not a customer type",
            ),
            (relay("DELETE", &[A], &[], json!({})), "deleted"),
            (
                relay("GAP_UPDATE", &[A], &[], json!({})),
                "GAP_UPDATE carries no field data",
            ),
            (relay("UPDATE", &["001*"], &["Name"], json!({})), "wildcard"),
            (
                relay("UPDATE", &["001D000000IRFmaIAX"], &["Name"], json!({})),
                "recordIds[0]",
            ),
        ];
        for (event, says) in cases {
            let s = run(&intake, event).await;
            assert_eq!((s.received, s.ignored), (1, 1), "{says}: {s:?}");
            let reason = s.results[0].reason.as_deref().unwrap();
            assert!(reason.contains(says), "{reason:?} lacks {says:?}");
        }
        let mut other = relay("UPDATE", &[A], &["Name"], json!({}));
        other["detail-type"] = json!("OpportunityChangeEvent");
        assert_eq!(run(&intake, other).await.ignored, 1);
        let mut foreign = relay("UPDATE", &[A], &["Name"], json!({}));
        foreign["source"] = json!("aws.partner/salesforce.com/00D000000000002EAA/0YL");
        let s = run(&intake, foreign).await;
        assert!(
            s.results[0]
                .reason
                .as_deref()
                .unwrap()
                .starts_with("refused: "),
            "{s:?}"
        );
        assert!(drain(&intake).await.is_empty());
    }

    #[tokio::test]
    async fn the_dispatch_reads_both_shapes() {
        let intake = intake();
        let out = intake
            .handle_invocation(relay("UPDATE", &[A], &["Name"], json!({})))
            .await
            .unwrap();
        assert_eq!(out["enqueued"], 1);
        assert!(intake.handle_invocation(json!({"hello": 1})).await.is_err());
    }
}
