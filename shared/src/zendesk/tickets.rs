//! Tickets for the attribution check (a ticket's organization against its requester's
//! memberships): the cursor-based incremental ticket export, the requesters' default
//! organizations, and a user's memberships when the default one does not settle it.
//!
//! The export is read with the requesters sideloaded (`include=users`), so a ticket whose
//! requester's default organization is the ticket's costs no call beyond its export page. Only
//! a requester whose default organization differs (or who has none) has its memberships listed,
//! once per run: an agent may have set another of the requester's organizations on purpose.
//! Whether Zendesk sideloads users on this export is documented but not observed here
//! (UNVERIFIED): requesters a page does not carry are read with `users/show_many`.

use std::collections::HashMap;

use serde_json::Value;

use super::{MANY_LIMIT, ZendeskClient, ZendeskError};
use crate::ids::OrgId;
use crate::reconcile::{TicketCounts, TicketFacts};

/// One exported ticket, as far as attribution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord {
    pub id: u64,
    /// `organization_id` (`None`: the ticket sits on no organization).
    pub organization: Option<OrgId>,
    pub requester: Option<u64>,
}

/// Where an export starts: a time (Unix seconds, at least a minute ago) or a saved cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketExportFrom {
    StartTime(i64),
    Cursor(String),
}

/// A page of the incremental ticket export. Deleted tickets are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketPage {
    pub tickets: Vec<TicketRecord>,
    /// The sideloaded users' default organization (`None`: in no organization).
    pub users: HashMap<u64, Option<OrgId>>,
    /// Continue (or, at the end of the stream, poll later) from here: persist it.
    pub after_cursor: Option<String>,
    pub end_of_stream: bool,
}

/// A user's default organization, as `users` objects carry it.
fn default_org(user: &Value) -> Option<OrgId> {
    match user.get("organization_id") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| OrgId::new(n).ok()),
        Some(Value::String(s)) => OrgId::parse(s).ok(),
        _ => None,
    }
}

fn id_of(v: &Value, key: &str) -> Option<u64> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn protocol(endpoint: &'static str, detail: impl Into<String>) -> ZendeskError {
    ZendeskError::Protocol {
        endpoint,
        detail: detail.into(),
    }
}

/// `{"tickets": [...], "users": [...], "after_cursor", "end_of_stream"}`.
pub(crate) fn ticket_page(endpoint: &'static str, v: &Value) -> Result<TicketPage, ZendeskError> {
    let items = v
        .get("tickets")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(endpoint, "no \"tickets\" list in the export"))?;
    let mut tickets = Vec::with_capacity(items.len());
    for t in items {
        let id = id_of(t, "id").ok_or_else(|| protocol(endpoint, "a ticket without an id"))?;
        if t.get("status").and_then(Value::as_str) == Some("deleted") {
            continue;
        }
        tickets.push(TicketRecord {
            id,
            organization: default_org(t),
            requester: id_of(t, "requester_id"),
        });
    }
    let users = v
        .get("users")
        .and_then(Value::as_array)
        .map(|us| {
            us.iter()
                .filter_map(|u| Some((id_of(u, "id")?, default_org(u))))
                .collect()
        })
        .unwrap_or_default();
    let end_of_stream = v
        .get("end_of_stream")
        .and_then(Value::as_bool)
        .ok_or_else(|| protocol(endpoint, "no end_of_stream in the export"))?;
    let after_cursor = v
        .get("after_cursor")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(TicketPage {
        tickets,
        users,
        after_cursor,
        end_of_stream,
    })
}

impl ZendeskClient {
    /// The incremental ticket export (cursor-based) from `from`, page by page until
    /// `end_of_stream` (10 requests a minute: the budget paces it). Each page carries its
    /// cursor; a reader that stops early resumes from the last one it took in.
    pub fn ticket_export(
        &self,
        from: TicketExportFrom,
    ) -> impl futures_util::Stream<Item = Result<TicketPage, ZendeskError>> + Send + '_ {
        const EP: &str = "zd.ticket_export";
        futures_util::stream::try_unfold(Some(from), move |state| async move {
            let Some(from) = state else {
                return Ok(None);
            };
            let mut query = vec![
                ("include", "users".to_string()),
                ("exclude_deleted", "true".to_string()),
            ];
            match &from {
                TicketExportFrom::StartTime(t) => query.push(("start_time", t.to_string())),
                TicketExportFrom::Cursor(c) => query.push(("cursor", c.clone())),
            }
            let v = self
                .get_json(EP, "/api/v2/incremental/tickets/cursor", &query)
                .await?;
            let page = ticket_page(EP, &v)?;
            let next = match (&page.after_cursor, page.end_of_stream) {
                (_, true) => None,
                (Some(c), false) if TicketExportFrom::Cursor(c.clone()) != from => {
                    Some(TicketExportFrom::Cursor(c.clone()))
                }
                // More to come but nowhere (new) to go on from would loop or truncate.
                _ => {
                    return Err(protocol(
                        EP,
                        "end_of_stream false without a new after_cursor: the export would be silently truncated",
                    ));
                }
            };
            Ok(Some((page, next)))
        })
    }

    /// The default organization of each user (`users/show_many`, 100 a call). Users Zendesk
    /// does not know are absent.
    pub async fn user_default_orgs(
        &self,
        users: &[u64],
    ) -> Result<HashMap<u64, Option<OrgId>>, ZendeskError> {
        const EP: &str = "zd.user_show_many";
        let mut out = HashMap::new();
        for chunk in users.chunks(MANY_LIMIT) {
            let list = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let v = self
                .get_json(EP, "/api/v2/users/show_many", &[("ids", list)])
                .await?;
            let list = v
                .get("users")
                .and_then(Value::as_array)
                .ok_or_else(|| protocol(EP, "no \"users\" list in the answer"))?;
            for u in list {
                if let Some(id) = id_of(u, "id") {
                    out.insert(id, default_org(u));
                }
            }
        }
        Ok(out)
    }

    /// Every organization `user` belongs to (`users/{id}/organization_memberships`, by cursor).
    pub async fn user_organizations(&self, user: u64) -> Result<Vec<OrgId>, ZendeskError> {
        const EP: &str = "zd.user_memberships";
        let path = format!("/api/v2/users/{user}/organization_memberships");
        let size = self.inner.config.page_size.to_string();
        let mut orgs = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("page[size]", size.clone())];
            if let Some(c) = &after {
                query.push(("page[after]", c.clone()));
            }
            let v = match self.get_json(EP, &path, &query).await {
                Ok(v) => v,
                // A requester deleted since: in no organization.
                Err(ZendeskError::RecordNotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let list = v
                .get("organization_memberships")
                .and_then(Value::as_array)
                .ok_or_else(|| protocol(EP, "no \"organization_memberships\" list"))?;
            orgs.extend(list.iter().filter_map(default_org));
            let has_more = v["meta"]["has_more"].as_bool().unwrap_or(false);
            match (has_more, v["meta"]["after_cursor"].as_str()) {
                (false, _) => break,
                (true, Some(c)) => after = Some(c.to_string()),
                (true, None) => {
                    return Err(protocol(EP, "has_more without after_cursor"));
                }
            }
        }
        orgs.sort();
        orgs.dedup();
        Ok(orgs)
    }

    /// The attribution of each ticket of `page` that sits on an organization and has a
    /// requester. `requester_orgs` holds what settles the question: the ticket's organization
    /// when it is the requester's default, else every organization the requester belongs to
    /// (looked up once per requester: `memberships` caches them across pages).
    pub async fn ticket_attributions(
        &self,
        page: &TicketPage,
        memberships: &mut HashMap<u64, Vec<OrgId>>,
    ) -> Result<Vec<TicketFacts>, ZendeskError> {
        let attributable: Vec<(u64, OrgId, u64)> = page
            .tickets
            .iter()
            .filter_map(|t| Some((t.id, t.organization?, t.requester?)))
            .collect();
        let mut missing: Vec<u64> = attributable
            .iter()
            .map(|(_, _, r)| *r)
            .filter(|r| !page.users.contains_key(r) && !memberships.contains_key(r))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let fetched = if missing.is_empty() {
            HashMap::new()
        } else {
            self.user_default_orgs(&missing).await?
        };
        let mut out = Vec::with_capacity(attributable.len());
        for (ticket, org, requester) in attributable {
            let default = page
                .users
                .get(&requester)
                .or_else(|| fetched.get(&requester))
                .copied()
                .flatten();
            let requester_orgs = if default == Some(org) {
                vec![org]
            } else if let Some(known) = memberships.get(&requester) {
                known.clone()
            } else {
                let orgs = self.user_organizations(requester).await?;
                memberships.insert(requester, orgs.clone());
                orgs
            };
            out.push(TicketFacts {
                ticket,
                org,
                requester,
                requester_orgs,
            });
        }
        Ok(out)
    }

    /// One export page as the attribution check takes it in: its requesters settled
    /// ([`Self::ticket_attributions`]), the page counted in `counts`, and only the
    /// misattributed tickets returned (what reconcile parks and `orglink audit` keeps).
    pub async fn misattributed_tickets(
        &self,
        page: &TicketPage,
        memberships: &mut HashMap<u64, Vec<OrgId>>,
        counts: &mut TicketCounts,
    ) -> Result<Vec<TicketFacts>, ZendeskError> {
        let looked_up = memberships.len();
        let facts = self.ticket_attributions(page, memberships).await?;
        Ok(counts.take_page(page.tickets.len(), facts, memberships.len() - looked_up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_export_pages_with_sideloaded_users_and_skips_deleted_tickets() {
        let page = ticket_page(
            "zd.ticket_export",
            &json!({
                "tickets": [
                    {"id": 1, "organization_id": 7, "requester_id": 70, "status": "open"},
                    {"id": 2, "organization_id": null, "requester_id": 71},
                    {"id": 3, "organization_id": 7, "requester_id": 72, "status": "deleted"}
                ],
                "users": [{"id": 70, "organization_id": 7}, {"id": 71, "organization_id": null}],
                "after_cursor": "abc", "end_of_stream": false
            }),
        )
        .unwrap();
        assert_eq!(page.tickets.len(), 2);
        assert_eq!(page.tickets[0].organization, Some(OrgId::new(7).unwrap()));
        assert_eq!(page.tickets[1].organization, None);
        assert_eq!(page.users[&70], Some(OrgId::new(7).unwrap()));
        assert_eq!(page.users[&71], None);
        assert_eq!(page.after_cursor.as_deref(), Some("abc"));
        assert!(!page.end_of_stream);
        // Without the sideload the users are simply unknown (read by show_many instead).
        let bare = ticket_page(
            "zd.ticket_export",
            &json!({"tickets": [], "after_cursor": null, "end_of_stream": true}),
        )
        .unwrap();
        assert!(bare.users.is_empty() && bare.end_of_stream);
        assert!(ticket_page("zd.ticket_export", &json!({"tickets": []})).is_err());
    }
}
