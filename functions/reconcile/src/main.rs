//! reconcile: nightly comparison of both sides, exceptions and safe repairs.
//!
//! Not built yet (see the README's status table); this binary exists so the workspace has its
//! final shape. It refuses to run rather than pretend to work.

fn main() {
    eprintln!("orglink reconcile is not implemented yet: see README.md, 'What works today'");
    std::process::exit(2);
}
