//! API calls as the simulators counted them (`GET /_sandbox/calls`: endpoint → status → n),
//! snapshotted between stages so each stage's calls can be set against its floor.

use std::collections::BTreeMap;

/// Calls by endpoint (every status summed), for one system.
pub type Counts = BTreeMap<String, u64>;

/// Both systems' counts at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub salesforce: Counts,
    pub zendesk: Counts,
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
) -> Result<Snapshot, String> {
    Ok(Snapshot {
        salesforce: counts(http, salesforce).await?,
        zendesk: counts(http, zendesk).await?,
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
        }
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
