//! The Salesforce package in `infra/salesforce/` agrees with the Rust side.
//!
//! Its Apex tests run only in a Salesforce org; this test is what `make test` can check:
//! every metadata file is well-formed XML of the right type and API version, the four link
//! fields and the picklist match `contract.rs`, the permission set grants what orglink needs
//! and no more, and the Apex notifier signs and builds bodies exactly as intake verifies and
//! parses them (the shared vector, and regular expressions over the Apex source so a format
//! drift fails here).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use orglink_shared::contract::{EventKind, LinkField, SyncStatus};
use orglink_shared::credentials::Secret;
use orglink_shared::salesforce::DEFAULT_API_VERSION;
use orglink_shared::signature::{
    self, DEFAULT_TOLERANCE, SALESFORCE_EVENT_KINDS, SIGNATURE_HEADER, SigningSecrets,
};
use regex::Regex;
use roxmltree::{Document, Node};

const METADATA_NS: &str = "http://soap.sforce.com/2006/04/metadata";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn package() -> PathBuf {
    repo().join("infra/salesforce")
}

fn source() -> PathBuf {
    package().join("force-app/main/default")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(&package(), &mut files);
    files.sort();
    files
}

/// The metadata type each `-meta.xml` suffix must hold.
fn root_for(file_name: &str) -> Option<&'static str> {
    [
        (".field-meta.xml", "CustomField"),
        (".object-meta.xml", "CustomObject"),
        (".permissionset-meta.xml", "PermissionSet"),
        (".customPermission-meta.xml", "CustomPermission"),
        (".cls-meta.xml", "ApexClass"),
        (".trigger-meta.xml", "ApexTrigger"),
        (".externalCredential-meta.xml", "ExternalCredential"),
        (".namedCredential-meta.xml", "NamedCredential"),
        (".resource-meta.xml", "StaticResource"),
    ]
    .into_iter()
    .find(|(suffix, _)| file_name.ends_with(suffix))
    .map(|(_, root)| root)
}

fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a>(node: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn text<'a>(node: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

fn source_api_version() -> String {
    let project: serde_json::Value =
        serde_json::from_str(&read(&package().join("sfdx-project.json"))).unwrap();
    project["sourceApiVersion"]
        .as_str()
        .expect("sfdx-project.json has sourceApiVersion")
        .to_string()
}

#[test]
fn the_project_pins_the_clients_api_version() {
    // The notifier's Apex and orglink's REST client speak the same release.
    assert_eq!(
        format!("v{}", source_api_version()),
        DEFAULT_API_VERSION,
        "sfdx-project.json sourceApiVersion"
    );
}

#[test]
fn every_metadata_file_is_well_formed_and_of_its_type() {
    let api_version = source_api_version();
    let mut seen = 0;
    for path in all_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with("-meta.xml") {
            continue;
        }
        seen += 1;
        let expected = root_for(&name)
            .unwrap_or_else(|| panic!("{name}: unknown metadata type; add its root to root_for"));
        let xml = read(&path);
        let doc =
            Document::parse(&xml).unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), expected, "{name}: root element");
        assert_eq!(
            root.tag_name().namespace(),
            Some(METADATA_NS),
            "{name}: namespace"
        );
        if matches!(expected, "ApexClass" | "ApexTrigger") {
            assert_eq!(
                text(root, "apiVersion"),
                Some(api_version.as_str()),
                "{name}: apiVersion"
            );
            assert_eq!(text(root, "status"), Some("Active"), "{name}: status");
            // Each meta file sits beside its source, and the other way round.
            let source = path.with_file_name(name.trim_end_matches("-meta.xml"));
            assert!(source.exists(), "{name} has no {}", source.display());
        }
        if expected == "CustomField" {
            let stem = name.trim_end_matches(".field-meta.xml");
            assert_eq!(text(root, "fullName"), Some(stem), "{name}: fullName");
        }
    }
    assert!(seen >= 20, "only {seen} metadata files found");
    for path in all_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".cls") || name.ends_with(".trigger") || name.ends_with(".resource") {
            let meta = path.with_file_name(format!("{name}-meta.xml"));
            assert!(meta.exists(), "{name} has no {}", meta.display());
        }
    }
}

fn field(name: &str) -> String {
    read(&source().join(format!("objects/Account/fields/{name}.field-meta.xml")))
}

#[test]
fn the_four_link_fields_are_as_the_contract_says() {
    let mut found = BTreeSet::new();
    for entry in fs::read_dir(source().join("objects/Account/fields")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        found.insert(name.trim_end_matches(".field-meta.xml").to_string());
    }
    let expected: BTreeSet<String> = LinkField::ALL
        .iter()
        .map(|f| f.api_name().to_string())
        .collect();
    assert_eq!(
        found, expected,
        "the package adds exactly the four link fields to Account"
    );

    let xml = field("Zendesk_Org_ID__c");
    let f = Document::parse(&xml).unwrap();
    let f = f.root_element();
    assert_eq!(text(f, "type"), Some("Text"));
    assert_eq!(text(f, "length"), Some("30"));
    assert_eq!(text(f, "externalId"), Some("true"));
    assert_eq!(text(f, "unique"), Some("true"));
    assert_eq!(text(f, "caseSensitive"), Some("false"));

    let xml = field("Zendesk_Domain__c");
    let f = Document::parse(&xml).unwrap();
    let f = f.root_element();
    assert_eq!(text(f, "type"), Some("Text"));
    assert_eq!(text(f, "length"), Some("255"));

    let xml = field("Last_Zendesk_Sync_At__c");
    let f = Document::parse(&xml).unwrap();
    assert_eq!(text(f.root_element(), "type"), Some("DateTime"));
}

#[test]
fn the_sync_status_picklist_is_exactly_sync_status_all() {
    let xml = field("Zendesk_Sync_Status__c");
    let doc = Document::parse(&xml).unwrap();
    let f = doc.root_element();
    assert_eq!(text(f, "type"), Some("Picklist"));
    let value_set = child(f, "valueSet").expect("valueSet");
    assert_eq!(text(value_set, "restricted"), Some("true"));
    let definition = child(value_set, "valueSetDefinition").expect("valueSetDefinition");
    let values: Vec<(String, String, String)> = children(definition, "value")
        .map(|v| {
            (
                text(v, "fullName").unwrap().to_string(),
                text(v, "label").unwrap().to_string(),
                text(v, "default").unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = SyncStatus::all()
        .iter()
        .map(|s| (s.api_value().into(), s.label().into(), "false".into()))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn the_integration_permission_set_grants_what_orglink_needs_and_no_more() {
    let xml = read(&source().join("permissionsets/Orglink_Integration.permissionset-meta.xml"));
    let doc = Document::parse(&xml).unwrap();
    let ps = doc.root_element();

    let editable: BTreeSet<String> = children(ps, "fieldPermissions")
        .filter(|p| text(*p, "editable") == Some("true"))
        .map(|p| text(p, "field").unwrap().to_string())
        .collect();
    let four: BTreeSet<String> = LinkField::ALL
        .iter()
        .map(|f| format!("Account.{}", f.api_name()))
        .collect();
    assert_eq!(editable, four, "edit on exactly the four link fields");
    for p in children(ps, "fieldPermissions") {
        assert_eq!(text(p, "readable"), Some("true"), "{:?}", text(p, "field"));
    }

    let objects: BTreeMap<String, Node> = children(ps, "objectPermissions")
        .map(|o| (text(o, "object").unwrap().to_string(), o))
        .collect();
    let account = objects["Account"];
    assert_eq!(
        text(account, "viewAllRecords"),
        Some("true"),
        "View All on Account"
    );
    assert_eq!(text(account, "allowRead"), Some("true"));
    assert_eq!(
        text(account, "allowEdit"),
        Some("true"),
        "to write the link fields"
    );
    for never in ["allowCreate", "allowDelete", "modifyAllRecords"] {
        assert_eq!(text(account, never), Some("false"), "Account {never}");
    }
    let opportunity = objects["Opportunity"];
    assert_eq!(text(opportunity, "allowRead"), Some("true"));
    for never in [
        "allowCreate",
        "allowDelete",
        "allowEdit",
        "modifyAllRecords",
    ] {
        assert_eq!(
            text(opportunity, never),
            Some("false"),
            "Opportunity {never}"
        );
    }
    assert_eq!(objects.len(), 2, "no other objects");

    // The custom permission that keeps the notifier quiet for orglink's own writes exists and
    // is the one the Apex checks.
    let granted: Vec<&str> = children(ps, "customPermissions")
        .filter(|c| text(*c, "enabled") == Some("true"))
        .filter_map(|c| text(c, "name"))
        .collect();
    assert_eq!(granted, ["Orglink_Integration_User"]);
    assert!(
        source()
            .join("customPermissions/Orglink_Integration_User.customPermission-meta.xml")
            .exists()
    );
    let notifier = apex("classes/OrglinkNotifier.cls");
    assert!(
        notifier.contains("INTEGRATION_PERMISSION = 'Orglink_Integration_User'")
            && notifier.contains("FeatureManagement.checkPermission(INTEGRATION_PERMISSION)"),
        "the notifier checks the integration user's custom permission"
    );
}

#[test]
fn the_named_credential_uses_the_external_credential_the_notifier_is_granted() {
    let xml = read(&source().join("namedCredentials/Orglink_Intake.namedCredential-meta.xml"));
    let doc = Document::parse(&xml).unwrap();
    let nc = doc.root_element();
    assert_eq!(text(nc, "namedCredentialType"), Some("SecuredEndpoint"));
    let params: Vec<Node> = children(nc, "namedCredentialParameters").collect();
    let url = params
        .iter()
        .find(|p| text(**p, "parameterType") == Some("Url"))
        .and_then(|p| text(*p, "parameterValue"))
        .expect("a Url parameter");
    assert!(url.starts_with("https://"), "{url}");
    let external = params
        .iter()
        .find(|p| text(**p, "parameterType") == Some("Authentication"))
        .and_then(|p| text(*p, "externalCredential"))
        .expect("an Authentication parameter naming the external credential");

    let xml = read(&source().join(format!(
        "externalCredentials/{external}.externalCredential-meta.xml"
    )));
    let doc = Document::parse(&xml).unwrap();
    let principals: Vec<&str> = children(doc.root_element(), "externalCredentialParameters")
        .filter(|p| text(*p, "parameterType") == Some("NamedPrincipal"))
        .filter_map(|p| text(p, "parameterName"))
        .collect();
    assert_eq!(principals.len(), 1, "one named principal");

    let xml = read(&source().join("permissionsets/Orglink_Notifier.permissionset-meta.xml"));
    let doc = Document::parse(&xml).unwrap();
    let granted: Vec<&str> = children(doc.root_element(), "externalCredentialPrincipalAccesses")
        .filter(|a| text(*a, "enabled") == Some("true"))
        .filter_map(|a| text(a, "externalCredentialPrincipal"))
        .collect();
    assert_eq!(granted, [format!("{external}-{}", principals[0]).as_str()]);

    // The job calls through this named credential.
    let job = apex("classes/OrglinkIntakeJob.cls");
    assert!(job.contains("ENDPOINT = 'callout:Orglink_Intake'"));
}

// ---------------------------------------------------------------------------------------------
// The Apex signs and builds bodies as intake verifies and parses them
// ---------------------------------------------------------------------------------------------

fn apex(relative: &str) -> String {
    read(&source().join(relative))
}

struct Vector {
    secret: String,
    timestamp: i64,
    body: String,
    header: String,
}

fn vector_text() -> String {
    read(&repo().join("tests/vectors/intake_signature.json"))
}

fn vector() -> Vector {
    let v: serde_json::Value = serde_json::from_str(&vector_text()).unwrap();
    Vector {
        secret: v["secret"].as_str().unwrap().into(),
        timestamp: v["timestamp"].as_i64().unwrap(),
        body: v["body"].as_str().unwrap().into(),
        header: v["header"].as_str().unwrap().into(),
    }
}

#[test]
fn rust_reproduces_the_shared_vector() {
    let v = vector();
    let secret = Secret::new(v.secret.clone());
    assert_eq!(
        signature::sign(&secret, v.timestamp, v.body.as_bytes()),
        v.header
    );
    let verified = signature::verify(
        Some(&v.header),
        v.body.as_bytes(),
        v.timestamp + 10,
        &SigningSecrets::new(secret, None),
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    assert_eq!(verified.timestamp, v.timestamp);
    // The vector's body is one intake accepts.
    let batch = signature::parse_batch(v.body.as_bytes()).unwrap();
    assert_eq!(batch.org_id.as_str(), "00D5g000004XyZaEAK");
    assert_eq!(
        batch.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            EventKind::ClosedWon,
            EventKind::BecameCustomer,
            EventKind::DomainChanged
        ]
    );
}

#[test]
fn the_apex_test_reads_a_byte_for_byte_copy_of_the_vector() {
    let resource = source().join("staticresources/intake_signature_vector.resource");
    assert_eq!(
        read(&resource),
        vector_text(),
        "regenerate with: cp tests/vectors/intake_signature.json {}",
        resource.display()
    );
    let test = apex("classes/OrglinkIntakeSignerTest.cls");
    assert!(test.contains("WHERE Name = 'intake_signature_vector'"));
    assert!(test.contains("OrglinkIntakeSigner.sign(secret, timestamp, body)"));
    assert!(test.contains("OrglinkIntakeSigner.buildBody("));
}

#[test]
fn the_apex_signs_the_same_string_with_the_same_header_format() {
    let signer = apex("classes/OrglinkIntakeSigner.cls");
    let must = |pattern: &str, what: &str| {
        let re = Regex::new(pattern).unwrap();
        assert!(
            re.is_match(&signer),
            "OrglinkIntakeSigner.cls: {what} (/{pattern}/)"
        );
    };
    // The header name is intake's.
    must(
        &format!(
            r"HEADER_NAME\s*=\s*'{}'\s*;",
            regex::escape(SIGNATURE_HEADER)
        ),
        "the header name",
    );
    // HMAC-SHA256 over "<t>.<body>", key = the secret's UTF-8 bytes.
    must(
        r"String\s+signed\s*=\s*String\.valueOf\(\s*timestamp\s*\)\s*\+\s*'\.'\s*\+\s*body\s*;",
        "the signed string is <timestamp>.<body>",
    );
    must(
        r"Crypto\.generateMac\(\s*'hmacSHA256'\s*,\s*Blob\.valueOf\(\s*signed\s*\)\s*,\s*Blob\.valueOf\(\s*secret\s*\)\s*\)",
        "HMAC-SHA256 keyed with the secret",
    );
    // t=<t>,v1=<lowercase hex>.
    must(
        r"return\s+'t='\s*\+\s*String\.valueOf\(\s*timestamp\s*\)\s*\+\s*',v1='\s*\+\s*EncodingUtil\.convertToHex\(\s*mac\s*\)\s*;",
        "the header is t=<t>,v1=<hex>",
    );
    // Unix seconds, not milliseconds.
    must(
        r"Datetime\.now\(\)\.getTime\(\)\s*/\s*1000",
        "the timestamp is unix seconds",
    );
    // The job sends the body it signed, under that header.
    let job = apex("classes/OrglinkIntakeJob.cls");
    for pattern in [
        r"OrglinkIntakeSigner\.sign\(\s*secret\s*,\s*timestamp\s*,\s*body\s*\)",
        r"request\.setBody\(\s*body\s*\)",
        r"request\.setHeader\(\s*OrglinkIntakeSigner\.HEADER_NAME\s*,",
        r"Long\s+timestamp\s*=\s*OrglinkIntakeSigner\.unixNow\(\)",
    ] {
        assert!(
            Regex::new(pattern).unwrap().is_match(&job),
            "OrglinkIntakeJob.cls: /{pattern}/"
        );
    }
}

#[test]
fn the_apex_body_has_exactly_the_fields_intake_reads() {
    let signer = apex("classes/OrglinkIntakeSigner.cls");
    let written: BTreeSet<String> =
        Regex::new(r"gen\.write(?:StringField|FieldName)\(\s*'([a-z_]+)'")
            .unwrap()
            .captures_iter(&signer)
            .map(|c| c[1].to_string())
            .collect();
    let (batch, event) = signature::wire_fields();
    let expected: BTreeSet<String> = batch.iter().chain(event).map(|s| s.to_string()).collect();
    assert_eq!(written, expected);
    // Times are RFC 3339 in UTC, which parse_batch reads.
    assert!(signer.contains(r"formatGmt('yyyy-MM-dd\'T\'HH:mm:ss.SSS\'Z\'')"));
}

#[test]
fn the_notifier_sends_exactly_the_kinds_salesforce_may_send() {
    let notifier = apex("classes/OrglinkNotifier.cls");
    let declared: BTreeSet<String> =
        Regex::new(r"public static final String [A-Z_]+\s*=\s*'([a-z_]+)'\s*;")
            .unwrap()
            .captures_iter(&notifier)
            .map(|c| c[1].to_string())
            .collect();
    let expected: BTreeSet<String> = SALESFORCE_EVENT_KINDS
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(declared, expected);
    // And every one of them is used somewhere beyond its declaration.
    for kind in SALESFORCE_EVENT_KINDS {
        let constant = Regex::new(&format!(r"([A-Z_]+)\s*=\s*'{}'", kind.as_str()))
            .unwrap()
            .captures(&notifier)
            .unwrap()[1]
            .to_string();
        assert!(
            notifier.matches(&constant).count() >= 2,
            "{constant} ({kind}) is declared but never sent"
        );
    }
}

#[test]
fn retries_stay_within_what_a_finalizer_may_do() {
    let notifier = apex("classes/OrglinkNotifier.cls");
    let max_retries: u32 = Regex::new(r"MAX_RETRIES\s*=\s*(\d+)\s*;")
        .unwrap()
        .captures(&notifier)
        .expect("MAX_RETRIES")[1]
        .parse()
        .unwrap();
    // Reference: a finalizer may re-enqueue a failed Queueable at most 5 consecutive times.
    assert!(max_retries <= 5);
    let xml =
        read(&source().join("objects/Orglink_Settings__c/fields/Max_Attempts__c.field-meta.xml"));
    let doc = Document::parse(&xml).unwrap();
    let default: u32 = text(doc.root_element(), "defaultValue")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1 + max_retries).contains(&default));
    // The finalizer resends the same body (same event ids) and only after a failure.
    let retry = apex("classes/OrglinkIntakeRetry.cls");
    assert!(retry.contains("implements Finalizer"));
    assert!(retry.contains("ParentJobResult.SUCCESS"));
    assert!(retry.contains("new OrglinkIntakeJob(body, attempt + 1)"));
}

#[test]
fn the_triggers_never_let_an_error_reach_the_save() {
    let notifier = apex("classes/OrglinkNotifier.cls");
    // Each public entry point wraps its whole body in try/catch (Exception e).
    for entry in ["onAccounts", "onOpportunities", "requestSync"] {
        let start = notifier.find(&format!("static void {entry}(")).unwrap();
        let rest = &notifier[start..];
        let body_start = rest.find('{').unwrap();
        let after = rest[body_start + 1..].trim_start();
        assert!(
            after.starts_with("try {"),
            "{entry} does not start with try"
        );
        let next_entry = rest[body_start..].find("\n    }\n").unwrap();
        assert!(
            rest[..body_start + next_entry].contains("} catch (Exception e) {"),
            "{entry} does not catch every exception"
        );
    }
    for (file, call) in [
        (
            "triggers/OrglinkAccountNotifier.trigger",
            "OrglinkNotifier.onAccounts(",
        ),
        (
            "triggers/OrglinkOpportunityNotifier.trigger",
            "OrglinkNotifier.onOpportunities(",
        ),
    ] {
        let trigger = apex(file);
        assert!(trigger.contains("(after insert, after update)"), "{file}");
        assert!(trigger.contains(call), "{file}");
    }
}
