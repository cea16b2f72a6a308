//! Link claims: before any Zendesk write that links an organization, the organization is
//! claimed for one account with a conditional write (`attribute_not_exists(org_id) OR
//! account_id = :me`). Zendesk has no compare-and-set, so this is what stops two accounts —
//! or a backfill and a live event — from taking one legacy organization.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use super::error::StoreError;
use crate::ids::{AccountId, OrgId};

/// Who holds an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub org: OrgId,
    pub account: AccountId,
    pub claimed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The organization is this account's (newly, or it already was).
    Claimed,
    /// Another account holds it: do not link; this is a collision to report.
    HeldBy(Claim),
}

pub trait ClaimStore: Send + Sync {
    fn claim(
        &self,
        org: OrgId,
        account: &AccountId,
        now_ms: i64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Releases the claim if this account holds it; returns whether it did.
    fn release(
        &self,
        org: OrgId,
        account: &AccountId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves the claim from `from` to `to`, only while `from` still holds it (an account
    /// Salesforce merged into `to`: its organization is the winner's). `HeldBy` when another
    /// account holds it by then; `Claimed` when `to` already does.
    fn transfer(
        &self,
        org: OrgId,
        from: &AccountId,
        to: &AccountId,
        now_ms: i64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Takes over a stale claim: only while it is exactly `stale` (same holder, same
    /// `claimed_at`, so a holder that claimed again meanwhile keeps it). `HeldBy` with the
    /// current claim otherwise; `Claimed` when `to` already holds it.
    fn take_over(
        &self,
        stale: &Claim,
        to: &AccountId,
        now_ms: i64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    fn holder(&self, org: OrgId) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    claims: Mutex<HashMap<OrgId, Claim>>,
}

impl MemoryClaims {
    /// Gives `org`'s claim to `to` while its holder passes `holds` (DynamoDB's twin: a put
    /// under a condition on the holder).
    fn move_claim(
        &self,
        org: OrgId,
        to: &AccountId,
        now_ms: i64,
        holds: impl Fn(&Claim) -> bool,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut claims = self.claims.lock().expect("claims lock");
        match claims.get(&org) {
            Some(held) if &held.account == to => Ok(ClaimOutcome::Claimed),
            Some(held) if holds(held) => {
                claims.insert(
                    org,
                    Claim {
                        org,
                        account: to.clone(),
                        claimed_at_ms: now_ms,
                    },
                );
                Ok(ClaimOutcome::Claimed)
            }
            Some(held) => Ok(ClaimOutcome::HeldBy(held.clone())),
            // Released meanwhile, as DynamoDB's twin reports it: a fresh attempt decides.
            None => Err(StoreError::Contended {
                store: "claims".into(),
                key: org.to_string(),
            }),
        }
    }
}

impl ClaimStore for MemoryClaims {
    async fn claim(
        &self,
        org: OrgId,
        account: &AccountId,
        now_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut claims = self.claims.lock().expect("claims lock");
        match claims.get(&org) {
            Some(held) if &held.account != account => Ok(ClaimOutcome::HeldBy(held.clone())),
            _ => {
                claims.insert(
                    org,
                    Claim {
                        org,
                        account: account.clone(),
                        claimed_at_ms: now_ms,
                    },
                );
                Ok(ClaimOutcome::Claimed)
            }
        }
    }

    async fn release(&self, org: OrgId, account: &AccountId) -> Result<bool, StoreError> {
        let mut claims = self.claims.lock().expect("claims lock");
        if claims.get(&org).is_some_and(|c| &c.account == account) {
            claims.remove(&org);
            return Ok(true);
        }
        Ok(false)
    }

    async fn transfer(
        &self,
        org: OrgId,
        from: &AccountId,
        to: &AccountId,
        now_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.move_claim(org, to, now_ms, |held| &held.account == from)
    }

    async fn take_over(
        &self,
        stale: &Claim,
        to: &AccountId,
        now_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.move_claim(stale.org, to, now_ms, |held| held == stale)
    }

    async fn holder(&self, org: OrgId) -> Result<Option<Claim>, StoreError> {
        Ok(self.claims.lock().expect("claims lock").get(&org).cloned())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoClaims;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

    use super::*;
    use crate::aws::dynamo::{Item, SERVICE, n, req_n, req_s, s};
    use crate::aws::error::classify;

    /// Claims in the `{prefix}-claims` table (PK `org_id`).
    #[derive(Debug, Clone)]
    pub struct DynamoClaims {
        client: Client,
        table: String,
    }

    impl DynamoClaims {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoClaims {
                client,
                table: table.into(),
            }
        }

        fn read_item(&self, org: OrgId, item: &Item) -> Result<Claim, StoreError> {
            let key = org.to_string();
            let account = req_s(item, "account_id", &self.table, &key)?;
            Ok(Claim {
                org,
                account: AccountId::parse(&account)
                    .map_err(|e| StoreError::corrupt(&self.table, &key, e))?,
                claimed_at_ms: req_n(item, "claimed_at", &self.table, &key)?,
            })
        }
    }

    impl DynamoClaims {
        /// Puts the claim for `to` under `condition` on the current holder (`:from`, and
        /// `:at` when given); ALL_OLD tells who holds it when the condition fails.
        async fn move_claim(
            &self,
            org: OrgId,
            to: &AccountId,
            now_ms: i64,
            condition: &str,
            from: &AccountId,
            at: Option<i64>,
        ) -> Result<ClaimOutcome, StoreError> {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("org_id", s(org.to_string()))
                .item("account_id", s(to.as_str()))
                .item("claimed_at", n(now_ms))
                .condition_expression(condition)
                .expression_attribute_values(":from", s(from.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(at) = at {
                put = put.expression_attribute_values(":at", n(at));
            }
            match put.send().await {
                Ok(_) => Ok(ClaimOutcome::Claimed),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => match e.item() {
                        Some(old) => {
                            let held = self.read_item(org, old)?;
                            if &held.account == to {
                                Ok(ClaimOutcome::Claimed)
                            } else {
                                Ok(ClaimOutcome::HeldBy(held))
                            }
                        }
                        // Released meanwhile: a fresh attempt decides.
                        None => Err(StoreError::Contended {
                            store: self.table.clone(),
                            key: org.to_string(),
                        }),
                    },
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }
    }

    impl ClaimStore for DynamoClaims {
        async fn claim(
            &self,
            org: OrgId,
            account: &AccountId,
            now_ms: i64,
        ) -> Result<ClaimOutcome, StoreError> {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("org_id", s(org.to_string()))
                .item("account_id", s(account.as_str()))
                .item("claimed_at", n(now_ms))
                .condition_expression("attribute_not_exists(org_id) OR account_id = :me")
                .expression_attribute_values(":me", s(account.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => Ok(ClaimOutcome::Claimed),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => match e.item() {
                        Some(old) => Ok(ClaimOutcome::HeldBy(self.read_item(org, old)?)),
                        // Released between the check and the answer: a fresh attempt decides.
                        None => Err(StoreError::Contended {
                            store: self.table.clone(),
                            key: org.to_string(),
                        }),
                    },
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn release(&self, org: OrgId, account: &AccountId) -> Result<bool, StoreError> {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("org_id", s(org.to_string()))
                .condition_expression("account_id = :me")
                .expression_attribute_values(":me", s(account.as_str()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(err) => match err.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn transfer(
            &self,
            org: OrgId,
            from: &AccountId,
            to: &AccountId,
            now_ms: i64,
        ) -> Result<ClaimOutcome, StoreError> {
            self.move_claim(org, to, now_ms, "account_id = :from", from, None)
                .await
        }

        async fn take_over(
            &self,
            stale: &Claim,
            to: &AccountId,
            now_ms: i64,
        ) -> Result<ClaimOutcome, StoreError> {
            self.move_claim(
                stale.org,
                to,
                now_ms,
                "account_id = :from AND claimed_at = :at",
                &stale.account,
                Some(stale.claimed_at_ms),
            )
            .await
        }

        async fn holder(&self, org: OrgId) -> Result<Option<Claim>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("org_id", s(org.to_string()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            out.item().map(|i| self.read_item(org, i)).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u64) -> AccountId {
        AccountId::parse(&format!("001SB{n:010}")).unwrap()
    }

    #[tokio::test]
    async fn a_transfer_moves_the_claim_only_from_the_named_holder() {
        let claims = MemoryClaims::default();
        let org = OrgId::new(7).unwrap();
        let (loser, winner, other) = (account(1), account(2), account(3));
        assert!(matches!(
            claims.transfer(org, &loser, &winner, 1).await,
            Err(StoreError::Contended { .. })
        ));
        claims.claim(org, &loser, 1).await.unwrap();
        match claims.transfer(org, &other, &winner, 2).await.unwrap() {
            ClaimOutcome::HeldBy(c) => assert_eq!(c.account, loser),
            o => panic!("{o:?}"),
        }
        assert_eq!(
            claims.transfer(org, &loser, &winner, 3).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert_eq!(claims.holder(org).await.unwrap().unwrap().account, winner);
        // Done already: a repeat is a no-op, the loser can no longer take it back.
        assert_eq!(
            claims.transfer(org, &loser, &winner, 4).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert!(matches!(
            claims.claim(org, &loser, 5).await.unwrap(),
            ClaimOutcome::HeldBy(_)
        ));
    }

    #[tokio::test]
    async fn a_take_over_needs_the_very_claim_it_saw() {
        let claims = MemoryClaims::default();
        let org = OrgId::new(8).unwrap();
        let (holder, taker) = (account(1), account(2));
        claims.claim(org, &holder, 1).await.unwrap();
        let seen = claims.holder(org).await.unwrap().unwrap();
        // The holder claimed again meanwhile: not stale any more.
        claims.claim(org, &holder, 2).await.unwrap();
        match claims.take_over(&seen, &taker, 3).await.unwrap() {
            ClaimOutcome::HeldBy(c) => assert_eq!(c.claimed_at_ms, 2),
            o => panic!("{o:?}"),
        }
        let seen = claims.holder(org).await.unwrap().unwrap();
        assert_eq!(
            claims.take_over(&seen, &taker, 4).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert_eq!(claims.holder(org).await.unwrap().unwrap().account, taker);
    }
}
