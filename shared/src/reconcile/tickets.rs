//! Tickets on their way to [`AccountDiff::add_tickets`](super::AccountDiff::add_tickets): the one
//! tally the nightly reconcile and `orglink audit` share. Both read the incremental ticket
//! export page by page (`ZendeskClient::ticket_export`, `ticket_attributions`); each page is
//! counted here and only its misattributed tickets are kept, so what is held stays small
//! whatever the ticket volume.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TicketFacts;

/// How far back a full check of tickets reaches by default, in days (0: tickets not read).
pub const DEFAULT_TICKET_HORIZON_DAYS: u32 = 90;

/// Where an export over the last `days` days before `now_s` starts (Unix seconds). The export
/// serves nothing from the last minute, and nothing before the epoch.
pub fn horizon_start(now_s: i64, days: u32) -> i64 {
    let latest = (now_s - 60).max(0);
    (now_s - i64::from(days) * 24 * 3600).clamp(0, latest)
}

/// How a ticket read went (the incremental ticket export since the horizon or the last run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCounts {
    /// Export pages read (at most 1,000 tickets each).
    pub pages: u64,
    /// Tickets in them (deleted ones left out).
    pub read: u64,
    /// Tickets on an organization with a requester: the ones the rule applies to.
    pub attributed: u64,
    /// Requesters whose memberships were listed (their default organization is not the
    /// ticket's): one call each, the only calls beyond the export pages.
    pub requesters_looked_up: u64,
    /// Tickets whose requester does not belong to their organization.
    pub misattributed: u64,
}

impl TicketCounts {
    /// Counts one export page — `read` tickets in it, their `attributions`, `looked_up`
    /// requesters whose memberships were listed for it — and returns the tickets worth keeping:
    /// the misattributed ones (the only ones that can become a finding).
    pub fn take_page(
        &mut self,
        read: usize,
        attributions: Vec<TicketFacts>,
        looked_up: usize,
    ) -> Vec<TicketFacts> {
        self.pages += 1;
        self.read += read as u64;
        self.attributed += attributions.len() as u64;
        self.requesters_looked_up += looked_up as u64;
        let kept: Vec<TicketFacts> = attributions
            .into_iter()
            .filter(TicketFacts::misattributed)
            .collect();
        self.misattributed += kept.len() as u64;
        kept
    }
}

/// One copy per ticket, ready for `add_tickets`: a ticket changed while the export ran can
/// appear twice, and the later copy wins.
pub fn latest_copies(tickets: impl IntoIterator<Item = TicketFacts>) -> Vec<TicketFacts> {
    let by_id: BTreeMap<u64, TicketFacts> = tickets.into_iter().map(|t| (t.ticket, t)).collect();
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;

    fn ticket(id: u64, org: u64, requester_orgs: &[u64]) -> TicketFacts {
        TicketFacts {
            ticket: id,
            org: OrgId::new(org).unwrap(),
            requester: id * 10,
            requester_orgs: requester_orgs
                .iter()
                .map(|o| OrgId::new(*o).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_page_is_counted_and_only_misattributed_tickets_are_kept() {
        let mut counts = TicketCounts::default();
        let kept = counts.take_page(
            4,
            vec![ticket(1, 7, &[7]), ticket(2, 7, &[8]), ticket(3, 7, &[])],
            2,
        );
        assert_eq!(
            kept.iter().map(|t| t.ticket).collect::<Vec<_>>(),
            vec![2, 3]
        );
        counts.take_page(1, vec![ticket(4, 9, &[9, 7])], 0);
        assert_eq!(
            counts,
            TicketCounts {
                pages: 2,
                read: 5,
                attributed: 4,
                requesters_looked_up: 2,
                misattributed: 2,
            }
        );
    }

    #[test]
    fn the_later_copy_of_a_ticket_wins() {
        let copies = latest_copies([ticket(5, 7, &[8]), ticket(2, 7, &[8]), ticket(5, 9, &[8])]);
        assert_eq!(copies.len(), 2);
        assert_eq!(copies[0].ticket, 2);
        assert_eq!(copies[1].org, OrgId::new(9).unwrap());
    }

    #[test]
    fn the_horizon_never_reaches_the_last_minute_or_before_the_epoch() {
        let now = 1_800_000_000;
        assert_eq!(horizon_start(now, 90), now - 90 * 86_400);
        assert_eq!(horizon_start(now, 0), now - 60);
        assert_eq!(horizon_start(now, 36_500), 0);
    }
}
