//! API calls as the simulators counted them (`GET /_sandbox/calls`: endpoint → status → n),
//! and AWS requests as the demo's moto counted them (`GET /_demo/requests`: operation →
//! [requests, moto's CPU seconds], tests/harness/moto/moto_server.py), snapshotted between stages so each
//! stage's calls can be set against its floor and its share of moto seen.

use std::collections::BTreeMap;

/// Calls by endpoint (every status summed), for one system.
pub type Counts = BTreeMap<String, u64>;

/// AWS requests by operation: how many, and the CPU seconds moto spent on them.
pub type AwsCounts = BTreeMap<String, (u64, f64)>;

/// Both systems' counts, and moto's, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub salesforce: Counts,
    pub zendesk: Counts,
    pub aws: AwsCounts,
}

async fn aws_counts(http: &reqwest::Client, moto: &str) -> Result<AwsCounts, String> {
    let url = format!("{moto}/_demo/requests");
    http.get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

async fn counts(http: &reqwest::Client, base: &str) -> Result<Counts, String> {
    let url = format!("{base}/_sandbox/calls");
    let body: BTreeMap<String, BTreeMap<String, u64>> = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(body
        .into_iter()
        .map(|(endpoint, by_status)| (endpoint, by_status.values().sum()))
        .collect())
}

pub async fn snapshot(
    http: &reqwest::Client,
    salesforce: &str,
    zendesk: &str,
    moto: &str,
) -> Result<Snapshot, String> {
    Ok(Snapshot {
        salesforce: counts(http, salesforce).await?,
        zendesk: counts(http, zendesk).await?,
        aws: aws_counts(http, moto).await?,
    })
}

fn minus(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

impl Snapshot {
    /// The calls made since `before`.
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            salesforce: minus(&self.salesforce, &before.salesforce),
            zendesk: minus(&self.zendesk, &before.zendesk),
            aws: self
                .aws
                .iter()
                .map(|(k, (n, secs))| {
                    let (n0, s0) = before.aws.get(k).copied().unwrap_or((0, 0.0));
                    (k.clone(), (n - n0, secs - s0))
                })
                .filter(|(_, (n, _))| *n > 0)
                .collect(),
        }
    }

    /// `moto: 5123 requests, 20.1 s CPU: DynamoDB.Query 2000 (15.2 s), ...`, the costliest
    /// `top` operations first.
    pub fn describe_aws(&self, top: usize) -> String {
        let requests: u64 = self.aws.values().map(|(n, _)| n).sum();
        let secs: f64 = self.aws.values().map(|(_, s)| s).sum();
        let mut v: Vec<_> = self.aws.iter().collect();
        v.sort_by(|a, b| b.1.1.total_cmp(&a.1.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = v
            .iter()
            .take(top)
            .map(|(k, (n, s))| format!("{k} {n} ({s:.1} s)"))
            .collect();
        let rest = v.len().saturating_sub(top);
        format!(
            "moto: {requests} requests, {secs:.1} s of its CPU: {}{}",
            shown.join(", "),
            if rest > 0 {
                format!(", {rest} more operations")
            } else {
                String::new()
            }
        )
    }

    pub fn total(counts: &Counts) -> u64 {
        counts.values().sum()
    }

    /// `sf.query 3, sf.composite 2, ...`, largest first.
    pub fn describe(counts: &Counts) -> String {
        let mut v: Vec<_> = counts.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
