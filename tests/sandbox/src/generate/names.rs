//! Company identities (name and domain) unique by construction, and the messy forms a Website
//! field takes in real CRM data.
//!
//! An identity is a tuple of four words (`Northwind Bay Logistics GmbH`); its domain is the
//! first three joined by hyphens under the top-level domain that goes with the legal form
//! (`northwind-bay-logistics.de`). Distinct tuples give distinct names (case-insensitively: no
//! list repeats a word) and distinct domains (hyphens separate words that contain none, and
//! the form decides the TLD one to one), so two patterns can only meet where a pattern makes
//! them meet on purpose.

use super::rng::Rng;

const FIRST: &[&str] = &[
    "Northwind",
    "Blue",
    "Summit",
    "Cedar",
    "Harbor",
    "Granite",
    "Silver",
    "Pioneer",
    "Atlas",
    "Beacon",
    "Crescent",
    "Evergreen",
    "Falcon",
    "Frontier",
    "Golden",
    "Horizon",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Maple",
    "Meridian",
    "Nimbus",
    "Oakridge",
    "Orion",
    "Pinnacle",
    "Quantum",
    "Redwood",
    "Riverbend",
    "Sapphire",
    "Sierra",
    "Skyline",
    "Sterling",
    "Stonebridge",
    "Sunrise",
    "Tidewater",
    "Trident",
    "Union",
    "Vanguard",
    "Vertex",
    "Westfield",
    "Willow",
    "Zenith",
    "Apex",
    "Bright",
    "Copper",
    "Delta",
    "Echo",
];

const SECOND: &[&str] = &[
    "Arc", "Bay", "Bridge", "Brook", "Canyon", "Cliff", "Crest", "Dale", "Field", "Forge", "Gate",
    "Glen", "Grove", "Hill", "Hollow", "Isle", "Knoll", "Lane", "Leaf", "Light", "Line", "Marsh",
    "Mesa", "Mill", "Moor", "Park", "Path", "Peak", "Pine", "Point", "Port", "Ridge", "Rock",
    "Shore", "Spring", "Star", "Stone", "Stream", "Vale", "View", "Wave", "Way", "Wind", "Wood",
    "Yard", "Fox", "Lake", "Row",
];

const INDUSTRY: &[&str] = &[
    "Logistics",
    "Software",
    "Analytics",
    "Robotics",
    "Foods",
    "Pharma",
    "Energy",
    "Capital",
    "Labs",
    "Media",
    "Health",
    "Systems",
    "Dynamics",
    "Networks",
    "Materials",
    "Textiles",
    "Motors",
    "Aerospace",
    "Consulting",
    "Insurance",
    "Biotech",
    "Security",
    "Telecom",
    "Retail",
];

/// Legal form and the top-level domain that goes with it (one to one).
const FORMS: &[(&str, &str, &str)] = &[
    ("Inc", "com", "United States"),
    ("Corp", "io", "United States"),
    ("Co", "net", "United States"),
    ("LLC", "us", "United States"),
    ("Ltd", "co.uk", "United Kingdom"),
    ("PLC", "ie", "Ireland"),
    ("GmbH", "de", "Germany"),
    ("AG", "ch", "Switzerland"),
    ("SA", "fr", "France"),
    ("BV", "nl", "Netherlands"),
    ("NV", "be", "Belgium"),
    ("AB", "se", "Sweden"),
    ("Oy", "fi", "Finland"),
    ("AS", "no", "Norway"),
    ("ApS", "dk", "Denmark"),
    ("KK", "co.jp", "Japan"),
];

/// Identities before the generator starts adding a number to names.
const CAPACITY: u64 = (FIRST.len() * SECOND.len() * INDUSTRY.len() * FORMS.len()) as u64;

/// Walks the identity space in a scattered order: odd and not a multiple of 3, so it is
/// coprime with CAPACITY (2^15 * 3^3) and `i -> i * STRIDE mod CAPACITY` is a bijection.
const STRIDE: u64 = 1_000_003;

/// One company: a name and a domain no other identity shares.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    first: &'static str,
    second: &'static str,
    industry: &'static str,
    form: usize,
    /// 0 for the first CAPACITY identities, then 1, 2… appended as a number.
    round: u64,
}

/// Hands out identities, each once.
#[derive(Debug)]
pub(crate) struct Identities {
    next: u64,
    offset: u64,
}

impl Identities {
    pub(crate) fn new(rng: &mut Rng) -> Self {
        Identities {
            next: 0,
            offset: rng.below(CAPACITY),
        }
    }

    pub(crate) fn fresh(&mut self) -> Identity {
        let n = self.next;
        self.next += 1;
        let round = n / CAPACITY;
        let mut k = ((n % CAPACITY) * STRIDE + self.offset) % CAPACITY;
        let form = (k % FORMS.len() as u64) as usize;
        k /= FORMS.len() as u64;
        let industry = INDUSTRY[(k % INDUSTRY.len() as u64) as usize];
        k /= INDUSTRY.len() as u64;
        let second = SECOND[(k % SECOND.len() as u64) as usize];
        k /= SECOND.len() as u64;
        let first = FIRST[k as usize];
        Identity {
            first,
            second,
            industry,
            form,
            round,
        }
    }
}

impl Identity {
    /// `Northwind Bay Logistics GmbH` (`… GmbH 2` past the first CAPACITY identities).
    pub(crate) fn name(&self) -> String {
        let base = format!(
            "{} {} {} {}",
            self.first, self.second, self.industry, FORMS[self.form].0
        );
        if self.round == 0 {
            base
        } else {
            format!("{base} {}", self.round + 1)
        }
    }

    /// The first label of the domain: `northwind-bay-logistics`.
    pub(crate) fn label(&self) -> String {
        let base = format!("{}-{}-{}", self.first, self.second, self.industry).to_lowercase();
        if self.round == 0 {
            base
        } else {
            format!("{base}-{}", self.round + 1)
        }
    }

    pub(crate) fn tld(&self) -> &'static str {
        FORMS[self.form].1
    }

    pub(crate) fn country(&self) -> &'static str {
        FORMS[self.form].2
    }

    pub(crate) fn industry(&self) -> &'static str {
        self.industry
    }

    /// The company's registrable domain: `northwind-bay-logistics.de`.
    pub(crate) fn domain(&self) -> String {
        format!("{}.{}", self.label(), self.tld())
    }

    /// Another domain of the same company, `northwind-bay-logistics-group.de`: a word after
    /// the label keeps it apart from every identity's own domain (those have three words).
    pub(crate) fn domain_with(&self, word: &str) -> String {
        format!("{}-{word}.{}", self.label(), self.tld())
    }
}

/// A usable Website value in one of the messy forms people type, normalizing to `domain`
/// (each form is in `shared/data/website_cases.txt`'s table with its result).
pub(crate) fn messy_website(rng: &mut Rng, domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or(domain);
    let upper = domain.to_uppercase();
    match rng.below(20) {
        0 => format!("https://www.{domain}/"),
        1 => format!("http://{domain}"),
        2 => domain.to_string(),
        3 => format!("www.{domain}"),
        4 => format!("WWW.{upper}"),
        5 => format!("https://{domain}/contact?ref=crm"),
        6 => format!("{domain}:8080"),
        7 => format!("sales@{domain}"),
        8 => format!("mailto:info@{domain}"),
        9 => format!("https://shop.{domain}/en"),
        10 => format!("{domain}/about-us"),
        11 => format!("  {domain}  "),
        12 => format!("website: {domain}"),
        13 => format!("{domain} (main site)"),
        14 => format!("https://{domain}, linkedin.com/company/{label}"),
        15 => format!("http:{domain}"),
        16 => format!("<https://{domain}>"),
        17 => format!("{domain}."),
        18 => format!("HTTPS://WWW.{upper}"),
        _ => format!("https://www.{domain}"),
    }
}

/// Why a Website value gives no domain: the reason names of orglink's domain rules
/// (`UnusableReason::as_str`), spelled here independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    ConsumerMail,
    NotADomain,
    SocialProfile,
    SharedHosting,
    IpAddress,
    Localhost,
    ReservedName,
    UnknownTld,
    Ambiguous,
}

impl Unusable {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unusable::ConsumerMail => "consumer_mail",
            Unusable::NotADomain => "not_a_domain",
            Unusable::SocialProfile => "social_profile",
            Unusable::SharedHosting => "shared_hosting",
            Unusable::IpAddress => "ip_address",
            Unusable::Localhost => "localhost",
            Unusable::ReservedName => "reserved_name",
            Unusable::UnknownTld => "unknown_tld",
            Unusable::Ambiguous => "ambiguous",
        }
    }
}

const PEOPLE_FIRST: &[&str] = &[
    "Jane", "John", "Maria", "Liam", "Aiko", "Omar", "Sofia", "Lukas", "Priya", "Chen", "Elena",
    "Noah", "Fatima", "Mateo", "Ingrid", "Kwame", "Hana", "Diego", "Olga", "Samir",
];

const PEOPLE_LAST: &[&str] = &[
    "Doe", "Smith", "Garcia", "Muller", "Tanaka", "Haddad", "Rossi", "Novak", "Patel", "Wang",
    "Petrov", "Brown", "Khan", "Lopez", "Larsen", "Mensah", "Sato", "Silva", "Ivanova", "Nasser",
];

/// A person's first and last name.
pub(crate) fn person(rng: &mut Rng) -> (&'static str, &'static str) {
    (*rng.pick(PEOPLE_FIRST), *rng.pick(PEOPLE_LAST))
}

/// A Website holding a consumer mailbox or mail provider (`consumer_mail`).
pub(crate) fn consumer_mail_website(rng: &mut Rng, label: &str) -> String {
    let (first, last) = person(rng);
    let (first, last) = (first.to_lowercase(), last.to_lowercase());
    match rng.below(9) {
        0 => format!("{first}.{last}@gmail.com"),
        1 => "gmail.com".to_string(),
        2 => format!("{label}@hotmail.co.uk"),
        3 => format!("info.{label}@outlook.com"),
        4 => "yahoo.com".to_string(),
        5 => format!("{first}@icloud.com"),
        6 => format!("{first}@pm.me"),
        7 => format!("{first}.{last}@gmx.de"),
        _ => "mail.ru".to_string(),
    }
}

/// A Website on a platform shared by many companies that is not a private suffix in the
/// Public Suffix List, so it reduces to the platform (`shared_hosting`), and the platform
/// domain a legacy organization may carry.
pub(crate) fn shared_hosting_website(rng: &mut Rng, label: &str) -> (String, &'static str) {
    match rng.below(5) {
        0 => (format!("{label}.wordpress.com"), "wordpress.com"),
        1 => (format!("https://{label}.wordpress.com/"), "wordpress.com"),
        2 => (
            format!("https://sites.google.com/view/{label}"),
            "sites.google.com",
        ),
        3 => (format!("{label}.weebly.com"), "weebly.com"),
        _ => (
            format!("https://www.{label}.godaddysites.com"),
            "godaddysites.com",
        ),
    }
}

/// A Website that is not a company domain for some other reason.
pub(crate) fn junk_website(rng: &mut Rng, label: &str, name: &str) -> (String, Unusable) {
    match rng.below(17) {
        0 => ("n/a".into(), Unusable::NotADomain),
        1 => ("N/A".into(), Unusable::NotADomain),
        2 => ("TBD".into(), Unusable::NotADomain),
        3 => ("none".into(), Unusable::NotADomain),
        4 => (name.to_string(), Unusable::NotADomain),
        5 => (
            format!("linkedin.com/company/{label}"),
            Unusable::SocialProfile,
        ),
        6 => (
            format!("https://www.linkedin.com/company/{label}/"),
            Unusable::SocialProfile,
        ),
        7 => (format!("facebook.com/{label}"), Unusable::SocialProfile),
        8 => (format!("https://x.com/{label}"), Unusable::SocialProfile),
        9 => ("192.168.1.10".into(), Unusable::IpAddress),
        10 => ("http://192.168.1.10:8080".into(), Unusable::IpAddress),
        11 => ("http://localhost:3000".into(), Unusable::Localhost),
        12 => (format!("{label}.test"), Unusable::ReservedName),
        13 => (format!("www.{label}.example"), Unusable::ReservedName),
        14 => (format!("{label}.con"), Unusable::UnknownTld),
        15 => (format!("{label}.zzz"), Unusable::UnknownTld),
        // Two made-up domains of its own: `{label}.com` could be another identity's domain.
        _ => (
            format!("{label}-eu.com; {label}-us.com"),
            Unusable::Ambiguous,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identities_are_unique_by_name_and_domain_across_rounds() {
        let mut rng = Rng::new(3);
        let mut ids = Identities::new(&mut rng);
        // Start near the end of the first round so the test crosses into the second.
        ids.next = CAPACITY - 5_000;
        let mut names = HashSet::new();
        let mut domains = HashSet::new();
        for _ in 0..10_000 {
            let i = ids.fresh();
            assert!(names.insert(i.name().to_lowercase()), "{}", i.name());
            assert!(domains.insert(i.domain()), "{}", i.domain());
            assert!(!i.label().contains(char::is_uppercase));
        }
    }

    #[test]
    fn word_lists_hold_no_repeats_and_no_hyphens() {
        for list in [FIRST, SECOND, INDUSTRY] {
            let set: HashSet<String> = list.iter().map(|w| w.to_lowercase()).collect();
            assert_eq!(set.len(), list.len());
            assert!(
                list.iter()
                    .all(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
            );
        }
        let tlds: HashSet<&str> = FORMS.iter().map(|f| f.1).collect();
        assert_eq!(
            tlds.len(),
            FORMS.len(),
            "the form decides the TLD one to one"
        );
        // STRIDE is coprime with CAPACITY = 2^15 * 3^3, so striding is a bijection.
        const { assert!(STRIDE % 2 == 1 && !STRIDE.is_multiple_of(3)) };
        const { assert!(CAPACITY == (1 << 15) * 27) };
    }

    #[test]
    fn messy_websites_keep_the_domain_visible() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let w = messy_website(&mut rng, "cedar-bay-labs.co.uk");
            assert!(w.to_lowercase().contains("cedar-bay-labs.co.uk"), "{w}");
        }
    }
}
