//! The intake batch parser: any body gives a batch or an error naming where it is wrong; a
//! batch it accepts holds only what the format allows and survives the notifier's encoding
//! (serialize, parse again) unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orglink_shared::contract::EventKind;
use orglink_shared::ids::AccountId;
use orglink_shared::signature::{EventId, SALESFORCE_EVENT_KINDS, parse_batch};

fuzz_target!(|body: &[u8]| {
    match parse_batch(body) {
        Ok(batch) => {
            assert!(!batch.events.is_empty(), "a batch without events");
            for event in &batch.events {
                assert_ne!(
                    event.kind,
                    EventKind::ReconcileRepair,
                    "an orglink-only kind from outside"
                );
                assert!(SALESFORCE_EVENT_KINDS.contains(&event.kind));
                assert_eq!(
                    AccountId::parse(event.account_id.as_str()).as_ref(),
                    Ok(&event.account_id)
                );
                assert_eq!(
                    EventId::parse(event.event_id.as_str()).as_ref(),
                    Ok(&event.event_id)
                );
            }
            let json = batch.to_json();
            let again = parse_batch(json.as_bytes())
                .unwrap_or_else(|e| panic!("the batch's own encoding is refused: {e}\n{json}"));
            assert_eq!(again, batch, "the batch changed through its own encoding");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // An error about an event names one that exists in the body.
            if let Some(i) = e.event_index() {
                let value: serde_json::Value =
                    serde_json::from_slice(body).expect("an event error comes from JSON");
                let events = value["events"]
                    .as_array()
                    .expect("an event error comes from an events array");
                assert!(i < events.len(), "events[{i}] of {}", events.len());
            }
        }
    }
});
