//! Bulk jobs (`create_many`, `update_many`): the job status and one result per item. The shape
//! of a failed item is UNVERIFIED, so both seen forms are read: `{"index","error","details"}`
//! and `{"success": false, "status": "Failed", "error"}`.

use serde::Serialize;
use serde_json::Value;

use super::ZendeskError;
use crate::http::failure::Disposition;
use crate::ids::OrgId;

#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    pub id: String,
    pub status: String,
    pub message: Option<String>,
    pub results: Vec<Value>,
}

/// One input's result, `index` being its position in the whole input list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobItem {
    pub index: usize,
    pub result: Result<OrgId, JobItemError>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobItemError {
    /// Zendesk's error kind (`DuplicateValue`, `RecordNotFound`, ...), or `Missing` when the
    /// job reported nothing for the item.
    pub error: String,
    pub details: String,
    pub id: Option<OrgId>,
}

impl JobItemError {
    pub fn disposition(&self) -> Disposition {
        match self.error.as_str() {
            "RecordNotFound" => Disposition::GiveUp {
                reason: format!("the organization does not exist ({})", self.details),
            },
            "Missing" => Disposition::Retry { after: None },
            _ => Disposition::Review {
                reason: format!(
                    "Zendesk refused the organization: {} ({})",
                    self.error, self.details
                ),
            },
        }
    }
}

pub(crate) fn parse(endpoint: &'static str, v: &Value) -> Result<JobOutcome, ZendeskError> {
    let job = v.get("job_status").ok_or_else(|| ZendeskError::Protocol {
        endpoint,
        detail: "no job_status in the answer".into(),
    })?;
    let text = |k: &str| job.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(JobOutcome {
        id: text("id").ok_or_else(|| ZendeskError::Protocol {
            endpoint,
            detail: "a job_status without id".into(),
        })?,
        status: text("status").unwrap_or_default(),
        message: text("message"),
        results: job
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// One [`JobItem`] per input of a job of `count` items, offset by `base` (the job's first
/// item in the whole list). An item the job does not mention is reported `Missing`.
pub(crate) fn items(job: &JobOutcome, count: usize, base: usize) -> Vec<JobItem> {
    let mut out: Vec<Option<JobItem>> = vec![None; count];
    for (position, r) in job.results.iter().enumerate() {
        // Results carry `index` (creates, failures); update successes do not (reference §3,
        // "Job statuses": `{"id","action","success","status"}`): their position in the list is
        // taken then, which is a guess, so callers match update results by their `id`.
        let index = r
            .get("index")
            .and_then(Value::as_u64)
            .map_or(position, |i| i as usize);
        if index >= count {
            continue;
        }
        let id = r
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|n| OrgId::new(n).ok());
        let error = r.get("error").and_then(Value::as_str);
        let failed = error.is_some() || r.get("success").and_then(Value::as_bool) == Some(false);
        let result = match (failed, id) {
            (false, Some(id)) => Ok(id),
            _ => Err(JobItemError {
                error: error.unwrap_or("Failed").to_string(),
                details: match r.get("details") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => r
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    Some(other) => other.to_string(),
                },
                id,
            }),
        };
        out[index] = Some(JobItem {
            index: base + index,
            result,
        });
    }
    out.into_iter()
        .enumerate()
        .map(|(i, item)| {
            item.unwrap_or(JobItem {
                index: base + i,
                result: Err(JobItemError {
                    error: "Missing".into(),
                    details: "the job reported no result for this item".into(),
                    id: None,
                }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(results: Value) -> JobOutcome {
        parse(
            "zd.job_status",
            &json!({"job_status": {"id": "j1", "status": "completed", "results": results}}),
        )
        .unwrap()
    }

    #[test]
    fn reads_both_failure_shapes_and_missing_items() {
        let j = job(json!([
            {"id": 245, "index": 0},
            {"index": 1, "error": "DuplicateValue", "details": "Name: Acme has already been taken"},
            {"index": 2, "id": 7, "action": "update", "success": false, "status": "Failed", "error": "RecordInvalid"}
        ]));
        let items = items(&j, 4, 100);
        assert_eq!(items[0].result, Ok(OrgId::new(245).unwrap()));
        assert_eq!(items[0].index, 100);
        let e = items[1].result.clone().unwrap_err();
        assert_eq!(e.error, "DuplicateValue");
        assert!(matches!(e.disposition(), Disposition::Review { .. }));
        assert_eq!(
            items[2].result.clone().unwrap_err().id,
            Some(OrgId::new(7).unwrap())
        );
        assert_eq!(items[3].result.clone().unwrap_err().error, "Missing");
        // Update successes without index are read by position.
        let j = job(json!([{"id": 5, "action": "update", "success": true, "status": "Updated"}]));
        assert_eq!(super::items(&j, 1, 0)[0].result, Ok(OrgId::new(5).unwrap()));
    }
}
