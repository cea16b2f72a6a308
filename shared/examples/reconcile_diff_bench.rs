//! Benchmark and end-to-end check of the reconciliation diff at production scale.
//!
//! Generates (deterministically, from a seed) a world of N accounts and about N organizations
//! with about 5% drift of each finding kind the diff produces, plus a few percent of each
//! repair and report line, streams organizations in pages of 100 and accounts in pages of
//! 2,000 (as the Zendesk and Salesforce APIs page), and times only the diff's own calls (the
//! generation of each page is excluded). It then checks every count against what was injected
//! and exits non-zero on any mismatch, so the benchmark is also a correctness check.
//!
//! Findings are consumed as `finish_into` hands them over, as the reconcile function does
//! (it upserts each into the exception table); `--collect` holds them all in a `Vec` instead
//! (`finish`), to show what that costs.
//!
//! `cargo run --release -p orglink-shared --example reconcile_diff_bench [-- --accounts N --orgs N --threads N --seed S --collect]`

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use orglink_shared::domain::Domain;
use orglink_shared::exceptions::{ExceptionKind, ReportKind};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::Organization;
use orglink_shared::reconcile::{AccountFacts, DiffBuilder, DiffConfig, DiffSummary, TicketFacts};

const ORG_PAGE: usize = 100;
const ACCOUNT_PAGE: usize = 2_000;
/// Partner accounts (the other side of a conflict, a merge survivor) live far above the main ids.
const PARTNER_BASE: u64 = 500_000_000_000;
/// Extra organizations (duplicates, legacy orgs, partners' orgs) live far above the main ids.
const EXTRA_ORG_BASE: u64 = 10_000_000_000;

/// What one world (one main account and whatever surrounds it) is made to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Injected {
    Clean,
    DuplicateKey,
    StoredKeyDisagree,
    KeyConflict,
    CollisionUnlinked,
    CollisionOrgToOrg,
    AmbiguousDomain,
    PossibleLegacyOrg,
    OrphanDeleted,
    OrphanPurged,
    NameDrift,
    WebsiteDrift,
    DomainHeldByKeyless,
    TicketDrift,
    MissingLink,
    StoredOrgGone,
    MergedRelink,
    Rename,
    AddDomain,
    SetKey,
    Churned,
    DataFix,
}

impl Injected {
    /// The finding, repair or report line this drift must produce (exactly one).
    fn expect(self) -> Expect {
        use ExceptionKind as K;
        use Injected::*;
        match self {
            Clean => Expect::Nothing,
            DuplicateKey => Expect::Finding(K::DuplicateExternalId),
            StoredKeyDisagree => Expect::Finding(K::StoredLinkKeyDisagree),
            KeyConflict => Expect::Finding(K::KeyConflict),
            CollisionUnlinked | CollisionOrgToOrg => Expect::Finding(K::DomainCollision),
            AmbiguousDomain => Expect::Finding(K::AmbiguousDomain),
            PossibleLegacyOrg => Expect::Finding(K::PossibleLegacyOrg),
            OrphanDeleted | OrphanPurged => Expect::Finding(K::OrphanedOrg),
            NameDrift => Expect::Finding(K::NameDrift),
            WebsiteDrift | DomainHeldByKeyless => Expect::Finding(K::DomainDrift),
            TicketDrift => Expect::Finding(K::TicketAttributionDrift),
            // The merge survivor holds no link yet: a missing link, repaired by relinking.
            MissingLink | StoredOrgGone | MergedRelink => {
                Expect::RepairAndLine(ReportKind::MissingLink)
            }
            Rename | AddDomain | SetKey => Expect::Repair,
            Churned => Expect::Line(ReportKind::ChurnedCustomer),
            DataFix => Expect::Line(ReportKind::DataFix),
        }
    }
}

enum Expect {
    Nothing,
    Finding(ExceptionKind),
    Repair,
    RepairAndLine(ReportKind),
    Line(ReportKind),
}

/// splitmix64: a tiny, well-mixed, seedable hash of the world index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Gen {
    seed: u64,
    accounts: u64,
    orgs: u64,
}

impl Gen {
    /// 5% of worlds for each finding kind (split where a kind has two shapes), 2% for each
    /// repair and report line, the rest clean. A world past the org count has no org: a
    /// missing link.
    fn drift(&self, i: u64) -> Injected {
        use Injected::*;
        if i >= self.orgs {
            return MissingLink;
        }
        match mix(self.seed ^ i) % 100 {
            0..5 => DuplicateKey,
            5..10 => StoredKeyDisagree,
            10..15 => KeyConflict,
            15..18 => CollisionUnlinked,
            18..20 => CollisionOrgToOrg,
            20..25 => AmbiguousDomain,
            25..30 => PossibleLegacyOrg,
            30..33 => OrphanDeleted,
            33..35 => OrphanPurged,
            35..40 => NameDrift,
            40..43 => WebsiteDrift,
            43..45 => DomainHeldByKeyless,
            45..50 => TicketDrift,
            50..52 => MissingLink,
            52..54 => StoredOrgGone,
            54..56 => MergedRelink,
            56..58 => Rename,
            58..60 => AddDomain,
            60..62 => SetKey,
            62..64 => Churned,
            64..66 => DataFix,
            _ => Clean,
        }
    }

    fn has_main_org(d: Injected) -> bool {
        use Injected::*;
        !matches!(
            d,
            KeyConflict
                | CollisionUnlinked
                | AmbiguousDomain
                | PossibleLegacyOrg
                | MissingLink
                | StoredOrgGone
        )
    }

    /// The organizations of world `i`.
    fn orgs_of(&self, i: u64, out: &mut Vec<Organization>) {
        use Injected::*;
        if i >= self.accounts {
            // More orgs than accounts: unrelated, keyless, harmless.
            out.push(org(
                main_org(i),
                format!("Unrelated {i}"),
                None,
                vec![domain_text(i)],
            ));
            return;
        }
        let d = self.drift(i);
        let a = account_id(i);
        let z = account_id(PARTNER_BASE + i);
        let name = company(i);
        if Self::has_main_org(d) {
            let key = match d {
                SetKey => None,
                _ => Some(a.as_str().to_string()),
            };
            let org_name = match d {
                NameDrift | Rename => format!("{name} (old)"),
                _ => name.clone(),
            };
            let domains = match d {
                AddDomain | DomainHeldByKeyless => vec![],
                _ => vec![domain_text(i)],
            };
            out.push(org(main_org(i), org_name, key, domains));
        }
        match d {
            DuplicateKey => out.push(org(
                extra_org(i, 0),
                format!("{name} EMEA"),
                Some(a.id15().to_string()),
                vec![],
            )),
            StoredKeyDisagree => {
                out.push(org(extra_org(i, 0), format!("{name} legacy"), None, vec![]))
            }
            KeyConflict | CollisionUnlinked => out.push(org(
                extra_org(i, 0),
                format!("Partner {i}"),
                Some(z.as_str().to_string()),
                vec![partner_domain(i)],
            )),
            CollisionOrgToOrg => out.push(org(
                extra_org(i, 0),
                format!("Partner {i}"),
                Some(z.as_str().to_string()),
                vec![partner_domain(i), domain_text(i)],
            )),
            AmbiguousDomain => {
                for k in 0..2 {
                    out.push(org(
                        extra_org(i, k),
                        format!("{name} site {k}"),
                        None,
                        vec![domain_text(i)],
                    ));
                }
            }
            PossibleLegacyOrg | NameDrift => {
                out.push(org(extra_org(i, 0), name.to_uppercase(), None, vec![]))
            }
            DomainHeldByKeyless => out.push(org(
                extra_org(i, 0),
                format!("{name} other"),
                None,
                vec![domain_text(i)],
            )),
            _ => {}
        }
    }

    /// The accounts of world `i` as the account stream shows them.
    fn accounts_of(&self, i: u64, out: &mut Vec<AccountFacts>) {
        use Injected::*;
        if i >= self.accounts {
            return;
        }
        let d = self.drift(i);
        let a = account_id(i);
        let mut f = facts(
            a,
            company(i),
            Some(domain(&domain_text(i))),
            Some(main_org(i)),
        );
        match d {
            StoredKeyDisagree => f.stored_org_id = Some(extra_org(i, 0).to_string()),
            KeyConflict => f.stored_org_id = Some(extra_org(i, 0).to_string()),
            CollisionUnlinked => {
                f.domain = Some(domain(&partner_domain(i)));
                f.stored_org_id = None;
            }
            AmbiguousDomain | PossibleLegacyOrg | MissingLink => f.stored_org_id = None,
            StoredOrgGone => f.stored_org_id = Some((EXTRA_ORG_BASE * 10 + i).to_string()),
            OrphanDeleted => f.is_deleted = true,
            // Not streamed: found through `accounts_to_look_up`.
            OrphanPurged => return,
            WebsiteDrift => f.website_disagrees = Some(format!("company{i}-new.com")),
            Churned => f.eligible = false,
            DataFix => f.unusable_website = Some("gmail.com is a consumer mail domain".into()),
            MergedRelink => {
                f.is_deleted = true;
                f.master_record_id = Some(account_id(PARTNER_BASE + i));
            }
            _ => {}
        }
        out.push(f);
        match d {
            KeyConflict | CollisionUnlinked | CollisionOrgToOrg => out.push(facts(
                account_id(PARTNER_BASE + i),
                format!("Partner {i}"),
                Some(domain(&partner_domain(i))),
                Some(extra_org(i, 0)),
            )),
            // The survivor of a merge, with no org of its own and the merged-away one's name.
            MergedRelink => out.push(facts(
                account_id(PARTNER_BASE + i),
                company(i),
                Some(domain(&domain_text(i))),
                None,
            )),
            _ => {}
        }
    }

    /// One ticket per main org; a drifting world's requester belongs to another org.
    fn tickets_of(&self, i: u64, out: &mut Vec<TicketFacts>) {
        if i >= self.accounts.min(self.orgs) {
            return;
        }
        let d = self.drift(i);
        if !Self::has_main_org(d) {
            return;
        }
        let org = OrgId::new(main_org(i)).expect("positive");
        let requester_org = if d == Injected::TicketDrift {
            OrgId::new(main_org(i + 1)).expect("positive")
        } else {
            org
        };
        out.push(TicketFacts {
            ticket: i + 1,
            org,
            requester: i + 1,
            requester_orgs: vec![requester_org],
        });
    }
}

fn main_org(i: u64) -> u64 {
    i + 1
}

fn extra_org(i: u64, k: u64) -> u64 {
    EXTRA_ORG_BASE + i * 4 + k
}

fn account_id(n: u64) -> AccountId {
    AccountId::parse(&format!("001{n:012}")).expect("generated ids are valid")
}

fn company(i: u64) -> String {
    format!("Company {i}")
}

fn domain_text(i: u64) -> String {
    format!("company{i}.com")
}

fn partner_domain(i: u64) -> String {
    format!("partner{i}.com")
}

fn domain(text: &str) -> Domain {
    Domain::parse(text).expect("generated domains are valid")
}

fn org(id: u64, name: String, key: Option<String>, domains: Vec<String>) -> Organization {
    Organization {
        id: OrgId::new(id).expect("positive"),
        name,
        external_id: key,
        domain_names: domains,
        tags: vec![],
        organization_fields: Default::default(),
        updated_at: None,
    }
}

fn facts(id: AccountId, name: String, domain: Option<Domain>, org: Option<u64>) -> AccountFacts {
    AccountFacts {
        id,
        is_deleted: false,
        master_record_id: None,
        eligible: true,
        suffixed_name: format!("{name} (Salesforce)"),
        name,
        domain,
        website_disagrees: None,
        unusable_website: None,
        stored_org_id: org.map(|o| o.to_string()),
    }
}

/// Time spent in the diff's own calls only: wall time, and the CPU time of the whole process
/// (every thread) over the same calls. On a shared machine the wall time grows with other
/// people's load; the CPU time much less, and on an idle machine the wall time cannot exceed
/// it (nothing in the diff waits).
#[derive(Default)]
struct Stopwatch {
    total: Duration,
    cpu: Duration,
}

impl Stopwatch {
    fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let c = process_cpu();
        let t = Instant::now();
        let out = f();
        self.total += t.elapsed();
        self.cpu += process_cpu().saturating_sub(c);
        out
    }
}

/// CPU time used so far by every thread of this process.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The 1-minute load average, to print beside the times.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Peak resident set size of this process, from the kernel.
fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// Current resident set size.
fn rss_mib() -> f64 {
    proc_status_mib("VmRSS:").unwrap_or(f64::NAN)
}

fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Args {
    accounts: u64,
    orgs: u64,
    seed: u64,
    threads: usize,
    collect: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut accounts = 1_000_000u64;
    let mut orgs = None;
    let mut seed = 0x0a61_1e55u64;
    let mut threads = 2usize;
    let mut collect = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--collect" {
            collect = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .replace('_', "");
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} needs a whole number, got {value:?}"))?;
        match flag.as_str() {
            "--accounts" => accounts = n,
            "--orgs" => orgs = Some(n),
            "--seed" => seed = n,
            "--threads" => threads = n.max(1) as usize,
            _ => {
                return Err(format!(
                    "unknown option {flag} (use --accounts, --orgs, --threads, --seed, --collect)"
                ));
            }
        }
    }
    Ok(Args {
        accounts,
        orgs: orgs.unwrap_or(accounts),
        seed,
        threads,
        collect,
    })
}

fn main() -> ExitCode {
    let Args {
        accounts,
        orgs,
        seed,
        threads,
        collect,
    } = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("reconcile_diff_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let g = Gen {
        seed,
        accounts,
        orgs,
    };
    let started = Instant::now();
    let load_before = load_average();
    let mut clock = Stopwatch::default();

    // Organizations, in pages of ORG_PAGE.
    // The reconcile function knows about how many orgs come (its mirror's count), so the
    // indexes are sized once; the world generated here has about a fifth more than `--orgs`.
    let mut builder = DiffBuilder::new(DiffConfig {
        threads,
        expected_orgs: orgs as usize,
        ..DiffConfig::default()
    });
    let mut page: Vec<Organization> = Vec::with_capacity(ORG_PAGE + 4);
    for i in 0..accounts.max(orgs) {
        g.orgs_of(i, &mut page);
        if page.len() >= ORG_PAGE {
            let rest = page.split_off(ORG_PAGE);
            clock.run(|| builder.add_orgs(&page));
            page = rest;
        }
    }
    clock.run(|| builder.add_orgs(&page));
    drop(page);
    let mut diff = clock.run(|| builder.accounts());
    let org_time = clock.total;
    let org_cpu = clock.cpu;
    let rss_orgs = rss_mib();

    // Accounts, in pages of ACCOUNT_PAGE, and tickets.
    let mut accounts_page: Vec<AccountFacts> = Vec::with_capacity(ACCOUNT_PAGE + 2);
    let mut tickets: Vec<TicketFacts> = Vec::with_capacity(ACCOUNT_PAGE);
    for i in 0..accounts {
        g.accounts_of(i, &mut accounts_page);
        g.tickets_of(i, &mut tickets);
        if accounts_page.len() >= ACCOUNT_PAGE {
            let rest = accounts_page.split_off(ACCOUNT_PAGE);
            let full = std::mem::replace(&mut accounts_page, rest);
            clock.run(|| diff.add_accounts(full));
            clock.run(|| diff.add_tickets(&tickets));
            tickets.clear();
        }
    }
    clock.run(|| diff.add_accounts(accounts_page));
    clock.run(|| diff.add_tickets(&tickets));
    drop(tickets);

    // The caller's look-up of accounts orgs are keyed to but the stream never showed: here
    // Salesforce no longer knows them (purged from the recycle bin).
    let to_look_up = clock.run(|| diff.accounts_to_look_up());
    let looked_up = to_look_up.len();
    clock.run(|| diff.add_accounts(to_look_up.into_iter().map(AccountFacts::purged)));
    let ingest_time = clock.total;
    let ingest_cpu = clock.cpu;
    let rss_accounts = rss_mib();

    let mut streamed = 0usize;
    let (summary, held) = if collect {
        let outcome = clock.run(|| diff.finish());
        let summary = DiffSummary {
            report: outcome.report,
            repairs: outcome.repairs,
            unseen_accounts: outcome.unseen_accounts,
            counts: outcome.counts,
        };
        (summary, outcome.findings)
    } else {
        // The consumer here only counts; the reconcile function upserts each one.
        let summary = clock.run(|| diff.finish_into(&mut |_finding| streamed += 1));
        (summary, Vec::new())
    };
    let timed = clock.total;
    let finish_time = timed - ingest_time;
    let cpu = clock.cpu;
    let wall = started.elapsed();
    let peak = peak_rss_mib();
    let rss_outcome = rss_mib();

    // What was injected.
    let mut expected_findings: BTreeMap<ExceptionKind, usize> = BTreeMap::new();
    let mut expected_report: BTreeMap<ReportKind, usize> = BTreeMap::new();
    let mut expected_repairs = 0usize;
    let mut expected_lookups = 0usize;
    for i in 0..accounts {
        let d = g.drift(i);
        if d == Injected::OrphanPurged {
            expected_lookups += 1;
        }
        match d.expect() {
            Expect::Nothing => {}
            Expect::Finding(k) => *expected_findings.entry(k).or_default() += 1,
            Expect::Repair => expected_repairs += 1,
            Expect::RepairAndLine(k) => {
                expected_repairs += 1;
                *expected_report.entry(k).or_default() += 1;
            }
            Expect::Line(k) => *expected_report.entry(k).or_default() += 1,
        }
    }

    let c = &summary.counts;
    println!("reconcile diff benchmark (seed {seed:#x})");
    println!(
        "  input: {} orgs (pages of {ORG_PAGE}), {} accounts (pages of {ACCOUNT_PAGE}), {} tickets, {} looked up",
        c.orgs, c.accounts, c.tickets, looked_up
    );
    println!(
        "  decided: {} by the consistent-account shortcut, {} through resolve, {} deleted or merged",
        c.fast_path, c.resolved, c.gone_accounts
    );
    let mut ok = true;
    println!("  {:<28} {:>9} {:>9}", "finding kind", "found", "injected");
    for kind in ExceptionKind::ALL {
        let found = c.findings.get(&kind).copied().unwrap_or(0);
        let want = expected_findings.get(&kind).copied().unwrap_or(0);
        let mark = if found == want { "" } else { "  MISMATCH" };
        ok &= found == want;
        println!("  {:<28} {found:>9} {want:>9}{mark}", kind.as_str());
    }
    for kind in [
        ReportKind::DataFix,
        ReportKind::ChurnedCustomer,
        ReportKind::MissingLink,
    ] {
        let found = c.report.get(&kind).copied().unwrap_or(0);
        let want = expected_report.get(&kind).copied().unwrap_or(0);
        let mark = if found == want { "" } else { "  MISMATCH" };
        ok &= found == want;
        println!(
            "  {:<28} {found:>9} {want:>9}{mark}",
            format!("report: {kind:?}")
        );
    }
    let mark = if c.repairs == expected_repairs {
        ""
    } else {
        "  MISMATCH"
    };
    ok &= c.repairs == expected_repairs;
    println!(
        "  {:<28} {:>9} {expected_repairs:>9}{mark}",
        "repairs", c.repairs
    );
    let mark = if looked_up == expected_lookups {
        ""
    } else {
        "  MISMATCH"
    };
    ok &= looked_up == expected_lookups && summary.unseen_accounts.is_empty();
    let total_findings: usize = c.findings.values().sum();
    ok &= total_findings == if collect { held.len() } else { streamed };
    println!(
        "  {:<28} {looked_up:>9} {expected_lookups:>9}{mark}",
        "accounts looked up"
    );

    println!(
        "  time in the diff: {:.2} s (orgs {:.2} s, accounts and tickets {:.2} s, finish {:.2} s); wall with generation {:.2} s",
        timed.as_secs_f64(),
        org_time.as_secs_f64(),
        (ingest_time - org_time).as_secs_f64(),
        finish_time.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  CPU time in the diff, all threads: {:.2} s (orgs {:.2} s, accounts and tickets {:.2} s, finish {:.2} s); load average {load_before} at start, {} at end",
        cpu.as_secs_f64(),
        org_cpu.as_secs_f64(),
        (ingest_cpu - org_cpu).as_secs_f64(),
        (cpu - ingest_cpu).as_secs_f64(),
        load_average()
    );
    match peak {
        Some(mib) => println!(
            "  peak memory (VmHWM): {mib:.0} MiB (resident after orgs {rss_orgs:.0} MiB, after accounts {rss_accounts:.0} MiB, holding the outcome {rss_outcome:.0} MiB)"
        ),
        None => println!("  peak memory: unavailable (no /proc/self/status)"),
    }
    println!(
        "  findings {}: {total_findings}; threads deciding accounts: {threads}",
        if collect {
            "held in a Vec (finish)"
        } else {
            "streamed (finish_into)"
        }
    );
    drop(held);
    if ok {
        println!("  OK: every count matches what was injected");
        ExitCode::SUCCESS
    } else {
        eprintln!("reconcile_diff_bench: counts differ from what was injected");
        ExitCode::FAILURE
    }
}
