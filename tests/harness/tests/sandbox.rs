//! The sandbox hook: `Sandbox::start` runs `orglink-sandbox serve` and hands back its URLs.
//! Needs the binary built (`cargo test --workspace` and `make test` build it first).

use std::net::TcpStream;

use orglink_harness::Sandbox;

#[test]
fn sandbox_starts_and_serves_both_simulators_until_dropped() {
    let sandbox = Sandbox::start(None).unwrap_or_else(|e| panic!("{e}"));
    let addr = |url: &str| {
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    };
    let (sf, zd) = (addr(&sandbox.salesforce), addr(&sandbox.zendesk));
    assert!(sf.starts_with("127.0.0.1:"), "{sf}");
    assert_ne!(sf, zd, "each simulator has its own port");
    for a in [&sf, &zd] {
        TcpStream::connect(a).unwrap_or_else(|e| panic!("{a} does not accept connections: {e}"));
    }
    drop(sandbox);
    assert!(TcpStream::connect(&sf).is_err(), "stopped when dropped");
}
