//! Domains: website values normalized to a registrable domain, or a classified reason they
//! cannot be used.
//!
//! Website fields are messy (schemes, `www.`, paths, ports, e-mail addresses, profile links,
//! free-mail domains, plain words). [`DomainPolicy::check_website`] reduces a value to the
//! registrable domain under the Public Suffix List *including private suffixes* (so
//! `acme.herokuapp.com` stays itself instead of collapsing onto `herokuapp.com`), or says in
//! plain words why the value cannot be used and what an admin should do. The original value,
//! the host before reduction and the suffix type are kept as evidence.
//!
//! The curated consumer-mail, social-profile and shared-hosting lists are data in
//! `shared/data/`; a deployment extends or overrides them with a [`DomainPolicy`].
//! The rules are documented for admins in `docs/domains.md`; the test table is
//! `shared/data/website_cases.txt`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// What an admin does about almost every unusable value.
const REMEDY: &str = "put the company's own website in Website or Zendesk_Domain__c";

/// Longest host DNS allows (RFC 1035), and longest label.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Quoted inputs are cut to this many characters in reasons, so a pasted paragraph does not
/// become a paragraph-long reason.
const QUOTE_LEN: usize = 60;

/// Schemes written as `scheme:` without `//` that we still recognise (`mailto:x@acme.com`,
/// the common typo `http:acme.com`).
const KNOWN_SCHEMES: &[&str] = &[
    "http", "https", "ftp", "ftps", "sftp", "ws", "wss", "mailto",
];

/// Top-level names reserved for tests, documentation, local networks or special use
/// (RFC 2606, RFC 6761, RFC 6762, RFC 8375, RFC 9476, and the de facto private ones): never a
/// company's public website.
const RESERVED_TLDS: &[&str] = &[
    "test",
    "example",
    "invalid",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "private",
    "alt",
    "onion",
    "arpa",
];

/// Second-level names reserved for documentation (RFC 2606).
const RESERVED_DOMAINS: &[&str] = &["example.com", "example.net", "example.org"];

// ---------------------------------------------------------------------------------------------
// Domain
// ---------------------------------------------------------------------------------------------

/// A registrable domain (eTLD+1 under the Public Suffix List, private suffixes included),
/// lowercase, ASCII (IDN in punycode). It can hold nothing else: no `www.` or other subdomain
/// of a registrable domain, no IP address, no reserved or unknown top-level domain.
///
/// Built by [`Domain::parse`] (reviewed values, default policy), by
/// [`DomainPolicy::check_website`] / [`DomainPolicy::parse_domain`] (configured policy), or by
/// deserializing (see the `Deserialize` impl for what that checks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a value that should already be a domain (a reviewed `Zendesk_Domain__c`, a
    /// configured domain). It goes through the same normalizer as a Website value under the
    /// default policy: `acme.com`, `https://www.Acme.com/` and `sales@acme.com` all give
    /// `acme.com`; `gmail.com`, `linkedin.com/company/acme`, `10.0.0.1` or `n/a` are refused with
    /// the reason. Use [`DomainPolicy::parse_domain`] when a deployment's overrides apply.
    pub fn parse(input: &str) -> Result<Domain, DomainError> {
        DomainPolicy::default().parse_domain(input)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain as people read it (`bücher.de` for `xn--bcher-kva.de`), for reports only:
    /// comparisons and storage use [`Domain::as_str`].
    pub fn to_unicode(&self) -> String {
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        if result.is_ok() {
            unicode
        } else {
            self.0.clone()
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Deserializing runs the normalizer too, so a stored or configured value can never smuggle in
/// `www.acme.com`, an IP or a reserved name. It checks the structural rules only, not the
/// consumer / social / shared-hosting lists: a stored domain may have been accepted under a
/// deployment's `allow` override (which this impl cannot see), and a list update must not make
/// existing link records unreadable. Policy checks belong where a value enters the system.
impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        normalize(&raw, Lists::Skip)
            .outcome
            .map_err(|unusable| serde::de::Error::custom(DomainError(unusable)))
    }
}

/// Why a value cannot be a [`Domain`]. The message is the plain-words reason with what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", .0.detail)]
pub struct DomainError(Unusable);

impl DomainError {
    pub fn reason(&self) -> UnusableReason {
        self.0.reason
    }

    pub fn unusable(&self) -> &Unusable {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Check results
// ---------------------------------------------------------------------------------------------

/// Which part of the Public Suffix List the domain's suffix comes from. `Private` means a
/// platform (e.g. `herokuapp.com`) registered its customers' subdomains as separate domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuffixType {
    Icann,
    Private,
}

impl SuffixType {
    pub fn as_str(self) -> &'static str {
        match self {
            SuffixType::Icann => "icann",
            SuffixType::Private => "private",
        }
    }
}

/// Why a website value cannot give a domain. The serde name is stable (it is stored and
/// reported); `Display` is the short plain-words form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnusableReason {
    /// Nothing in the field.
    Empty,
    /// Words, a single label, a bare public suffix, or something that does not parse as a host.
    NotADomain,
    /// Several different domains in one field: orglink will not guess which one is the company.
    Ambiguous,
    /// A mailbox provider such as gmail.com.
    ConsumerMail,
    /// A social network, profile or directory page (linkedin.com/company/acme).
    SocialProfile,
    /// A platform or provider shared by many companies (wordpress.com, herokuapp.com itself).
    SharedHosting,
    IpAddress,
    Localhost,
    /// A name reserved for tests, documentation or local networks (.test, .example, .local).
    ReservedName,
    /// A top-level domain not in the Public Suffix List (typo or made up: acme.con).
    UnknownTld,
}

impl UnusableReason {
    pub const ALL: [UnusableReason; 10] = [
        UnusableReason::Empty,
        UnusableReason::NotADomain,
        UnusableReason::Ambiguous,
        UnusableReason::ConsumerMail,
        UnusableReason::SocialProfile,
        UnusableReason::SharedHosting,
        UnusableReason::IpAddress,
        UnusableReason::Localhost,
        UnusableReason::ReservedName,
        UnusableReason::UnknownTld,
    ];

    /// The stable machine name (same as serde).
    pub fn as_str(self) -> &'static str {
        match self {
            UnusableReason::Empty => "empty",
            UnusableReason::NotADomain => "not_a_domain",
            UnusableReason::Ambiguous => "ambiguous",
            UnusableReason::ConsumerMail => "consumer_mail",
            UnusableReason::SocialProfile => "social_profile",
            UnusableReason::SharedHosting => "shared_hosting",
            UnusableReason::IpAddress => "ip_address",
            UnusableReason::Localhost => "localhost",
            UnusableReason::ReservedName => "reserved_name",
            UnusableReason::UnknownTld => "unknown_tld",
        }
    }
}

impl fmt::Display for UnusableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnusableReason::Empty => "no website given",
            UnusableReason::NotADomain => "not a website or domain",
            UnusableReason::Ambiguous => "several different domains",
            UnusableReason::ConsumerMail => "consumer mail provider",
            UnusableReason::SocialProfile => "social or directory profile",
            UnusableReason::SharedHosting => "shared hosting or shared domain",
            UnusableReason::IpAddress => "IP address",
            UnusableReason::Localhost => "localhost",
            UnusableReason::ReservedName => "reserved name",
            UnusableReason::UnknownTld => "unknown top-level domain",
        })
    }
}

/// A classified reason plus the sentence an admin acts on, e.g. "gmail.com is a consumer mail
/// provider: put the company's own website in Website or Zendesk_Domain__c".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unusable {
    pub reason: UnusableReason,
    pub detail: String,
}

impl Unusable {
    fn new(reason: UnusableReason, detail: String) -> Self {
        Unusable { reason, detail }
    }
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// What orglink makes of one website value, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteCheck {
    /// The value exactly as given.
    pub input: String,
    /// The host the domain came from, before reduction (`www.acme.co.uk`), lowercase ASCII;
    /// `None` when no host could be read.
    pub host: Option<String>,
    /// The Public Suffix List section of the host's suffix, when it is in the list.
    pub suffix_type: Option<SuffixType>,
    pub outcome: Result<Domain, Unusable>,
}

impl WebsiteCheck {
    pub fn domain(&self) -> Option<&Domain> {
        self.outcome.as_ref().ok()
    }

    pub fn unusable(&self) -> Option<&Unusable> {
        self.outcome.as_ref().err()
    }
}

/// Serialized flat, as reports and evidence want it:
/// `{"input", "host", "domain", "suffix_type", "reason", "detail"}` with `null`s.
impl Serialize for WebsiteCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'a> {
            input: &'a str,
            host: Option<&'a str>,
            domain: Option<&'a str>,
            suffix_type: Option<SuffixType>,
            reason: Option<UnusableReason>,
            detail: Option<&'a str>,
        }
        Flat {
            input: &self.input,
            host: self.host.as_deref(),
            domain: self.domain().map(Domain::as_str),
            suffix_type: self.suffix_type,
            reason: self.unusable().map(|u| u.reason),
            detail: self.unusable().map(|u| u.detail.as_str()),
        }
        .serialize(serializer)
    }
}

// ---------------------------------------------------------------------------------------------
// Policy and lists
// ---------------------------------------------------------------------------------------------

/// One entry of a domain list: a host (covering its subdomains) or `name.*` (that name under
/// any ICANN suffix: `yahoo.*` covers `yahoo.com` and `yahoo.co.uk`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    Host(String),
    AnySuffix(String),
}

/// Why a list entry (curated or configured) is not a usable pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainPatternError {
    #[error("{0:?} is not a domain name: write it like acme.com, or name.* for every suffix")]
    NotADomain(String),
    #[error(
        "{0:?} is a public suffix (like .com or .co.uk), which would cover every company under it; list a domain instead"
    )]
    PublicSuffix(String),
    #[error("{0:?} ends in a top-level domain that is not in the Public Suffix List")]
    UnknownTld(String),
}

impl DomainPattern {
    pub fn parse(input: &str) -> Result<Self, DomainPatternError> {
        let trimmed = input.trim().trim_end_matches('.').to_lowercase();
        if let Some(name) = trimmed.strip_suffix(".*") {
            return if valid_label(name) {
                Ok(DomainPattern::AnySuffix(name.to_owned()))
            } else {
                Err(DomainPatternError::NotADomain(input.to_owned()))
            };
        }
        let host = idna::domain_to_ascii(&trimmed)
            .ok()
            .filter(|h| valid_host(h) && h.contains('.'))
            .ok_or_else(|| DomainPatternError::NotADomain(input.to_owned()))?;
        let suffix = psl::suffix(host.as_bytes())
            .ok_or_else(|| DomainPatternError::NotADomain(input.to_owned()))?;
        match suffix.typ() {
            None => Err(DomainPatternError::UnknownTld(input.to_owned())),
            // A bare ICANN suffix would swallow a whole country; a private one (a platform such
            // as herokuapp.com) is a legitimate "treat all of it as shared" override.
            Some(psl::Type::Icann) if suffix.as_bytes().len() == host.len() => {
                Err(DomainPatternError::PublicSuffix(input.to_owned()))
            }
            Some(_) => Ok(DomainPattern::Host(host)),
        }
    }

    /// Whether this entry covers `host`, whose registrable domain is `registrable` with the
    /// ICANN suffix `icann_suffix` (`None` when the suffix is private).
    fn matches(&self, host: &str, registrable: &str, icann_suffix: Option<&str>) -> bool {
        match self {
            DomainPattern::Host(entry) => within(host, entry),
            DomainPattern::AnySuffix(name) => icann_suffix.is_some_and(|suffix| {
                registrable
                    .strip_suffix(suffix)
                    .and_then(|rest| rest.strip_suffix('.'))
                    == Some(name.as_str())
            }),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Host(host) => f.write_str(host),
            DomainPattern::AnySuffix(name) => write!(f, "{name}.*"),
        }
    }
}

impl FromStr for DomainPattern {
    type Err = DomainPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DomainPattern::parse(s)
    }
}

impl Serialize for DomainPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DomainPattern::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A deployment's overrides of the curated lists (the `[domains]` part of the configuration).
/// The curated lists always apply; these add to them, and `allow` wins over all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainPolicy {
    /// More consumer mail providers (a regional free-mail or ISP mailbox domain).
    pub extra_consumer: Vec<DomainPattern>,
    /// More shared domains (a site builder, a reseller's hosting, a parent group's domain that
    /// many accounts use): never linked.
    pub extra_shared: Vec<DomainPattern>,
    /// Domains that are some company's real domain although a list holds them (the account
    /// that really is yahoo.com). Matched against the registrable domain.
    pub allow: Vec<DomainPattern>,
}

/// The curated lists shipped with orglink, parsed once.
struct Curated {
    consumer: Vec<DomainPattern>,
    social: Vec<DomainPattern>,
    shared: Vec<DomainPattern>,
}

fn parse_list(name: &str, text: &str) -> Vec<DomainPattern> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            // The data files are compiled in and every entry is checked by the tests, so a bad
            // line is a build defect, not an input error.
            DomainPattern::parse(line)
                .unwrap_or_else(|e| panic!("curated list {name} holds a bad entry: {e}"))
        })
        .collect()
}

static CURATED: LazyLock<Curated> = LazyLock::new(|| Curated {
    consumer: parse_list(
        "consumer_mail.txt",
        include_str!("../data/consumer_mail.txt"),
    ),
    social: parse_list(
        "social_profiles.txt",
        include_str!("../data/social_profiles.txt"),
    ),
    shared: parse_list(
        "shared_hosting.txt",
        include_str!("../data/shared_hosting.txt"),
    ),
});

/// Whether the curated and configured lists are consulted (a new value) or only the structural
/// rules (a stored value being read back).
#[derive(Clone, Copy)]
enum Lists<'a> {
    Apply(&'a DomainPolicy),
    Skip,
}

impl DomainPolicy {
    /// What orglink makes of a website value: the registrable domain, or why it cannot be used.
    /// Pure and total: any string gives an answer.
    pub fn check_website(&self, input: &str) -> WebsiteCheck {
        normalize(input, Lists::Apply(self))
    }

    /// [`Domain::parse`] under this policy's overrides.
    pub fn parse_domain(&self, input: &str) -> Result<Domain, DomainError> {
        self.check_website(input).outcome.map_err(DomainError)
    }

    /// The list verdict for a host that passed the structural rules, if any list holds it.
    fn classify(
        &self,
        host: &str,
        registrable: &str,
        icann_suffix: Option<&str>,
    ) -> Option<Unusable> {
        let hit = |list: &[DomainPattern]| -> Option<String> {
            list.iter()
                .find(|p| p.matches(host, registrable, icann_suffix))
                .map(|p| match p {
                    // Name the entry when it is narrower than the domain (sites.google.com).
                    DomainPattern::Host(entry) if entry.len() > registrable.len() => entry.clone(),
                    _ => registrable.to_owned(),
                })
        };
        if hit(&self.allow).is_some() {
            return None;
        }
        let curated = &*CURATED;
        if let Some(name) = hit(&curated.consumer).or_else(|| hit(&self.extra_consumer)) {
            return Some(Unusable::new(
                UnusableReason::ConsumerMail,
                format!("{name} is a consumer mail provider: {REMEDY}"),
            ));
        }
        if let Some(name) = hit(&curated.social) {
            return Some(Unusable::new(
                UnusableReason::SocialProfile,
                format!(
                    "{name} is a social or directory profile, not the company's own site: {REMEDY}"
                ),
            ));
        }
        if let Some(name) = hit(&curated.shared).or_else(|| hit(&self.extra_shared)) {
            return Some(shared_hosting(&name));
        }
        None
    }
}

fn shared_hosting(name: &str) -> Unusable {
    Unusable::new(
        UnusableReason::SharedHosting,
        format!("{name} is shared by many companies (a hosting platform or provider): {REMEDY}"),
    )
}

// ---------------------------------------------------------------------------------------------
// The normalizer
// ---------------------------------------------------------------------------------------------

/// The verdict on one candidate value inside a field.
struct Examined {
    host: Option<String>,
    suffix_type: Option<SuffixType>,
    outcome: Result<Domain, Unusable>,
}

impl Examined {
    fn unusable(host: Option<String>, reason: UnusableReason, detail: String) -> Self {
        Examined {
            host,
            suffix_type: None,
            outcome: Err(Unusable::new(reason, detail)),
        }
    }
}

fn normalize(input: &str, lists: Lists<'_>) -> WebsiteCheck {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return WebsiteCheck {
            input: input.to_owned(),
            host: None,
            suffix_type: None,
            outcome: Err(Unusable::new(
                UnusableReason::Empty,
                format!("the value is empty: {REMEDY}"),
            )),
        };
    }

    // A field can hold several values ("acme.com; acme.io", "site: acme.com"): words without a
    // dot are labels around the value, anything host-like is a candidate.
    let examined: Vec<Examined> = trimmed
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|'))
        .map(strip_wrapping)
        .filter(|token| is_candidate(token))
        .map(|token| examine(token, lists))
        .collect();

    let mut usable: Vec<&Examined> = Vec::new();
    for e in &examined {
        if let Ok(d) = &e.outcome
            && !usable.iter().any(|u| u.outcome.as_ref().ok() == Some(d))
        {
            usable.push(e);
        }
    }

    let chosen = match usable.as_slice() {
        [one] => Examined {
            host: one.host.clone(),
            suffix_type: one.suffix_type,
            outcome: one.outcome.clone(),
        },
        [] => match examined
            .iter()
            .find(|e| {
                e.outcome
                    .as_ref()
                    .is_err_and(|u| u.reason != UnusableReason::NotADomain)
            })
            .or_else(|| examined.first())
        {
            Some(e) => Examined {
                host: e.host.clone(),
                suffix_type: e.suffix_type,
                outcome: e.outcome.clone(),
            },
            None => Examined::unusable(
                None,
                UnusableReason::NotADomain,
                format!("{} is not a website or domain: {REMEDY}", quote(trimmed)),
            ),
        },
        several => {
            let names: Vec<&str> = several
                .iter()
                .filter_map(|e| e.outcome.as_ref().ok().map(Domain::as_str))
                .collect();
            let shown = if names.len() > 4 {
                format!("{}, and {} more", names[..4].join(", "), names.len() - 4)
            } else {
                names.join(", ")
            };
            Examined::unusable(
                None,
                UnusableReason::Ambiguous,
                format!(
                    "the value holds several different domains ({shown}): keep only the company's \
                     website in Website, or put the right domain in Zendesk_Domain__c"
                ),
            )
        }
    };

    WebsiteCheck {
        input: input.to_owned(),
        host: chosen.host,
        suffix_type: chosen.suffix_type,
        outcome: chosen.outcome,
    }
}

/// Quotes, brackets and sentence punctuation around a value are not part of it.
fn strip_wrapping(token: &str) -> &str {
    token
        .trim_start_matches(['"', '\'', '<', '(', '{', '`'])
        .trim_end_matches(['"', '\'', '>', ')', '}', '`', '.', ',', ';', ':', '!', '?'])
}

fn is_candidate(token: &str) -> bool {
    !token.is_empty()
        && (token.contains(['.', ':', '@', '/', '\\'])
            || token.eq_ignore_ascii_case("localhost")
            || token.parse::<IpAddr>().is_ok())
}

/// Reads the host out of one candidate value and judges it.
fn examine(token: &str, lists: Lists<'_>) -> Examined {
    let lower = token.to_lowercase();
    let not_a_domain = || {
        Examined::unusable(
            None,
            UnusableReason::NotADomain,
            format!("{} is not a website or domain: {REMEDY}", quote(token)),
        )
    };

    // Drop the scheme: `https://`, `//`, `mailto:`, a typo such as `http:acme.com`, or any
    // `whatever://` (the host is what matters).
    let rest = if let Some((_, after)) = lower.split_once("://") {
        after
    } else if let Some(after) = lower.strip_prefix("//") {
        after
    } else {
        match lower.split_once(':') {
            Some((scheme, after)) if KNOWN_SCHEMES.contains(&scheme) => {
                after.trim_start_matches(['/', '\\'])
            }
            _ => lower.as_str(),
        }
    };

    // A bare IPv6 address (`2001:db8::1`) is not valid inside a URL without brackets.
    if let Ok(ip) = rest.trim_end_matches('/').parse::<IpAddr>() {
        return ip_address(ip);
    }

    let Ok(url) = url::Url::parse(&format!("http://{rest}")) else {
        return not_a_domain();
    };
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.trim_end_matches('.').to_owned(),
        Some(url::Host::Ipv6(ip)) => return ip_address(IpAddr::V6(ip)),
        Some(url::Host::Ipv4(ip)) => {
            // WHATWG URL parsing reads "1.5" or "0x7f.1" as IPv4; only a dotted quad as typed
            // is an IP address to a person, anything else is just not a domain.
            let typed = authority_host(rest);
            return if typed.parse::<Ipv4Addr>().is_ok() {
                ip_address(IpAddr::V4(ip))
            } else {
                not_a_domain()
            };
        }
        None => return not_a_domain(),
    };
    judge_host(token, host, lists)
}

/// The host part as typed: after any userinfo, before port, path, query or fragment.
fn authority_host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.split(':').next().unwrap_or_default()
}

fn ip_address(ip: IpAddr) -> Examined {
    Examined::unusable(
        Some(ip.to_string()),
        UnusableReason::IpAddress,
        format!("{ip} is an IP address, not a domain: {REMEDY}"),
    )
}

/// Applies the structural rules, the Public Suffix List and the lists to a lowercase ASCII host
/// read from `token` (quoted in reasons where the host alone would not make sense).
fn judge_host(token: &str, host: String, lists: Lists<'_>) -> Examined {
    if !valid_host(&host) {
        return Examined::unusable(
            None,
            UnusableReason::NotADomain,
            format!("{} is not a valid domain name: {REMEDY}", quote(token)),
        );
    }
    let tld = host.rsplit('.').next().unwrap_or_default();
    if tld == "localhost" {
        return Examined::unusable(
            Some(host),
            UnusableReason::Localhost,
            format!("localhost is the computer itself, not a website: {REMEDY}"),
        );
    }
    if !host.contains('.') {
        return Examined::unusable(
            None,
            UnusableReason::NotADomain,
            format!(
                "{} is not a website or domain (a domain looks like acme.com): {REMEDY}",
                quote(token)
            ),
        );
    }
    if RESERVED_TLDS.contains(&tld) {
        return Examined::unusable(
            Some(host.clone()),
            UnusableReason::ReservedName,
            format!(
                "{host} ends in .{tld}, which is reserved for tests, examples or private networks \
                 and is never a public website: {REMEDY}"
            ),
        );
    }
    if let Some(reserved) = RESERVED_DOMAINS.iter().find(|r| within(&host, r)) {
        return Examined::unusable(
            Some(host.clone()),
            UnusableReason::ReservedName,
            format!("{reserved} is reserved for documentation examples: {REMEDY}"),
        );
    }

    let Some(suffix) = psl::suffix(host.as_bytes()) else {
        return Examined::unusable(
            Some(host.clone()),
            UnusableReason::NotADomain,
            format!("{} is not a domain: {REMEDY}", quote(&host)),
        );
    };
    let suffix_str = String::from_utf8_lossy(suffix.as_bytes()).into_owned();
    let suffix_type = match suffix.typ() {
        Some(psl::Type::Icann) => SuffixType::Icann,
        Some(psl::Type::Private) => SuffixType::Private,
        None => {
            return Examined::unusable(
                Some(host.clone()),
                UnusableReason::UnknownTld,
                format!(
                    "{host} ends in .{suffix_str}, which is not a known top-level domain (it is not \
                     in the Public Suffix List): check the spelling, or {REMEDY}"
                ),
            );
        }
    };
    let registrable = match psl::domain(host.as_bytes()) {
        Some(d) => String::from_utf8_lossy(d.as_bytes()).into_owned(),
        None => {
            // The host is itself a public suffix.
            let unusable = match suffix_type {
                SuffixType::Private => shared_hosting(&host),
                SuffixType::Icann => Unusable::new(
                    UnusableReason::NotADomain,
                    format!(
                        "{host} is a public suffix, shared by every domain under it, not a \
                         company's domain: {REMEDY}"
                    ),
                ),
            };
            return Examined {
                host: Some(host),
                suffix_type: Some(suffix_type),
                outcome: Err(unusable),
            };
        }
    };

    if let Lists::Apply(policy) = lists {
        let icann_suffix = (suffix_type == SuffixType::Icann).then_some(suffix_str.as_str());
        if let Some(unusable) = policy.classify(&host, &registrable, icann_suffix) {
            return Examined {
                host: Some(host),
                suffix_type: Some(suffix_type),
                outcome: Err(unusable),
            };
        }
    }
    Examined {
        host: Some(host),
        suffix_type: Some(suffix_type),
        outcome: Ok(Domain(registrable)),
    }
}

/// Whether `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

/// A DNS host name: labels of letters, digits and inner hyphens, within DNS length limits.
fn valid_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= MAX_HOST_LEN && host.split('.').all(valid_label)
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `"value"`, cut short when long.
fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(QUOTE_LEN).collect();
    if chars.next().is_some() {
        format!("{:?}", format!("{head}…"))
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests;
