//! `orglink config check`: everything a deployment needs, checked from where the operator
//! stands, printing what it would use and never a secret.
//!
//! 1. the configuration parses and validates (every error names the key);
//! 2. the credentials have the secret's shape (environment or the deployment's secret);
//! 3. Salesforce: sign-in works and the org is the bound one; the integration user (named by
//!    the sign-in's identity URL) sees every account — View All on Account or View All Data,
//!    not a sharing-filtered subset — and may edit accounts and each of the four link fields,
//!    read from its permission set assignments, object and field permissions as a Salesforce
//!    admin tool reads them; it can read Account and the link fields;
//! 4. Zendesk: the subdomain is the bound one; the token's user (`users/me`) is an admin, or an
//!    agent whose custom role allows editing organizations; the token can read organizations
//!    and manage organization fields and webhooks (what `setup zendesk` and the worker need).
//!
//! Exit code 0 when every check passed, 1 when one failed (each failure says what to fix).

use std::process::ExitCode;

use futures_util::TryStreamExt;
use serde_json::Value;

use orglink_shared::contract::LinkField;
use orglink_shared::credentials::{SalesforceFlow, ZendeskCredentials};
use orglink_shared::salesforce::soql::Select;

use crate::context::{self, Clients, Common, CredentialsOrigin};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validates the configuration and credentials and checks both systems (read-only).
    #[command(after_help = "Examples:
  orglink config check
  orglink config check --config /etc/orglink/orglink.toml
  ORGLINK_SECRET_ID=orglink/credentials orglink config check   credentials from AWS

Exit codes: 0 every check passed, 1 a check failed, 2 the command could not run.")]
    Check {
        #[command(flatten)]
        common: Common,
    },
}

struct Checks {
    failed: usize,
}

impl Checks {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what}: {detail}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("FAIL  {what}: {detail}");
    }
}

pub fn run(command: ConfigCommand) -> ExitCode {
    let ConfigCommand::Check { common } = command;
    context::run(async move {
        let mut checks = Checks { failed: 0 };
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
        salesforce_checks(&mut checks, &clients, &config).await;
        zendesk_checks(&mut checks, &clients).await;
        let (sf, zd) = clients.sent();
        println!("      API calls used: Salesforce {sf}, Zendesk {zd}");
        Ok(if checks.failed == 0 {
            println!("all checks passed");
            ExitCode::SUCCESS
        } else {
            println!("{} check(s) failed", checks.failed);
            ExitCode::from(1)
        })
    })
}

async fn salesforce_checks(
    checks: &mut Checks,
    clients: &Clients,
    config: &orglink_shared::contract::Config,
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
    // Reading the link fields proves they are installed and readable by this user.
    let mut fields = vec!["Id".to_string()];
    fields.extend(
        config
            .write_back()
            .fields()
            .iter()
            .map(|f: &LinkField| f.api_name().to_string()),
    );
    match Select::new("Account", fields.clone()).limit(1).build() {
        Ok(soql) => match sf.query(soql).try_collect::<Vec<Value>>().await {
            Ok(_) => checks.ok("Salesforce link fields readable", fields[1..].join(", ")),
            Err(e) => checks.fail(
                "Salesforce link fields readable",
                format!("{e} (install infra/salesforce and assign the orglink permission set)"),
            ),
        },
        Err(e) => checks.fail("Salesforce link fields readable", e),
    }
    permission_checks(checks, clients, config).await;
    match sf.limits().await {
        Ok(d) => checks.ok(
            "Salesforce daily API allocation",
            format!("{} of {} used", d.used, d.limit),
        ),
        Err(e) => checks.fail("Salesforce daily API allocation", e),
    }
}

/// Where the rights come from in a deployment (infra/salesforce/README.md).
const PERMISSION_SET_HINT: &str =
    "assign the Orglink_Integration permission set from infra/salesforce to the integration user";

/// View All and edit rights, from the integration user's permission sets.
async fn permission_checks(
    checks: &mut Checks,
    clients: &Clients,
    config: &orglink_shared::contract::Config,
) {
    let sf = &clients.salesforce;
    let Some(user) = sf.user_id().await else {
        checks.fail(
            "Salesforce integration user",
            "the sign-in's identity URL names no user, so its permissions cannot be checked",
        );
        return;
    };
    let access = match sf.user_access(&user).await {
        Ok(a) => a,
        Err(e) => {
            checks.fail(
                "Salesforce integration user's permissions",
                format!(
                    "{e} (reading PermissionSetAssignment, ObjectPermissions and FieldPermissions needs View Setup and Configuration: grant it to user {user}, or check in Setup that it has View All on Account and Edit on the four link fields)"
                ),
            );
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
    match access.edits_accounts() {
        Some(how) => checks.ok("Salesforce may edit accounts", how),
        None => checks.fail(
            "Salesforce may edit accounts",
            format!("user {user} lacks Edit on Account: {PERMISSION_SET_HINT}"),
        ),
    }
    let mut editable = Vec::new();
    for field in config.write_back().fields() {
        let name = field.api_name();
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
