//! The apply journal: a write-ahead log beside the plan (`PLAN.journal`, JSON lines, each line
//! flushed to disk before the step it announces), so an apply interrupted at any point can be
//! finished by running it again.
//!
//! Why a rerun never creates a second organization for an account (`create_many` is not keyed
//! the way `create_or_update` is):
//! 1. Before a `create_many` job is submitted, its accounts are journaled as `submitting`.
//!    So every account Zendesk may have created an organization for is in the journal, whether
//!    the process died before the submit, during the job, or before its results were written.
//! 2. On a rerun, such an account whose results were not journaled is *in doubt*. It is never
//!    sent to `create_many` again: the rerun's fresh listing (Zendesk's database, not the
//!    lagging search index) and then `show_many?external_ids=` look for an organization keyed
//!    to it, and only when neither finds one is it created through `create_or_update` keyed
//!    on its external_id — which matches in Zendesk's database, so if the old job runs late or
//!    already ran, it updates that organization instead of adding one.
//! 3. An old job still queued when the rerun creates would itself be refused: Zendesk enforces
//!    external_id uniqueness for organizations (reference §1), and the key is set at creation.
//!
//! Accounts never journaled as `submitting` were never sent, so `create_many` is safe for them;
//! a live event that created one meanwhile makes that item fail with a duplicate external_id,
//! which apply resolves by looking the key up and linking (step 2's lookup).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BackfillError;
use crate::ids::{AccountId, OrgId};

/// What a batch does in Zendesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    Create,
    Update,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// An apply of this plan started (every run writes one).
    Started { plan_hash: String, at: String },
    /// Written (and flushed) before the batch is sent.
    Submitting {
        batch: String,
        kind: BatchKind,
        accounts: Vec<AccountId>,
    },
    /// The batch's per-account results: the organization, or none when the item failed.
    Results {
        batch: String,
        orgs: Vec<(AccountId, Option<OrgId>)>,
    },
    /// Written (and flushed) before these claims are taken: a rerun that skips one of these
    /// accounts releases what this run claimed for it.
    Claiming { claims: Vec<(AccountId, OrgId)> },
    /// These accounts are finished: written back and recorded.
    Done { accounts: Vec<AccountId> },
}

/// An account an earlier run started on but did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub kind: BatchKind,
    /// `Some(Some(org))`: the batch reported the org; `Some(None)`: the item failed; `None`:
    /// the results never made it to the journal (in doubt).
    pub result: Option<Option<OrgId>>,
}

/// What earlier runs of this plan did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalState {
    pub runs: usize,
    pub done: HashSet<AccountId>,
    pub in_flight: HashMap<AccountId, InFlight>,
    /// The org an unfinished account was (or was about to be) claimed for.
    pub claimed: HashMap<AccountId, OrgId>,
}

impl JournalState {
    fn apply(&mut self, event: JournalEvent) {
        match event {
            JournalEvent::Started { .. } => self.runs += 1,
            JournalEvent::Submitting { kind, accounts, .. } => {
                for a in accounts {
                    if !self.done.contains(&a) {
                        self.in_flight.insert(a, InFlight { kind, result: None });
                    }
                }
            }
            JournalEvent::Results { orgs, .. } => {
                for (a, org) in orgs {
                    if let Some(f) = self.in_flight.get_mut(&a) {
                        f.result = Some(org);
                    }
                }
            }
            JournalEvent::Claiming { claims } => {
                for (a, org) in claims {
                    if !self.done.contains(&a) {
                        self.claimed.insert(a, org);
                    }
                }
            }
            JournalEvent::Done { accounts } => {
                for a in accounts {
                    self.in_flight.remove(&a);
                    self.claimed.remove(&a);
                    self.done.insert(a);
                }
            }
        }
    }
}

/// The journal file, open for appending.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Where the journal of `plan_path` lives.
    pub fn path_for(plan_path: &Path) -> PathBuf {
        let mut name = plan_path.file_name().unwrap_or_default().to_os_string();
        name.push(".journal");
        plan_path.with_file_name(name)
    }

    /// Opens (or creates) the journal, reads what earlier runs did, and records this run's
    /// start. Refuses a journal written for another plan.
    pub fn open(
        path: &Path,
        plan_hash: &str,
        now: &str,
    ) -> Result<(Journal, JournalState), BackfillError> {
        let io = |e: std::io::Error| BackfillError::Journal {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut state = JournalState::default();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        // One apply per journal: a second one (a rerun while an old process still polls a
        // job) would see nothing in flight and submit the same creates again. The lock goes
        // with the process, so a crashed apply never leaves it behind.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(BackfillError::Journal {
                    path: path.to_owned(),
                    reason: "another apply is using it; wait for that one to end, or stop it, and run again".into(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let bytes = std::fs::read(path).map_err(io)?;
        // A line torn by a crash mid-write can only be the last one, and the step it
        // announced was never taken: cut it off so the next line starts clean.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(io)?;
        }
        for (n, line) in BufReader::new(&bytes[..complete]).lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let event: JournalEvent =
                serde_json::from_str(&line).map_err(|e| BackfillError::Journal {
                    path: path.to_owned(),
                    reason: format!("line {}: {e}", n + 1),
                })?;
            if let JournalEvent::Started { plan_hash: h, .. } = &event
                && h != plan_hash
            {
                return Err(BackfillError::Journal {
                    path: path.to_owned(),
                    reason: format!(
                        "it belongs to plan {h}, not {plan_hash}: move it away only if that apply is abandoned"
                    ),
                });
            }
            state.apply(event);
        }
        let mut journal = Journal {
            path: path.to_owned(),
            file,
        };
        journal.write(&JournalEvent::Started {
            plan_hash: plan_hash.to_string(),
            at: now.to_string(),
        })?;
        Ok((journal, state))
    }

    /// Appends one event and waits until it is on disk.
    pub fn write(&mut self, event: &JournalEvent) -> Result<(), BackfillError> {
        let mut line = serde_json::to_vec(event).expect("a journal event serializes");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| BackfillError::Journal {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    #[test]
    fn a_journal_serves_one_apply_at_a_time() {
        let dir = std::env::temp_dir().join(format!("orglink-journal-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.json.journal");
        let _ = std::fs::remove_file(&path);
        let (first, _) = Journal::open(&path, "h1", "t0").unwrap();
        match Journal::open(&path, "h1", "t1") {
            Err(BackfillError::Journal { reason, .. }) => {
                assert!(reason.contains("another apply is using it"), "{reason}")
            }
            other => panic!("a second apply opened the journal: {:?}", other.map(|_| ())),
        }
        // Gone with its holder (a crashed apply's lock is released by the OS alike).
        drop(first);
        let (_, state) = Journal::open(&path, "h1", "t2").unwrap();
        assert_eq!(state.runs, 1, "the refused apply wrote nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rerun_sees_done_in_flight_and_in_doubt_accounts() {
        let dir = std::env::temp_dir().join(format!("orglink-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.json.journal");
        let _ = std::fs::remove_file(&path);
        let (a, b, c) = (
            id("001D000000IRFmaIAH"),
            id("001D000000IomazIAB"),
            id("001D000000IqhSLIAZ"),
        );
        let org = OrgId::new(7).unwrap();
        {
            let (mut j, state) = Journal::open(&path, "h1", "t0").unwrap();
            assert_eq!(state, JournalState::default());
            j.write(&JournalEvent::Submitting {
                batch: "c0".into(),
                kind: BatchKind::Create,
                accounts: vec![a.clone(), b.clone()],
            })
            .unwrap();
            j.write(&JournalEvent::Results {
                batch: "c0".into(),
                orgs: vec![(a.clone(), Some(org)), (b.clone(), None)],
            })
            .unwrap();
            j.write(&JournalEvent::Submitting {
                batch: "c1".into(),
                kind: BatchKind::Create,
                accounts: vec![c.clone()],
            })
            .unwrap();
            j.write(&JournalEvent::Claiming {
                claims: vec![(a.clone(), org), (b.clone(), org)],
            })
            .unwrap();
            j.write(&JournalEvent::Done {
                accounts: vec![b.clone()],
            })
            .unwrap();
        }
        // A torn last line (the crash hit mid-write) is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"done\",\"acc").unwrap();
        drop(f);

        let (_j, state) = Journal::open(&path, "h1", "t1").unwrap();
        assert_eq!(state.runs, 1);
        drop(_j);
        let (_j, again) = Journal::open(&path, "h1", "t2").unwrap();
        assert_eq!(
            again.runs, 2,
            "the torn line was cut, not glued to the next"
        );
        assert_eq!(again.done, state.done);
        assert!(state.done.contains(&b));
        assert_eq!(state.in_flight[&a].result, Some(Some(org)));
        assert_eq!(state.in_flight[&c].result, None, "c is in doubt");
        assert!(!state.in_flight.contains_key(&b));
        // A finished account's claim is its link's; an unfinished one's may be released.
        assert_eq!(state.claimed, HashMap::from([(a.clone(), org)]));
        drop(_j);

        let err = Journal::open(&path, "other", "t2").err().unwrap();
        assert!(err.to_string().contains("belongs to plan h1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
