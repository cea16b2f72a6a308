//! intake: verifies and enqueues Salesforce and Zendesk events.
//!
//! Not built yet (see the README's status table); this binary exists so the workspace has its
//! final shape. It refuses to run rather than pretend to work.

fn main() {
    eprintln!("orglink intake is not implemented yet: see README.md, 'What works today'");
    std::process::exit(2);
}
