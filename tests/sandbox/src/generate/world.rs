//! The world under construction: id allocators, record writers (each record is serialized the
//! moment it is made, so 100,000 accounts never sit in memory as JSON trees) and the truth.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::{Identities, Identity, person};
use super::rng::Rng;
use super::truth::{
    AccountTruth, DataFix, Expected, OrphanedOrg, SwitchDependent, TicketAttribution,
};
use crate::salesforce::ids;

/// Every date is before this instant (2025-06-30T00:00:00Z), never the wall clock, so a seed
/// always gives the same bytes.
const NOW: i64 = 1_751_241_600;
const DAY: i64 = 86_400;

/// A JSON array written as records arrive.
#[derive(Debug, Default)]
pub(crate) struct JsonList {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

impl JsonList {
    fn push<T: Serialize>(&mut self, record: &T) {
        self.buf
            .extend_from_slice(if self.len == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut self.buf, record).expect("records serialize");
        self.len += 1;
    }
}

/// A Salesforce record id in both forms.
#[derive(Debug, Clone)]
pub(crate) struct SfId {
    pub(crate) id15: String,
    pub(crate) id18: String,
}

/// Salesforce pods: two characters after the key prefix, distinct ignoring case.
const PODS: [&str; 4] = ["5g", "8c", "3X", "Dn"];
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 36^7: the room of the 7-character counter part of an id.
const ID_ROOM: u64 = 78_364_164_096;
/// Coprime with ID_ROOM (odd, not a multiple of 3): scatters counters over the room.
const ID_STRIDE: u64 = 2_654_435_761;

/// Why an account should or should not get an organization, with the records that make it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// `Type` = `Customer - Direct` or `Customer - Channel`.
    Customer,
    /// A Closed Won opportunity, `Type` not a customer.
    ClosedWon,
    /// An open opportunity at `Probability` 75 or 90.
    LateStage,
    /// `Type` = Prospect, no opportunity or an early one (≤ 60).
    Prospect,
    /// An open opportunity at 70: one step under the late-stage threshold.
    EarlyStage,
    /// Only Closed Lost opportunities.
    ClosedLost,
    /// `Type` = `Former Customer` (a custom picklist value that does not start with Customer).
    FormerCustomer,
    /// A partner `Type`.
    Partner,
}

impl Lifecycle {
    pub(crate) fn eligible(self) -> bool {
        matches!(
            self,
            Lifecycle::Customer | Lifecycle::ClosedWon | Lifecycle::LateStage
        )
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Lifecycle::Customer => "Type starts with Customer",
            Lifecycle::ClosedWon => "has a Closed Won opportunity",
            Lifecycle::LateStage => "has an open opportunity at Probability >= 75",
            Lifecycle::Prospect => "a prospect without a late-stage opportunity",
            Lifecycle::EarlyStage => "its open opportunity is at Probability 70, under 75",
            Lifecycle::ClosedLost => "only Closed Lost opportunities",
            Lifecycle::FormerCustomer => "Type 'Former Customer' does not start with Customer",
            Lifecycle::Partner => "a partner, not a customer",
        }
    }
}

/// An account before it is written.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: SfId,
    pub(crate) ident: Identity,
    pub(crate) name: String,
    pub(crate) website: Option<String>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) deleted: bool,
    pub(crate) master: Option<String>,
    /// `Zendesk_Org_ID__c`.
    pub(crate) stored: Option<String>,
    /// `Zendesk_Domain__c`.
    pub(crate) reviewed: Option<String>,
    /// Synced by an earlier integration run: status `Linked` and a last sync time.
    pub(crate) synced_before: bool,
}

impl Account {
    pub(crate) fn eligible(&self) -> bool {
        !self.deleted && self.lifecycle.eligible()
    }
}

/// An organization before it is written.
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) domain_names: Vec<String>,
    pub(crate) tags: Vec<String>,
}

const STAGES_EARLY: &[(&str, u32)] = &[
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
];

const PRODUCTS: &[&str] = &[
    "Platform licence",
    "Support renewal",
    "Expansion",
    "Pilot",
    "Professional services",
    "Enterprise upgrade",
];

const SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice question",
    "Export fails with a timeout",
    "Feature request: SSO",
    "Password reset link expired",
    "API returns 500",
    "How do I add a user?",
    "Data looks out of date",
];

pub(crate) struct World {
    pub(crate) rng: Rng,
    names: Identities,
    next_account: u64,
    next_opportunity: u64,
    next_org: u64,
    next_zd_user: u64,
    next_ticket: u64,
    next_membership: u64,
    next_foreign_key: u64,
    id_offset: u64,
    owners: Vec<String>,
    pub(crate) accounts: JsonList,
    pub(crate) opportunities: JsonList,
    pub(crate) sf_users: JsonList,
    pub(crate) orgs: JsonList,
    pub(crate) zd_users: JsonList,
    pub(crate) tickets: JsonList,
    pub(crate) memberships: JsonList,
    pub(crate) deleted_org_ids: usize,
    pub(crate) truth: Vec<AccountTruth>,
    pub(crate) ticket_attribution: Vec<TicketAttribution>,
    pub(crate) data_fixes: Vec<DataFix>,
    pub(crate) orphaned_orgs: Vec<OrphanedOrg>,
    pub(crate) switch_dependent: Vec<SwitchDependent>,
    pub(crate) pattern_instances: BTreeMap<&'static str, usize>,
}

impl World {
    pub(crate) fn new(seed: u64, owners: usize) -> Self {
        let mut rng = Rng::new(seed);
        let names = Identities::new(&mut rng);
        let id_offset = rng.below(ID_ROOM);
        let mut w = World {
            names,
            next_account: 0,
            next_opportunity: 0,
            next_org: 11_000_000_000 + rng.below(1_000_000),
            next_zd_user: 12_000_000_000 + rng.below(1_000_000),
            next_ticket: 1_000,
            next_membership: 13_000_000_000 + rng.below(1_000_000),
            next_foreign_key: 1_000 + rng.below(9_000),
            id_offset,
            owners: Vec::new(),
            accounts: JsonList::default(),
            opportunities: JsonList::default(),
            sf_users: JsonList::default(),
            orgs: JsonList::default(),
            zd_users: JsonList::default(),
            tickets: JsonList::default(),
            memberships: JsonList::default(),
            deleted_org_ids: 0,
            truth: Vec::new(),
            ticket_attribution: Vec::new(),
            data_fixes: Vec::new(),
            orphaned_orgs: Vec::new(),
            switch_dependent: Vec::new(),
            pattern_instances: BTreeMap::new(),
            rng,
        };
        for n in 0..owners.max(1) {
            w.owner(n);
        }
        w
    }

    fn owner(&mut self, n: usize) {
        let id = self.sf_id("005", n as u64);
        let (first, last) = person(&mut self.rng);
        let email = format!(
            "{}.{}{}@northstar-software.com",
            first.to_lowercase(),
            last.to_lowercase(),
            n + 1
        );
        let created = self.time_between(3000, 2000);
        self.sf_users.push(&serde_json::json!({
            "Id": id.id18,
            "Username": format!("{email}.crm"),
            "Email": email,
            "Name": format!("{first} {last}"),
            "FirstName": first,
            "LastName": last,
            "IsActive": true,
            "CreatedDate": sf_datetime(created),
            "LastModifiedDate": sf_datetime(created + DAY),
            "SystemModstamp": sf_datetime(created + DAY),
        }));
        self.owners.push(id.id18);
    }

    /// A record id: prefix, pod, `000`, then 7 characters from the counter with random
    /// letter case. The counter part is distinct ignoring case, so no two generated ids of
    /// one object collide even where Zendesk compares external ids case-insensitively.
    fn sf_id(&mut self, prefix: &str, counter: u64) -> SfId {
        assert!(counter < ID_ROOM, "more records than the id room holds");
        // Each object starts elsewhere in the room, so account n and user n look unrelated.
        let object: u64 = prefix.bytes().map(u64::from).sum();
        let start = u128::from(self.id_offset) + u128::from(object) * 9_876_543_211;
        let scattered = (u128::from(counter) * u128::from(ID_STRIDE) + start) % u128::from(ID_ROOM);
        let mut k = scattered as u64;
        let mut body = [b'0'; 7];
        for slot in body.iter_mut().rev() {
            let c = BASE36[(k % 36) as usize];
            k /= 36;
            *slot = if c.is_ascii_alphabetic() && self.rng.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c
            };
        }
        // The counter part alone keeps ids apart, so the pod can vary as in a real org.
        let pod = PODS[self.rng.index(PODS.len())];
        let id15 = format!(
            "{prefix}{pod}000{}",
            std::str::from_utf8(&body).expect("ascii")
        );
        let id18 = ids::normalize(&id15).expect("generated ids are well formed");
        SfId { id15, id18 }
    }

    pub(crate) fn account_id(&mut self) -> SfId {
        let n = self.next_account;
        self.next_account += 1;
        self.sf_id("001", n)
    }

    pub(crate) fn identity(&mut self) -> Identity {
        self.names.fresh()
    }

    /// A Zendesk organization id, in creation order, far below the ids the simulator gives
    /// new organizations (360,000,000,000 and up), so an id never comes back.
    pub(crate) fn org_id(&mut self) -> u64 {
        self.next_org += self.rng.between(1, 40);
        self.next_org
    }

    /// The id of an organization deleted long ago: allocated and never written.
    pub(crate) fn deleted_org_id(&mut self) -> u64 {
        self.deleted_org_ids += 1;
        self.org_id()
    }

    /// An external_id another system wrote (not a Salesforce id in any form).
    pub(crate) fn foreign_key(&mut self) -> String {
        self.next_foreign_key += self.rng.between(1, 9);
        let n = self.next_foreign_key;
        match self.rng.below(3) {
            0 => format!("hubspot-{n}"),
            1 => format!("CUST-{n:06}"),
            _ => format!("zd-import:{n}"),
        }
    }

    /// A fresh account with its own identity and a usable messy Website.
    pub(crate) fn account(&mut self, lifecycle: Lifecycle) -> Account {
        let ident = self.identity();
        let website = super::names::messy_website(&mut self.rng, &ident.domain());
        Account {
            id: self.account_id(),
            name: ident.name(),
            ident,
            website: Some(website),
            lifecycle,
            deleted: false,
            master: None,
            stored: None,
            reviewed: None,
            synced_before: false,
        }
    }

    pub(crate) fn eligible_lifecycle(&mut self) -> Lifecycle {
        match self.rng.below(20) {
            0..=9 => Lifecycle::Customer,
            10..=14 => Lifecycle::ClosedWon,
            _ => Lifecycle::LateStage,
        }
    }

    pub(crate) fn not_eligible_lifecycle(&mut self) -> Lifecycle {
        match self.rng.below(10) {
            0..=3 => Lifecycle::Prospect,
            4 | 5 => Lifecycle::EarlyStage,
            6 | 7 => Lifecycle::ClosedLost,
            8 => Lifecycle::FormerCustomer,
            _ => Lifecycle::Partner,
        }
    }

    /// Seconds since the epoch, between `max_days` and `min_days` days before NOW.
    fn time_between(&mut self, max_days: u64, min_days: u64) -> i64 {
        let days = self.rng.between(min_days, max_days) as i64;
        NOW - days * DAY + self.rng.below(DAY as u64) as i64
    }

    /// Writes the account and the opportunities its lifecycle calls for.
    pub(crate) fn write_account(&mut self, a: &Account) {
        let owner = self.owners[self.rng.index(self.owners.len())].clone();
        let created = self.time_between(3600, 200);
        let modified = created + self.rng.between(DAY as u64, 150 * DAY as u64) as i64;
        let account_type: Option<&str> = match a.lifecycle {
            Lifecycle::Customer => Some(if self.rng.chance(70) {
                "Customer - Direct"
            } else {
                "Customer - Channel"
            }),
            Lifecycle::ClosedWon | Lifecycle::LateStage => {
                *self
                    .rng
                    .pick(&[Some("Prospect"), Some("Prospect"), Some("Other"), None])
            }
            Lifecycle::Prospect | Lifecycle::EarlyStage => Some("Prospect"),
            Lifecycle::ClosedLost => *self.rng.pick(&[Some("Prospect"), Some("Other"), None]),
            Lifecycle::FormerCustomer => Some("Former Customer"),
            Lifecycle::Partner => Some(*self.rng.pick(&[
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
            ])),
        };
        // A deleted customer is still typed Customer: deletion alone must rule it out.
        let account_type = if a.deleted && self.rng.chance(50) {
            Some("Customer - Direct")
        } else {
            account_type
        };
        let (status, last_sync) = if a.synced_before {
            (
                Some("Linked"),
                Some(sf_datetime(
                    modified - self.rng.between(0, 30 * DAY as u64) as i64,
                )),
            )
        } else {
            (None, None)
        };
        let record = AccountRecord {
            id: &a.id.id18,
            name: &a.name,
            account_type,
            website: a.website.as_deref(),
            industry: industry_picklist(a.ident.industry()),
            country: a.ident.country(),
            owner: &owner,
            deleted: a.deleted,
            master: a.master.as_deref(),
            stored: a.stored.as_deref(),
            reviewed: a.reviewed.as_deref(),
            status,
            last_sync: last_sync.as_deref(),
            created: &sf_datetime(created),
            modified: &sf_datetime(modified),
            modstamp: &sf_datetime(modified),
        };
        self.accounts.push(&record);
        // Salesforce moves a merged loser's opportunities to the winner.
        if a.master.is_none() {
            self.write_opportunities(a, &owner, created);
        }
    }

    fn write_opportunities(&mut self, a: &Account, owner: &str, created: i64) {
        let mut opps: Vec<(&str, u32)> = Vec::new();
        match a.lifecycle {
            Lifecycle::Customer => {
                for _ in 0..self.rng.below(3) {
                    opps.push(("Closed Won", 100));
                }
                if self.rng.chance(30) {
                    opps.push(*self.rng.pick(STAGES_EARLY));
                }
            }
            Lifecycle::ClosedWon => {
                opps.push(("Closed Won", 100));
                if self.rng.chance(40) {
                    opps.push(("Closed Lost", 0));
                }
            }
            Lifecycle::LateStage => {
                opps.push(if self.rng.chance(50) {
                    ("Proposal/Price Quote", 75)
                } else {
                    ("Negotiation/Review", 90)
                });
                if self.rng.chance(30) {
                    opps.push(("Closed Lost", 0));
                }
            }
            Lifecycle::Prospect | Lifecycle::Partner => {
                if self.rng.chance(50) {
                    opps.push(*self.rng.pick(STAGES_EARLY));
                }
            }
            Lifecycle::EarlyStage => opps.push(("Perception Analysis", 70)),
            Lifecycle::ClosedLost | Lifecycle::FormerCustomer => {
                for _ in 0..=self.rng.below(2) {
                    opps.push(("Closed Lost", 0));
                }
            }
        }
        for (stage, probability) in opps {
            let n = self.next_opportunity;
            self.next_opportunity += 1;
            let id = self.sf_id("006", n);
            let closed = matches!(stage, "Closed Won" | "Closed Lost");
            let opened = created + self.rng.between(DAY as u64, 60 * DAY as u64) as i64;
            let close = if closed {
                opened + self.rng.between(10 * DAY as u64, 120 * DAY as u64) as i64
            } else {
                NOW + self.rng.between(10 * DAY as u64, 180 * DAY as u64) as i64
            };
            let modified = if closed { close } else { opened + DAY };
            let record = OpportunityRecord {
                id: &id.id18,
                account: &a.id.id18,
                name: &format!("{} - {}", a.name, self.rng.pick(PRODUCTS)),
                stage,
                probability,
                is_closed: closed,
                is_won: stage == "Closed Won",
                amount: self.rng.between(5, 400) * 1_000,
                close_date: &sf_date(close),
                owner,
                deleted: false,
                created: &sf_datetime(opened),
                modified: &sf_datetime(modified.min(NOW)),
                modstamp: &sf_datetime(modified.min(NOW)),
            };
            self.opportunities.push(&record);
        }
    }

    pub(crate) fn write_org(&mut self, o: &Org) {
        let created = self.time_between(3000, 300);
        let updated = created + self.rng.between(0, 250 * DAY as u64) as i64;
        let record = OrgRecord {
            id: o.id,
            name: &o.name,
            external_id: o.external_id.as_deref(),
            domain_names: &o.domain_names,
            tags: &o.tags,
            details: None,
            notes: None,
            group_id: None,
            shared_tickets: false,
            shared_comments: false,
            organization_fields: serde_json::Map::new(),
            created_at: &zd_datetime(created),
            updated_at: &zd_datetime(updated),
        };
        self.orgs.push(&record);
    }

    /// A Zendesk end user, a member of `orgs` (the first is the default), mailing from
    /// `mail_domain`.
    pub(crate) fn write_zd_user(&mut self, mail_domain: &str, orgs: &[u64]) -> u64 {
        self.next_zd_user += self.rng.between(1, 20);
        let id = self.next_zd_user;
        let (first, last) = person(&mut self.rng);
        let created = self.time_between(2000, 30);
        let email = format!(
            "{}.{}.{}@{mail_domain}",
            first.to_lowercase(),
            last.to_lowercase(),
            id % 10_000
        );
        self.zd_users.push(&serde_json::json!({
            "id": id,
            "name": format!("{first} {last}"),
            "email": email,
            "role": "end-user",
            "verified": true,
            "organization_id": orgs.first(),
            "created_at": zd_datetime(created),
            "updated_at": zd_datetime(created + DAY),
        }));
        for (i, org) in orgs.iter().enumerate() {
            self.next_membership += self.rng.between(1, 20);
            self.memberships.push(&serde_json::json!({
                "id": self.next_membership,
                "user_id": id,
                "organization_id": org,
                "default": i == 0,
                "view_tickets": false,
                "created_at": zd_datetime(created),
                "updated_at": zd_datetime(created),
            }));
        }
        id
    }

    pub(crate) fn write_ticket(&mut self, org: u64, requester: u64) -> u64 {
        self.next_ticket += 1;
        let id = self.next_ticket;
        let created = self.time_between(700, 1);
        let status = *self
            .rng
            .pick(&["new", "open", "pending", "solved", "closed"]);
        self.tickets.push(&serde_json::json!({
            "id": id,
            "subject": self.rng.pick(SUBJECTS),
            "status": status,
            "requester_id": requester,
            "submitter_id": requester,
            "organization_id": org,
            "tags": [],
            "created_at": zd_datetime(created),
            "updated_at": zd_datetime(created + self.rng.below(DAY as u64 * 5) as i64),
        }));
        id
    }

    /// Records what the account must end as.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn expect(
        &mut self,
        a: &Account,
        pattern: &'static str,
        role: &'static str,
        expected: Expected,
        orgs: Vec<u64>,
        findings: Vec<&'static str>,
        report: Vec<&'static str>,
        notes: String,
    ) {
        self.truth.push(AccountTruth {
            account_id: a.id.id18.clone(),
            pattern: pattern.to_string(),
            role: role.to_string(),
            expected,
            eligible: a.eligible(),
            orgs,
            findings: findings.into_iter().map(str::to_string).collect(),
            report: report.into_iter().map(str::to_string).collect(),
            notes,
        });
    }
}

/// Salesforce's standard Industry picklist value for an identity's industry word.
fn industry_picklist(word: &str) -> &'static str {
    match word {
        "Logistics" => "Transportation",
        "Software" | "Analytics" | "Systems" | "Networks" | "Security" | "Labs" => "Technology",
        "Robotics" | "Materials" | "Textiles" | "Motors" | "Aerospace" | "Dynamics" => {
            "Manufacturing"
        }
        "Foods" => "Food & Beverage",
        "Pharma" | "Health" | "Biotech" => "Healthcare",
        "Energy" => "Energy",
        "Capital" => "Finance",
        "Insurance" => "Insurance",
        "Media" => "Media",
        "Consulting" => "Consulting",
        "Telecom" => "Telecommunications",
        "Retail" => "Retail",
        _ => "Other",
    }
}

#[derive(Serialize)]
struct AccountRecord<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Type")]
    account_type: Option<&'a str>,
    #[serde(rename = "Website")]
    website: Option<&'a str>,
    #[serde(rename = "Industry")]
    industry: &'a str,
    #[serde(rename = "BillingCountry")]
    country: &'a str,
    #[serde(rename = "OwnerId")]
    owner: &'a str,
    #[serde(rename = "IsDeleted")]
    deleted: bool,
    #[serde(rename = "MasterRecordId")]
    master: Option<&'a str>,
    #[serde(rename = "Zendesk_Org_ID__c")]
    stored: Option<&'a str>,
    #[serde(rename = "Zendesk_Domain__c")]
    reviewed: Option<&'a str>,
    #[serde(rename = "Zendesk_Sync_Status__c")]
    status: Option<&'a str>,
    #[serde(rename = "Last_Zendesk_Sync_At__c")]
    last_sync: Option<&'a str>,
    #[serde(rename = "CreatedDate")]
    created: &'a str,
    #[serde(rename = "LastModifiedDate")]
    modified: &'a str,
    #[serde(rename = "SystemModstamp")]
    modstamp: &'a str,
}

#[derive(Serialize)]
struct OpportunityRecord<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "AccountId")]
    account: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "StageName")]
    stage: &'a str,
    #[serde(rename = "Probability")]
    probability: u32,
    #[serde(rename = "IsClosed")]
    is_closed: bool,
    #[serde(rename = "IsWon")]
    is_won: bool,
    #[serde(rename = "Amount")]
    amount: u64,
    #[serde(rename = "CloseDate")]
    close_date: &'a str,
    #[serde(rename = "OwnerId")]
    owner: &'a str,
    #[serde(rename = "IsDeleted")]
    deleted: bool,
    #[serde(rename = "CreatedDate")]
    created: &'a str,
    #[serde(rename = "LastModifiedDate")]
    modified: &'a str,
    #[serde(rename = "SystemModstamp")]
    modstamp: &'a str,
}

#[derive(Serialize)]
struct OrgRecord<'a> {
    id: u64,
    name: &'a str,
    external_id: Option<&'a str>,
    domain_names: &'a [String],
    tags: &'a [String],
    details: Option<&'a str>,
    notes: Option<&'a str>,
    group_id: Option<u64>,
    shared_tickets: bool,
    shared_comments: bool,
    organization_fields: serde_json::Map<String, serde_json::Value>,
    created_at: &'a str,
    updated_at: &'a str,
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn parts(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    (y, mo, d, s / 3600, s / 60 % 60, s % 60)
}

/// `2024-03-05T10:20:30.000+0000`, as Salesforce writes datetimes.
pub(crate) fn sf_datetime(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000+0000")
}

/// `2024-03-05`.
pub(crate) fn sf_date(t: i64) -> String {
    let (y, mo, d, ..) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `2024-03-05T10:20:30Z`, as Zendesk writes times.
pub(crate) fn zd_datetime(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(zd_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(zd_datetime(NOW), "2025-06-30T00:00:00Z");
        assert_eq!(
            sf_datetime(951_782_400 + 3_723),
            "2000-02-29T01:02:03.000+0000"
        );
        assert_eq!(sf_date(1_709_251_199), "2024-02-29");
    }

    #[test]
    fn ids_are_valid_distinct_ignoring_case_and_prefixed() {
        let mut w = World::new(9, 1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let id = w.account_id();
            assert!(id.id18.starts_with("001"));
            assert_eq!(id.id15.len(), 15);
            assert_eq!(ids::normalize(&id.id15).as_deref(), Some(id.id18.as_str()));
            assert!(seen.insert(id.id15.to_lowercase()), "{}", id.id15);
        }
    }
}
