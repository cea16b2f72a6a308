//! `orglink-sandbox`: serves the Salesforce and Zendesk simulators on loopback.
//! (Flags, scenario loading and the two listeners are being written.)

fn main() {
    eprintln!("orglink-sandbox is being written");
    std::process::exit(2);
}
