//! The local stack is the template: every table and queue `infra/template.yaml` defines exists
//! on moto with the key schema, indexes, TTL and attributes the template gives it.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use orglink_harness::{Template, moto_stack};
use serde_json::Value as Json;

fn sorted_pairs(list: &Json, a: &str, b: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| {
            (
                x[a].as_str().unwrap().to_string(),
                x[b].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn every_template_table_exists_with_its_schema() {
    let (aws, stack) = moto_stack("tables").await;
    let ddb = aws.dynamodb();
    let template = Template::project().unwrap();
    let defined: Vec<_> = template
        .resources()
        .into_iter()
        .filter(|r| r.kind == "AWS::DynamoDB::Table")
        .map(|r| r.logical_id)
        .collect();
    assert!(defined.len() >= 6, "the template defines the state tables");
    for id in &defined {
        let made = &stack.resources[id];
        let props = &made.properties;
        let name = props["TableName"].as_str().unwrap();
        assert!(
            name.starts_with(&stack.parameters["Prefix"]),
            "{name} carries the prefix"
        );
        let table = ddb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let keys: Vec<(String, String)> = {
            let mut v: Vec<_> = table
                .key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_string(),
                        k.key_type().as_str().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            keys,
            sorted_pairs(&props["KeySchema"], "AttributeName", "KeyType"),
            "{id}"
        );
        let mut attrs: Vec<_> = table
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_string(),
                    a.attribute_type().as_str().to_string(),
                )
            })
            .collect();
        attrs.sort();
        assert_eq!(
            attrs,
            sorted_pairs(
                &props["AttributeDefinitions"],
                "AttributeName",
                "AttributeType"
            ),
            "{id}"
        );
        assert_eq!(
            table
                .billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|b| b.as_str()),
            Some("PAY_PER_REQUEST"),
            "{id}"
        );
        // Indexes: names, key schemas and projections as the template says.
        let want: BTreeMap<String, (Vec<(String, String)>, String)> = props
            .get("GlobalSecondaryIndexes")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|g| {
                (
                    g["IndexName"].as_str().unwrap().to_string(),
                    (
                        sorted_pairs(&g["KeySchema"], "AttributeName", "KeyType"),
                        g["Projection"]["ProjectionType"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                )
            })
            .collect();
        let have: BTreeMap<String, (Vec<(String, String)>, String)> = table
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                let mut ks: Vec<_> = g
                    .key_schema()
                    .iter()
                    .map(|k| {
                        (
                            k.attribute_name().to_string(),
                            k.key_type().as_str().to_string(),
                        )
                    })
                    .collect();
                ks.sort();
                (
                    g.index_name().unwrap().to_string(),
                    (
                        ks,
                        g.projection()
                            .and_then(|p| p.projection_type())
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                )
            })
            .collect();
        assert_eq!(have, want, "{id} indexes");
        // TTL: moto records the setting (it never expires items; the adapters filter).
        let ttl = ddb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        match props.get("TimeToLiveSpecification") {
            Some(spec) => {
                assert_eq!(
                    ttl.attribute_name(),
                    spec["AttributeName"].as_str(),
                    "{id} TTL"
                );
                assert_eq!(
                    ttl.time_to_live_status().map(|s| s.as_str()),
                    Some("ENABLED"),
                    "{id} TTL"
                );
            }
            None => assert_ne!(
                ttl.time_to_live_status().map(|s| s.as_str()),
                Some("ENABLED"),
                "{id} has no TTL in the template"
            ),
        }
    }
    // The table names are what the adapters are given.
    let names = stack.names().unwrap();
    assert_eq!(names.links_table, stack.resources["LinksTable"].reference);
    assert_eq!(
        names.idempotency_table,
        stack.resources["IdempotencyTable"].reference
    );
}

#[tokio::test]
async fn queues_are_fifo_with_redrive_to_the_fifo_dlq() {
    let (aws, stack) = moto_stack("queues").await;
    let sqs = aws.sqs();
    let names = stack.names().unwrap();
    let attrs = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()
        }
    };
    let main = attrs(names.sync_queue_url.clone()).await;
    let dlq = attrs(names.sync_dlq_url.clone()).await;
    let props = &stack.resources["SyncQueue"].properties;
    let get = |m: &std::collections::HashMap<QueueAttributeName, String>, k: QueueAttributeName| {
        m.get(&k).cloned().unwrap_or_default()
    };
    assert_eq!(get(&main, QueueAttributeName::FifoQueue), "true");
    assert_eq!(get(&dlq, QueueAttributeName::FifoQueue), "true");
    assert_eq!(
        get(&main, QueueAttributeName::ContentBasedDeduplication),
        "false"
    );
    assert_eq!(
        get(&main, QueueAttributeName::VisibilityTimeout),
        stack.parameters["QueueVisibilityTimeoutSeconds"]
    );
    assert_eq!(
        get(&main, QueueAttributeName::MessageRetentionPeriod),
        stack.parameters["MessageRetentionSeconds"]
    );
    assert_eq!(
        get(&dlq, QueueAttributeName::MessageRetentionPeriod),
        "1209600"
    );
    assert!(names.sync_queue_url.ends_with(".fifo"));
    assert!(names.sync_dlq_url.ends_with(".fifo"));
    let redrive: Json =
        serde_json::from_str(&get(&main, QueueAttributeName::RedrivePolicy)).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str(),
        Some(get(&dlq, QueueAttributeName::QueueArn).as_str())
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        stack.parameters["MaxReceiveCount"]
    );
    assert_eq!(
        props["RedrivePolicy"]["deadLetterTargetArn"].as_str(),
        Some(get(&dlq, QueueAttributeName::QueueArn).as_str())
    );
}

#[tokio::test]
async fn the_secret_exists_and_outputs_name_everything() {
    let (aws, stack) = moto_stack("secret").await;
    let names = stack.names().unwrap();
    let secret = aws
        .secrets()
        .get_secret_value()
        .secret_id(&names.secret_id)
        .send()
        .await
        .unwrap();
    assert_eq!(secret.secret_string(), Some("{}"));
    assert!(
        secret
            .name()
            .unwrap()
            .starts_with(&stack.parameters["Prefix"])
    );
    // Every output of the template resolved, except those about a resource the local stack
    // does not create (a function, its URL): those must name a skipped resource.
    let template = Template::project().unwrap();
    let mut unresolved = Vec::new();
    for (name, expr) in template.outputs() {
        if stack.outputs.contains_key(&name) {
            continue;
        }
        let text = serde_yaml::to_string(&expr).unwrap();
        assert!(
            stack.skipped.keys().any(|id| text.contains(id.as_str())),
            "output {name} did not resolve and names no skipped resource: {text}"
        );
        unresolved.push(name);
    }
    assert!(
        unresolved.len() < template.outputs().len() / 2,
        "most outputs are local resources: {unresolved:?}"
    );
}

#[tokio::test]
async fn unsupported_template_forms_are_refused_not_ignored() {
    let moto = orglink_harness::Moto::shared().unwrap_or_else(|e| panic!("{e}"));
    let aws = orglink_harness::AwsEnv::for_moto(moto).await;
    let template = Template::parse(
        r#"
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: x
      BillingMode: PAY_PER_REQUEST
      StreamSpecification: {StreamViewType: NEW_IMAGE}
      AttributeDefinitions: [{AttributeName: k, AttributeType: S}]
      KeySchema: [{AttributeName: k, KeyType: HASH}]
"#,
    )
    .unwrap();
    let err = orglink_harness::LocalStack::create_from(&aws, &template, &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("StreamSpecification"), "{err}");
}
