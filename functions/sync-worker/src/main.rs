//! sync-worker: turns queued account events into linked organizations.
//!
//! Not built yet (see the README's status table); this binary exists so the workspace has its
//! final shape. It refuses to run rather than pretend to work.

fn main() {
    eprintln!("orglink sync-worker is not implemented yet: see README.md, 'What works today'");
    std::process::exit(2);
}
