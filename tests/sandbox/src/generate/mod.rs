//! `orglink-sandbox generate`: a deterministic, messy world (a scenario for both simulators)
//! and its ground truth, known by construction.
//!
//! Every account is built from a named [`Pattern`] whose correct end state (an existing org, a
//! new org, an exception of a given kind, or nothing) is fixed in the same step that writes
//! its records, from DESIGN.md's rules as `docs/generator.md` spells them out per pattern. The
//! truth is never computed by orglink's own resolution: this crate does not depend on
//! orglink-shared, and the id checksum, the domain forms and the kind names are written here
//! independently.
//!
//! Identities (names, domains), record ids and organization ids are unique by construction,
//! so patterns meet only where a pattern makes them meet on purpose (a domain on another
//! account's org, a name another account's org holds, a merge).
//!
//! Same options, same bytes: the generator uses its own seeded SplitMix64 and a fixed clock.

mod names;
mod patterns;
mod rng;
pub mod truth;
mod world;

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use patterns::Pattern;
pub use truth::{
    AccountTruth, DataFix, Expected, OrphanedOrg, PatternCount, RecordCounts, SwitchDependent,
    TRUTH_FORMAT, TicketAttribution, Totals, Truth,
};

use rng::Rng;
use world::{JsonList, World};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Salesforce accounts in the scenario (deleted and merged ones included), exactly.
    pub accounts: usize,
    pub seed: u64,
}

/// How many instances of each pattern a world of `accounts` accounts holds: each pattern its
/// weighted share (floor), the accounts left over as clean new customers.
pub fn plan(accounts: usize) -> Vec<(Pattern, usize)> {
    let total_weight: usize = Pattern::ALL
        .iter()
        .map(|p| p.weight() * p.accounts().max(1))
        .sum();
    let mut plan: Vec<(Pattern, usize)> = Pattern::ALL
        .iter()
        .map(|&p| (p, accounts * p.weight() / total_weight))
        .collect();
    let used: usize = plan.iter().map(|(p, n)| p.accounts() * n).sum();
    let clean = plan
        .iter_mut()
        .find(|(p, _)| *p == Pattern::CleanNewCustomer)
        .expect("clean_new_customer is a pattern");
    clean.1 += accounts - used;
    plan
}

/// A generated world: the scenario's records, already serialized, and the truth.
pub struct Generated {
    lists: Lists,
    truth: Truth,
}

struct Lists {
    accounts: JsonList,
    opportunities: JsonList,
    sf_users: JsonList,
    orgs: JsonList,
    zd_users: JsonList,
    tickets: JsonList,
    memberships: JsonList,
}

/// Builds the world for `options`.
pub fn generate(options: &Options) -> Generated {
    let mut w = World::new(options.seed, (options.accounts / 400).max(3));
    let mut order: Vec<Pattern> = plan(options.accounts)
        .into_iter()
        .flat_map(|(p, n)| std::iter::repeat_n(p, n))
        .collect();
    // Patterns interleave as they would in a real org; ids still grow in build order.
    let mut shuffle = Rng::new(options.seed ^ 0x5eed_5eed_5eed_5eed);
    shuffle.shuffle(&mut order);
    for p in order {
        patterns::build(&mut w, p);
    }
    let truth = summarize(options, &mut w);
    Generated {
        lists: Lists {
            accounts: std::mem::take(&mut w.accounts),
            opportunities: std::mem::take(&mut w.opportunities),
            sf_users: std::mem::take(&mut w.sf_users),
            orgs: std::mem::take(&mut w.orgs),
            zd_users: std::mem::take(&mut w.zd_users),
            tickets: std::mem::take(&mut w.tickets),
            memberships: std::mem::take(&mut w.memberships),
        },
        truth,
    }
}

fn summarize(options: &Options, w: &mut World) -> Truth {
    let accounts = std::mem::take(&mut w.truth);
    let mut patterns: BTreeMap<String, PatternCount> = Pattern::ALL
        .iter()
        .map(|p| {
            let instances = w.pattern_instances.get(p.name()).copied().unwrap_or(0);
            (
                p.name().to_string(),
                PatternCount {
                    instances,
                    accounts: 0,
                },
            )
        })
        .collect();
    let mut totals = Totals::default();
    for a in &accounts {
        if let Some(c) = patterns.get_mut(&a.pattern) {
            c.accounts += 1;
        }
        totals.eligible += usize::from(a.eligible);
        match &a.expected {
            Expected::Link(_) => totals.link_existing += 1,
            Expected::LinkNew => totals.link_new += 1,
            Expected::Nothing => totals.nothing += 1,
            Expected::Exception(kind) => {
                *totals.exceptions.entry(kind.clone()).or_default() += 1;
                *totals.findings.entry(kind.clone()).or_default() += 1;
            }
        }
        for f in &a.findings {
            *totals.findings.entry(f.clone()).or_default() += 1;
        }
        for r in &a.report {
            *totals.report.entry(r.clone()).or_default() += 1;
        }
    }
    // Orphans of purged accounts belong to no account of the scenario.
    let purged = w.orphaned_orgs.iter().filter(|o| o.why == "purged").count();
    if purged > 0 {
        *totals
            .findings
            .entry(patterns::kind::ORPHANED_ORG.to_string())
            .or_default() += purged;
    }
    Truth {
        format: TRUTH_FORMAT.to_string(),
        seed: options.seed,
        accounts_requested: options.accounts,
        counts: RecordCounts {
            accounts: w.accounts.len,
            opportunities: w.opportunities.len,
            salesforce_users: w.sf_users.len,
            organizations: w.orgs.len,
            deleted_organization_ids: w.deleted_org_ids,
            zendesk_users: w.zd_users.len,
            tickets: w.tickets.len,
            organization_memberships: w.memberships.len,
        },
        patterns,
        totals,
        ticket_attribution: std::mem::take(&mut w.ticket_attribution),
        data_fixes: std::mem::take(&mut w.data_fixes),
        orphaned_orgs: std::mem::take(&mut w.orphaned_orgs),
        switch_dependent: std::mem::take(&mut w.switch_dependent),
        accounts,
    }
}

impl Generated {
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// The scenario (DESIGN.md "Scenario files"), one record a line.
    pub fn write_scenario(&self, out: &mut impl Write) -> io::Result<()> {
        let l = &self.lists;
        out.write_all(b"{\"salesforce\": {")?;
        write_list(out, "accounts", &l.accounts)?;
        out.write_all(b",\n")?;
        write_list(out, "opportunities", &l.opportunities)?;
        out.write_all(b",\n")?;
        write_list(out, "users", &l.sf_users)?;
        out.write_all(b"},\n\"zendesk\": {")?;
        write_list(out, "organizations", &l.orgs)?;
        out.write_all(b",\n")?;
        write_list(out, "users", &l.zd_users)?;
        out.write_all(b",\n")?;
        write_list(out, "tickets", &l.tickets)?;
        out.write_all(b",\n")?;
        write_list(out, "organization_memberships", &l.memberships)?;
        out.write_all(b"}}\n")
    }

    pub fn scenario_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_scenario(&mut out).expect("writing to memory");
        out
    }

    /// The truth: the summary indented, then one account a line.
    pub fn write_truth(&self, out: &mut impl Write) -> io::Result<()> {
        let t = &self.truth;
        let header = TruthHeader {
            format: &t.format,
            seed: t.seed,
            accounts_requested: t.accounts_requested,
            counts: &t.counts,
            patterns: &t.patterns,
            totals: &t.totals,
            ticket_attribution: &t.ticket_attribution,
            data_fixes: &t.data_fixes,
            orphaned_orgs: &t.orphaned_orgs,
            switch_dependent: &t.switch_dependent,
        };
        let text = serde_json::to_string_pretty(&header).map_err(io::Error::other)?;
        let open = text
            .strip_suffix('}')
            .expect("a JSON object ends with }")
            .trim_end();
        out.write_all(open.as_bytes())?;
        out.write_all(b",\n  \"accounts\": [")?;
        for (i, a) in t.accounts.iter().enumerate() {
            out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
            serde_json::to_writer(&mut *out, a).map_err(io::Error::other)?;
        }
        out.write_all(b"\n  ]\n}\n")
    }

    pub fn truth_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_truth(&mut out).expect("writing to memory");
        out
    }
}

#[derive(Serialize)]
struct TruthHeader<'a> {
    format: &'a str,
    seed: u64,
    accounts_requested: usize,
    counts: &'a RecordCounts,
    patterns: &'a BTreeMap<String, PatternCount>,
    totals: &'a Totals,
    ticket_attribution: &'a [TicketAttribution],
    data_fixes: &'a [DataFix],
    orphaned_orgs: &'a [OrphanedOrg],
    switch_dependent: &'a [SwitchDependent],
}

fn write_list(out: &mut impl Write, name: &str, list: &JsonList) -> io::Result<()> {
    write!(out, "\"{name}\": [")?;
    out.write_all(&list.buf)?;
    out.write_all(if list.len == 0 { b"]" } else { b"\n]" })
}

/// `orglink-sandbox generate` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Salesforce accounts to generate (exactly; deleted and merged ones included).
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    /// Same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Writes DIR/scenario.json and DIR/truth.json (DIR is created).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Where to write the scenario (instead of DIR/scenario.json).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Where to write the truth (instead of DIR/truth.json).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
}

/// Why `generate` could not write its files; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("say where to write: --out-dir DIR, or both --scenario FILE and --truth FILE")]
    NoDestination,
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// What was written, for the one-line summary the binary prints.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub scenario: PathBuf,
    pub truth: PathBuf,
    pub seed: u64,
    pub accounts: usize,
    pub organizations: usize,
    pub patterns: usize,
}

/// Runs the subcommand: generates and writes both files.
pub fn run(args: &GenerateArgs) -> Result<Written, GenerateError> {
    let (scenario, truth) = match (&args.out_dir, &args.scenario, &args.truth) {
        (_, Some(s), Some(t)) => (s.clone(), t.clone()),
        (Some(dir), s, t) => {
            std::fs::create_dir_all(dir).map_err(|source| GenerateError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            (
                s.clone().unwrap_or_else(|| dir.join("scenario.json")),
                t.clone().unwrap_or_else(|| dir.join("truth.json")),
            )
        }
        _ => return Err(GenerateError::NoDestination),
    };
    let generated = generate(&Options {
        accounts: args.accounts,
        seed: args.seed,
    });
    write_file(&scenario, |out| generated.write_scenario(out))?;
    write_file(&truth, |out| generated.write_truth(out))?;
    let t = generated.truth();
    Ok(Written {
        scenario,
        truth,
        seed: t.seed,
        accounts: t.counts.accounts,
        organizations: t.counts.organizations,
        patterns: t.patterns.values().filter(|c| c.instances > 0).count(),
    })
}

fn write_file(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<(), GenerateError> {
    let fail = |source| GenerateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(fail)?;
    let mut out = BufWriter::new(file);
    body(&mut out).map_err(fail)?;
    out.flush().map_err(fail)
}
