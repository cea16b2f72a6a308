//! The canary-secret scan (issue 10, "Security"): the demo runs with secret values generated for
//! the run, then searches everything its components logged or printed for them. A secret can
//! leak as itself or base64-encoded inside a longer value (the `email/token:SECRET` of a Zendesk
//! Basic auth header, a `client_id:client_secret` pair), where it sits at any of three byte
//! alignments; so each alignment's stable middle part is searched too.
//!
//! Pure: no I/O; the caller reads the files.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// One secret value planted for the run, with what it stands for.
#[derive(Clone)]
pub struct Canary {
    pub name: &'static str,
    pub value: String,
    /// A PEM key: searched for by the lines of its body, not as one string (a log would carry
    /// it with its line breaks escaped, or a part of it).
    pem: bool,
}

/// Body lines of a PEM key shorter than this (its last one) are not searched for on their own:
/// too short to rule out a match by chance.
const MIN_PEM_LINE: usize = 40;

impl Canary {
    /// `canary-<name>-<32 hex digits>`: unique per run, recognisable in a log, and made of
    /// characters no URL, form or JSON encoding changes.
    pub fn new(name: &'static str, random: u128) -> Canary {
        Canary {
            name,
            value: format!("canary-{name}-{random:032x}"),
            pem: false,
        }
    }

    /// A private key generated for the run, in PEM form.
    pub fn pem(name: &'static str, pem: String) -> Canary {
        Canary {
            name,
            value: pem,
            pem: true,
        }
    }

    /// What to search for: each body line of a PEM key (64 base64 characters of random key
    /// material) and its base64 forms, or the value and its base64 forms.
    fn needles(&self) -> Vec<String> {
        if !self.pem {
            return forms(&self.value);
        }
        let mut out: Vec<String> = Vec::new();
        for line in self.value.lines().map(str::trim) {
            if line.len() >= MIN_PEM_LINE && !line.starts_with("-----") {
                for f in forms(line) {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
        out
    }
}

// Debug must not show the value: a hit report names the canary, never repeats it.
impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Canary({})", self.name)
    }
}

/// The strings a canary can show up as: itself, and its base64 forms (standard and URL-safe)
/// at each byte alignment, trimmed to the characters that depend on the canary's bytes alone.
pub fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let len = value.len();
    for shift in 0..3usize {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(value.as_bytes());
        // Character i encodes bits [6i, 6i+6); the canary holds bits [8*shift, 8*(shift+len)).
        let start = (8 * shift).div_ceil(6);
        let end = (8 * (shift + len)) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if let Some(middle) = encoded.get(start..end)
                && !out.iter().any(|f| f == middle)
            {
                out.push(middle.to_string());
            }
        }
    }
    out
}

/// Where a canary was found: the source (a file), the line number (1-based) and which canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub source: String,
    pub line: usize,
    pub canary: &'static str,
}

/// What a scan saw.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub lines: usize,
    pub hits: Vec<Hit>,
}

impl ScanReport {
    pub fn add(&mut self, other: ScanReport) {
        self.lines += other.lines;
        self.hits.extend(other.hits);
    }
}

pub struct Scanner {
    needles: Vec<(&'static str, String)>,
}

impl Scanner {
    pub fn new(canaries: &[Canary]) -> Scanner {
        let needles = canaries
            .iter()
            .flat_map(|c| c.needles().into_iter().map(move |f| (c.name, f)))
            .collect();
        Scanner { needles }
    }

    /// Every canary found in `text`, line by line; `source` names it in the hits.
    pub fn scan(&self, source: &str, text: &str) -> ScanReport {
        let mut report = ScanReport::default();
        for (n, line) in text.lines().enumerate() {
            report.lines += 1;
            let mut seen: Vec<&'static str> = Vec::new();
            for (name, needle) in &self.needles {
                if !seen.contains(name) && line.contains(needle.as_str()) {
                    seen.push(name);
                    report.hits.push(Hit {
                        source: source.to_string(),
                        line: n + 1,
                        canary: name,
                    });
                }
            }
        }
        report
    }
}
