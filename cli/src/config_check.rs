//! `orglink config check`: everything a deployment needs, checked from where the operator
//! stands, printing what it would use and never a secret.
//!
//! 1. the configuration parses and validates (every error names the key);
//! 2. the credentials have the secret's shape (environment or the deployment's secret);
//! 3. Salesforce: sign-in works and the org is the bound one; the integration user (named by
//!    the sign-in's identity URL) may edit accounts and each of the four link fields, and they
//!    exist — from `describe` of Account, which reports the running user's own rights and needs
//!    no setup permission; it sees every account — View All on Account or View All Data, not a
//!    sharing-filtered subset — read from its permission sets as a Salesforce admin tool reads
//!    them. Those setup objects need View Setup and Configuration, which the integration user
//!    does not have: then View All is reported unverifiable (a WARN line saying how to verify
//!    it: once with an admin's credentials and `--integration-user`), never a failure. With
//!    `--integration-user` the signed-in user is someone else (an admin) and every right of the
//!    named user comes from its permission sets;
//! 4. Zendesk: the subdomain is the bound one; the token's user (`users/me`) is an admin, or an
//!    agent whose custom role allows editing organizations; the token can read organizations
//!    and manage organization fields and webhooks (what `setup zendesk` and the worker need).
//!
//! Exit code 0 when every check passed, 1 when one failed (each failure says what to fix), 3
//! when none failed but one could not be verified from these credentials (each WARN line says
//! how to verify it).

use std::process::ExitCode;

use futures_util::TryStreamExt;
use serde_json::Value;

use orglink_shared::contract::LinkField;
use orglink_shared::credentials::{SalesforceFlow, ZendeskCredentials};
use orglink_shared::salesforce::access::{self, FieldAccess, SetupAccess};

use crate::context::{self, Clients, Common, CredentialsOrigin};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validates the configuration and credentials and checks both systems (read-only).
    #[command(after_help = "Examples:
  orglink config check
  orglink config check --config /etc/orglink/orglink.toml
  ORGLINK_SECRET_ID=orglink/credentials orglink config check   credentials from AWS
  ORGLINK_SF_CLIENT_ID=<admin app> ORGLINK_SF_CLIENT_SECRET=... \
    orglink config check --integration-user 005XXXXXXXXXXXX      an admin verifies View All

Exit codes: 0 every check passed, 1 a check failed, 2 the command could not run,
3 no check failed but one could not be verified from these credentials (WARN lines say how).")]
    Check {
        #[command(flatten)]
        common: Common,
        /// Check this Salesforce user's rights (005…) instead of the signed-in user's: run once
        /// with the credentials of a user who has View Setup and Configuration (an admin) to
        /// verify what the integration user's own credentials cannot read, such as View All.
        /// Default: $ORGLINK_SF_INTEGRATION_USER_ID, else the signed-in user.
        #[arg(long, value_name = "USER_ID")]
        integration_user: Option<String>,
    },
}

/// Names the integration user when an admin runs the check (`--integration-user`).
const INTEGRATION_USER_ENV: &str = "ORGLINK_SF_INTEGRATION_USER_ID";

struct Checks {
    failed: usize,
    unverified: usize,
}

impl Checks {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what}: {detail}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("FAIL  {what}: {detail}");
    }
    /// Neither passed nor failed: these credentials cannot see the answer.
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.unverified += 1;
        println!("WARN  {what}: {detail}");
    }
}

pub fn run(command: ConfigCommand) -> ExitCode {
    let ConfigCommand::Check {
        common,
        integration_user,
    } = command;
    let named = integration_user
        .or_else(|| std::env::var(INTEGRATION_USER_ENV).ok())
        .filter(|u| !u.trim().is_empty());
    context::run(async move {
        let mut checks = Checks {
            failed: 0,
            unverified: 0,
        };
        let named = match named.as_deref().map(|u| (u, access::parse_user_id(u))) {
            None => None,
            Some((_, Some(id))) => Some(id),
            Some((raw, None)) => {
                checks.fail(
                    "integration user",
                    format!(
                        "{raw:?} is not a Salesforce user id (005 followed by 12 or 15 letters and digits; Setup > Users shows it in the user's URL)"
                    ),
                );
                return Ok(ExitCode::from(1));
            }
        };
        let (config, origin) = match context::load_config(common.config.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                checks.fail("configuration", &e);
                return Ok(ExitCode::from(1));
            }
        };
        let binding = config.binding();
        checks.ok(
            "configuration",
            format!(
                "valid ({origin}); bound to Salesforce org {} and Zendesk subdomain {}",
                binding.salesforce_org_id().as_str(),
                binding.zendesk_subdomain().as_str()
            ),
        );
        if origin == context::ConfigOrigin::EmbeddedDefault {
            println!(
                "      note: the embedded default is bound to the local sandbox; a deployment sets its own [binding]"
            );
        }
        let fields: Vec<&str> = config
            .write_back()
            .fields()
            .iter()
            .map(|f| f.api_name())
            .collect();
        println!("      write-back fields: {}", fields.join(", "));
        let mirrored: Vec<String> = config
            .mapping()
            .organization_fields()
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        println!(
            "      mirrored organization fields: {}",
            mirrored.join(", ")
        );

        let (creds, from) = match context::load_credentials().await {
            Ok(c) => c,
            Err(e) => {
                checks.fail("credentials", &e);
                return Ok(ExitCode::from(1));
            }
        };
        let flow = match &creds.salesforce.flow {
            SalesforceFlow::ClientCredentials { .. } => "client credentials".to_string(),
            SalesforceFlow::JwtBearer { username, .. } => format!("JWT bearer as {username}"),
        };
        let zendesk_auth = match &creds.zendesk {
            ZendeskCredentials::ApiToken { email, .. } => format!("API token of {email}"),
            ZendeskCredentials::Oauth { .. } => "OAuth token".to_string(),
        };
        checks.ok(
            "credentials",
            format!(
                "read from {}; Salesforce {} at {} ({flow}); Zendesk {zendesk_auth} (secrets not shown)",
                match &from {
                    CredentialsOrigin::Environment => "the environment".to_string(),
                    CredentialsOrigin::Secret(id) => format!("secret {id}"),
                },
                creds.salesforce.client_id,
                creds.salesforce.my_domain_url
            ),
        );

        let clients = match Clients::connect(&config, creds).await {
            Ok(c) => c,
            Err(e) => {
                checks.fail("connection and binding", &e);
                return Ok(ExitCode::from(1));
            }
        };
        checks.ok(
            "Salesforce binding",
            format!(
                "signed in to org {}",
                clients.salesforce.org_id().await.unwrap_or_default()
            ),
        );
        checks.ok(
            "Zendesk binding",
            format!(
                "{} is subdomain {}",
                clients.zendesk.base_url(),
                binding.zendesk_subdomain().as_str()
            ),
        );
        salesforce_checks(&mut checks, &clients, &config, named.as_deref()).await;
        zendesk_checks(&mut checks, &clients).await;
        let (sf, zd) = clients.sent();
        println!("      API calls used: Salesforce {sf}, Zendesk {zd}");
        Ok(if checks.failed > 0 {
            println!("{} check(s) failed", checks.failed);
            ExitCode::from(1)
        } else if checks.unverified > 0 {
            println!(
                "no check failed; {} could not be verified with these credentials (WARN lines say how)",
                checks.unverified
            );
            ExitCode::from(3)
        } else {
            println!("all checks passed");
            ExitCode::SUCCESS
        })
    })
}

async fn salesforce_checks(
    checks: &mut Checks,
    clients: &Clients,
    config: &orglink_shared::contract::Config,
    named: Option<&str>,
) {
    let sf = &clients.salesforce;
    let count: Result<Vec<Value>, _> = sf
        .query_pages("SELECT COUNT() FROM Account".into(), false)
        .map_ok(|p| Value::from(p.total_size))
        .try_collect()
        .await;
    match count {
        Ok(pages) => checks.ok(
            "Salesforce accounts visible",
            format!(
                "{} (the integration user must see every account: give it View All on Account through the orglink permission set)",
                pages.first().cloned().unwrap_or(Value::Null)
            ),
        ),
        Err(e) => checks.fail("Salesforce accounts visible", e),
    }
    permission_checks(checks, clients, config, named).await;
    match sf.limits().await {
        Ok(d) => checks.ok(
            "Salesforce daily API allocation",
            format!("{} of {} used", d.used, d.limit),
        ),
        // `GET /limits` needs View Setup and Configuration; every response's
        // Sforce-Limit-Info header carries the same numbers.
        Err(e) => match sf.daily_usage() {
            Some(d) => checks.ok(
                "Salesforce daily API allocation",
                format!(
                    "{} of {} used (from the Sforce-Limit-Info header; /limits answered: {e})",
                    d.used, d.limit
                ),
            ),
            None => checks.fail("Salesforce daily API allocation", e),
        },
    }
}

/// Where the rights come from in a deployment (infra/salesforce/README.md).
const PERMISSION_SET_HINT: &str =
    "assign the Orglink_Integration permission set from infra/salesforce to the integration user";

/// The write-back fields' API names.
fn link_fields(config: &orglink_shared::contract::Config) -> Vec<&'static str> {
    config
        .write_back()
        .fields()
        .iter()
        .map(|f: &LinkField| f.api_name())
        .collect()
}

/// Edit on Account and the link fields, from describe; View All from the permission sets when
/// this session may read them. `named`: the user to check when it is not the signed-in one.
async fn permission_checks(
    checks: &mut Checks,
    clients: &Clients,
    config: &orglink_shared::contract::Config,
    named: Option<&str>,
) {
    let sf = &clients.salesforce;
    let signed_in = sf.user_id().await;
    let Some(user) = named.map(str::to_string).or_else(|| signed_in.clone()) else {
        checks.fail(
            "Salesforce integration user",
            format!(
                "the sign-in's identity URL names no user, so its permissions cannot be checked: name it with --integration-user (or {INTEGRATION_USER_ENV})"
            ),
        );
        return;
    };
    // Describe answers for the signed-in user only: it speaks for the integration user
    // unless an admin runs the check for it.
    let as_itself = signed_in
        .as_deref()
        .is_some_and(|s| access::same_user(s, &user));
    if !as_itself {
        println!(
            "      checking user {user}'s rights from its permission sets, signed in as {}",
            signed_in.as_deref().unwrap_or("an unnamed user")
        );
    }
    describe_checks(checks, clients, config, &user, as_itself).await;
    let access = match sf.user_access(&user).await {
        Ok(SetupAccess::Read(a)) => a,
        Ok(SetupAccess::Refused(r)) => {
            let what = if as_itself {
                "Salesforce sees every account"
            } else {
                "Salesforce integration user's permissions"
            };
            checks.warn(
                what,
                format!(
                    "cannot be verified from user {}: Salesforce refused its query of {} ({}), as it does for every user without View Setup and Configuration — which orglink's integration user neither has nor needs. To verify that user {user} has View All on Account (or View All Data), run `orglink config check --integration-user {user}` once with the Salesforce credentials (ORGLINK_SF_*) of a user who has View Setup and Configuration, such as an admin; or grant {user} View Setup and Configuration temporarily, run this again, and remove it",
                    signed_in.as_deref().unwrap_or(&user),
                    r.object,
                    r.code
                ),
            );
            return;
        }
        Err(e) => {
            checks.fail("Salesforce integration user's permissions", e);
            return;
        }
    };
    let sets: Vec<String> = access.sets.iter().map(|s| s.describe()).collect();
    println!(
        "      integration user {user}; assigned: {}",
        if sets.is_empty() {
            "nothing".to_string()
        } else {
            sets.join(", ")
        }
    );
    match access.sees_all_accounts() {
        Some(how) => checks.ok("Salesforce sees every account", how),
        None => checks.fail(
            "Salesforce sees every account",
            format!(
                "user {user} has neither View All on Account nor View All Data, so it sees only the accounts sharing gives it and orglink would miss the rest: {PERMISSION_SET_HINT} (it grants View All on Account)"
            ),
        ),
    }
    if as_itself {
        // Describe already answered for edit rights, as Salesforce enforces them.
        return;
    }
    match access.edits_accounts() {
        Some(how) => checks.ok("Salesforce may edit accounts", how),
        None => checks.fail(
            "Salesforce may edit accounts",
            format!("user {user} lacks Edit on Account: {PERMISSION_SET_HINT}"),
        ),
    }
    let mut editable = Vec::new();
    for name in link_fields(config) {
        match access.edits_field(name) {
            Some(how) => editable.push(format!("{name} ({how})")),
            None => checks.fail(
                &format!("Salesforce may edit {name}"),
                format!(
                    "user {user} may not edit Account.{name} (field-level security): give Edit on it through the Orglink_Integration permission set (infra/salesforce), or {PERMISSION_SET_HINT}"
                ),
            ),
        }
    }
    if !editable.is_empty() {
        checks.ok("Salesforce link fields editable", editable.join(", "));
    }
}

/// `describe` of Account: the link fields exist (for whoever is signed in), and when the
/// signed-in user is the integration user, it may edit accounts and each link field.
async fn describe_checks(
    checks: &mut Checks,
    clients: &Clients,
    config: &orglink_shared::contract::Config,
    user: &str,
    as_itself: bool,
) {
    let describe = match clients.salesforce.describe("Account").await {
        Ok(d) => d,
        Err(e) => {
            checks.fail("Salesforce Account describe", e);
            return;
        }
    };
    let fields = link_fields(config);
    let mut editable = Vec::new();
    let mut present = Vec::new();
    for name in &fields {
        match describe.field_access(name) {
            FieldAccess::Missing => checks.fail(
                &format!("Salesforce link field {name}"),
                format!(
                    "Account.{name} is not in Account's describe{}: it is not deployed, or field-level security hides it — deploy infra/salesforce (its fields and the Orglink_Integration permission set) and {PERMISSION_SET_HINT}",
                    if as_itself { format!(" for user {user}") } else { String::new() }
                ),
            ),
            FieldAccess::ReadOnly if as_itself => checks.fail(
                &format!("Salesforce may edit {name}"),
                format!(
                    "user {user} may read but not edit Account.{name} (field-level security): give Edit on it through the Orglink_Integration permission set (infra/salesforce), or {PERMISSION_SET_HINT}"
                ),
            ),
            FieldAccess::Editable if as_itself => editable.push(*name),
            FieldAccess::ReadOnly | FieldAccess::Editable => present.push(*name),
        }
    }
    if !as_itself {
        if !present.is_empty() {
            checks.ok("Salesforce link fields deployed", present.join(", "));
        }
        return;
    }
    if describe.updateable {
        checks.ok(
            "Salesforce may edit accounts",
            format!("user {user} (Account describe: updateable)"),
        );
    } else {
        checks.fail(
            "Salesforce may edit accounts",
            format!("user {user} lacks Edit on Account: {PERMISSION_SET_HINT}"),
        );
    }
    if !editable.is_empty() {
        checks.ok(
            "Salesforce link fields editable",
            format!(
                "{} (Account describe: updateable for user {user})",
                editable.join(", ")
            ),
        );
    }
}

/// The token's user may manage organizations: an admin, or an agent whose custom role allows
/// editing organizations (Enterprise).
async fn role_check(checks: &mut Checks, clients: &Clients) {
    const WHAT: &str = "Zendesk token's user may manage organizations";
    const FIX: &str = "use an API token sent with a Zendesk admin's e-mail (Admin Center > Apps and integrations > Zendesk API), or give the agent a custom role with organization editing and organization field management";
    let zd = &clients.zendesk;
    let me = match zd.current_user().await {
        Ok(me) => me,
        Err(e) => {
            checks.fail(WHAT, format!("cannot read users/me: {e}"));
            return;
        }
    };
    let who = me["email"].as_str().unwrap_or("?").to_string();
    match me["role"].as_str().unwrap_or("") {
        "admin" => checks.ok(WHAT, format!("{who} is an admin")),
        "agent" => match me["custom_role_id"].as_u64() {
            None => checks.fail(WHAT, format!("{who} is an agent without a custom role: {FIX}")),
            Some(role) => match zd.custom_role(role).await {
                Ok(r) if r["configuration"]["organization_editing"] == true => checks.ok(
                    WHAT,
                    format!(
                        "{who} is an agent whose custom role {:?} allows editing organizations",
                        r["name"].as_str().unwrap_or("?")
                    ),
                ),
                Ok(r) => checks.fail(
                    WHAT,
                    format!(
                        "{who} is an agent whose custom role {:?} does not allow editing organizations: {FIX}",
                        r["name"].as_str().unwrap_or("?")
                    ),
                ),
                Err(e) => checks.fail(
                    WHAT,
                    format!("{who} is an agent with custom role {role}, which cannot be read ({e}): {FIX}"),
                ),
            },
        },
        other => checks.fail(
            WHAT,
            format!(
                "{who} is a Zendesk {}: {FIX}",
                if other.is_empty() { "user without a role" } else { other }
            ),
        ),
    }
}

async fn zendesk_checks(checks: &mut Checks, clients: &Clients) {
    role_check(checks, clients).await;
    let zd = &clients.zendesk;
    let first = zd.list_pages(None);
    futures_util::pin_mut!(first);
    match first.try_next().await {
        Ok(page) => checks.ok(
            "Zendesk organizations readable",
            format!(
                "{} on the first page{}",
                page.as_ref().map_or(0, |p| p.organizations.len()),
                if page.is_some_and(|p| p.has_more) {
                    ", more follow"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => checks.fail("Zendesk organizations readable", e),
    }
    match zd.organization_fields().await {
        Ok(f) => checks.ok(
            "Zendesk organization fields (admin)",
            format!("{} defined", f.len()),
        ),
        Err(e) => checks.fail(
            "Zendesk organization fields (admin)",
            format!("{e} (the token's user must be a Zendesk admin)"),
        ),
    }
    match zd.webhooks().await {
        Ok(w) => checks.ok("Zendesk webhooks (admin)", format!("{} defined", w.len())),
        Err(e) => checks.fail(
            "Zendesk webhooks (admin)",
            format!("{e} (the token's user must be a Zendesk admin)"),
        ),
    }
}
