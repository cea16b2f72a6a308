//! Creates the template's tables, queues and secret on moto through the AWS SDK, from the
//! template's own (resolved) definitions. moto cannot deploy a SAM template, and a second,
//! hand-written copy of the resources would drift; so each property the template sets is
//! either applied here or refused as unsupported, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    SseSpecification, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use orglink_shared::aws::ResourceNames;
use serde_json::Value as Json;

use crate::moto::{ACCOUNT_ID, REGION};
use crate::template::{Lookup, Resolver, Unresolved};
use crate::{AwsEnv, HarnessError, Template};

const TABLE: &str = "AWS::DynamoDB::Table";
const QUEUE: &str = "AWS::SQS::Queue";
const SECRET: &str = "AWS::SecretsManager::Secret";

/// Table properties applied, and those with no local effect (accepted, not applied).
const TABLE_PROPS: &[&str] = &[
    "TableName",
    "BillingMode",
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification",
    "SSESpecification",
];
const TABLE_NO_LOCAL_EFFECT: &[&str] = &["Tags", "DeletionProtectionEnabled", "TableClass"];
/// Queue properties that map one-to-one onto SQS queue attributes.
const QUEUE_ATTRS: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
];

/// One created resource.
#[derive(Debug, Clone)]
pub struct Physical {
    pub kind: String,
    /// What `!Ref` gives: a table's name, a queue's URL, a secret's ARN.
    pub reference: String,
    /// What `!GetAtt` gives (`Arn`, `QueueName`, ...).
    pub attributes: BTreeMap<String, String>,
    /// The resolved properties it was created from.
    pub properties: Json,
}

/// The template's resources created on moto under one prefix.
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Physical>,
    /// Resources the local stack does not create (functions, schedules, alarms), with type.
    pub skipped: BTreeMap<String, String>,
    /// Outputs whose values could be resolved.
    pub outputs: BTreeMap<String, String>,
}

struct Created<'a> {
    made: &'a BTreeMap<String, Physical>,
    defined: &'a BTreeSet<String>,
}

impl Lookup for Created<'_> {
    fn reference(&self, id: &str) -> Option<String> {
        self.made.get(id).map(|p| p.reference.clone())
    }
    fn attribute(&self, id: &str, attr: &str) -> Option<String> {
        self.made
            .get(id)
            .and_then(|p| p.attributes.get(attr).cloned())
    }
    fn defined(&self, id: &str) -> bool {
        self.defined.contains(id)
    }
}

impl LocalStack {
    /// Creates the project's template with `Prefix` set to `prefix`, other parameters at
    /// their defaults.
    pub async fn create(aws: &AwsEnv, prefix: &str) -> Result<LocalStack, HarnessError> {
        let overrides = BTreeMap::from([("Prefix".to_string(), prefix.to_string())]);
        Self::create_from(aws, &Template::project()?, &overrides).await
    }

    pub async fn create_from(
        aws: &AwsEnv,
        template: &Template,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LocalStack, HarnessError> {
        let parameters = template.parameters(overrides)?;
        let stack_name = parameters
            .get("Prefix")
            .cloned()
            .unwrap_or_else(|| "orglink".into());
        let pseudo = BTreeMap::from([
            ("AWS::Region", REGION.to_string()),
            ("AWS::AccountId", ACCOUNT_ID.to_string()),
            ("AWS::StackName", stack_name),
            ("AWS::Partition", "aws".to_string()),
            ("AWS::URLSuffix", "amazonaws.com".to_string()),
        ]);
        let mut skipped = BTreeMap::new();
        let mut pending = Vec::new();
        for def in template.resources() {
            if [TABLE, QUEUE, SECRET].contains(&def.kind.as_str()) {
                pending.push(def);
            } else {
                skipped.insert(def.logical_id.clone(), def.kind.clone());
            }
        }
        let defined: BTreeSet<String> = pending.iter().map(|d| d.logical_id.clone()).collect();
        let mut made = BTreeMap::new();
        // Create what resolves; what waits on another resource goes in a later round.
        while !pending.is_empty() {
            let mut waiting = Vec::new();
            let made_before = made.len();
            for def in std::mem::take(&mut pending) {
                let resolver = Resolver {
                    parameters: &parameters,
                    pseudo: pseudo.clone(),
                    resources: &Created {
                        made: &made,
                        defined: &defined,
                    },
                };
                match resolver.resolve(&def.properties) {
                    Ok(props) => {
                        let physical = create(aws, &def.logical_id, &def.kind, props).await?;
                        made.insert(def.logical_id.clone(), physical);
                    }
                    Err(Unresolved::Waiting(_)) => waiting.push(def),
                    Err(Unresolved::Error(e)) => return Err(e),
                }
            }
            if made.len() == made_before {
                let ids: Vec<_> = waiting.iter().map(|d| d.logical_id.clone()).collect();
                return Err(HarnessError::Unsupported(format!(
                    "resources {ids:?} wait on each other or on a resource the local stack does not create"
                )));
            }
            pending = waiting;
        }
        let mut outputs = BTreeMap::new();
        let resolver = Resolver {
            parameters: &parameters,
            pseudo,
            resources: &Created {
                made: &made,
                defined: &defined,
            },
        };
        for (name, expr) in template.outputs() {
            match resolver.resolve(&expr) {
                Ok(Json::String(v)) => {
                    outputs.insert(name, v);
                }
                Ok(other) => {
                    outputs.insert(name, other.to_string());
                }
                // An output about a function or alarm: not part of the local stack.
                Err(Unresolved::Waiting(_)) => {}
                Err(Unresolved::Error(e)) if skipped_ref(&expr, &skipped) => drop(e),
                Err(Unresolved::Error(e)) => return Err(e),
            }
        }
        Ok(LocalStack {
            parameters,
            resources: made,
            skipped,
            outputs,
        })
    }

    /// The names the functions read, from the template's outputs.
    pub fn names(&self) -> Result<ResourceNames, HarnessError> {
        let get = |k: &str| {
            self.outputs
                .get(k)
                .cloned()
                .ok_or_else(|| HarnessError::Unsupported(format!("the template has no output {k}")))
        };
        Ok(ResourceNames {
            idempotency_table: get("IdempotencyTableName")?,
            links_table: get("LinksTableName")?,
            claims_table: get("ClaimsTableName")?,
            org_mirror_table: get("OrgMirrorTableName")?,
            rate_budget_table: get("RateBudgetTableName")?,
            exceptions_table: get("ExceptionsTableName")?,
            runs_table: get("RunsTableName")?,
            sync_queue_url: get("SyncQueueUrl")?,
            sync_dlq_url: get("SyncDeadLetterQueueUrl")?,
            secret_id: get("CredentialsSecretArn")?,
        })
    }

    /// The created resources of one type (`AWS::DynamoDB::Table`, ...), by logical id.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Physical)> {
        self.resources
            .iter()
            .filter(move |(_, p)| p.kind == kind)
            .map(|(k, p)| (k.as_str(), p))
    }
}

fn skipped_ref(expr: &serde_yaml::Value, skipped: &BTreeMap<String, String>) -> bool {
    let text = serde_yaml::to_string(expr).unwrap_or_default();
    skipped.keys().any(|k| text.contains(k.as_str()))
}

fn err(resource: &str, detail: impl std::fmt::Display) -> HarnessError {
    HarnessError::Create {
        resource: resource.to_string(),
        detail: detail.to_string(),
    }
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field<'a>(props: &'a Json, id: &str, key: &str) -> Result<&'a Json, HarnessError> {
    props
        .get(key)
        .ok_or_else(|| HarnessError::Unsupported(format!("{id} needs {key} for the local stack")))
}

fn check_known(
    id: &str,
    props: &Json,
    known: &[&str],
    ignored: &[&str],
) -> Result<(), HarnessError> {
    if let Some(obj) = props.as_object() {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) && !ignored.contains(&k.as_str()) {
                return Err(HarnessError::Unsupported(format!(
                    "{id}: property {k} is not applied by the local stack (tests/harness/src/stack.rs)"
                )));
            }
        }
    }
    Ok(())
}

async fn create(aws: &AwsEnv, id: &str, kind: &str, props: Json) -> Result<Physical, HarnessError> {
    match kind {
        TABLE => create_table(aws, id, props).await,
        QUEUE => create_queue(aws, id, props).await,
        SECRET => create_secret(aws, id, props).await,
        other => Err(HarnessError::Unsupported(format!("{id}: type {other}"))),
    }
}

fn key_schema(id: &str, v: &Json) -> Result<Vec<KeySchemaElement>, HarnessError> {
    v.as_array()
        .ok_or_else(|| err(id, "KeySchema is not a list"))?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"]))
                .key_type(KeyType::from(text(&k["KeyType"]).as_str()))
                .build()
                .map_err(|e| err(id, e))
        })
        .collect()
}

async fn create_table(aws: &AwsEnv, id: &str, props: Json) -> Result<Physical, HarnessError> {
    check_known(id, &props, TABLE_PROPS, TABLE_NO_LOCAL_EFFECT)?;
    let name = text(field(&props, id, "TableName")?);
    let billing = props
        .get("BillingMode")
        .map(text)
        .unwrap_or_else(|| "PROVISIONED".into());
    if billing != "PAY_PER_REQUEST" {
        return Err(HarnessError::Unsupported(format!(
            "{id}: BillingMode {billing} (the local stack creates on-demand tables)"
        )));
    }
    let attributes = field(&props, id, "AttributeDefinitions")?
        .as_array()
        .ok_or_else(|| err(id, "AttributeDefinitions is not a list"))?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    text(&a["AttributeType"]).as_str(),
                ))
                .build()
                .map_err(|e| err(id, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut indexes = Vec::new();
    for g in props
        .get("GlobalSecondaryIndexes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let projection = &g["Projection"];
        let non_key: Option<Vec<String>> = projection
            .get("NonKeyAttributes")
            .and_then(Json::as_array)
            .map(|a| a.iter().map(text).collect());
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(text(&g["IndexName"]))
                .set_key_schema(Some(key_schema(id, &g["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            text(&projection["ProjectionType"]).as_str(),
                        ))
                        .set_non_key_attributes(non_key)
                        .build(),
                )
                .build()
                .map_err(|e| err(id, e))?,
        );
    }
    let sse = props
        .get("SSESpecification")
        .and_then(|s| s.get("SSEEnabled"))
        .map(|v| v == &Json::Bool(true) || text(v) == "true");
    let client = aws.dynamodb();
    let out = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(id, field(&props, id, "KeySchema")?)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .set_sse_specification(sse.map(|e| SseSpecification::builder().enabled(e).build()))
        .send()
        .await
        .map_err(|e| err(id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(&ttl["AttributeName"]))
                    .enabled(ttl["Enabled"] == Json::Bool(true) || text(&ttl["Enabled"]) == "true")
                    .build()
                    .map_err(|e| err(id, e))?,
            )
            .send()
            .await
            .map_err(|e| err(id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    if let Some(pitr) = props.get("PointInTimeRecoverySpecification") {
        let enabled = pitr["PointInTimeRecoveryEnabled"] == Json::Bool(true);
        client
            .update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(enabled)
                    .build()
                    .map_err(|e| err(id, e))?,
            )
            .send()
            .await
            .map_err(|e| err(id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    let arn = out
        .table_description()
        .and_then(|d| d.table_arn())
        .map(str::to_string)
        .unwrap_or_else(|| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"));
    Ok(Physical {
        kind: TABLE.into(),
        reference: name,
        attributes: BTreeMap::from([("Arn".to_string(), arn)]),
        properties: props,
    })
}

async fn create_queue(aws: &AwsEnv, id: &str, props: Json) -> Result<Physical, HarnessError> {
    let mut known: Vec<&str> = QUEUE_ATTRS.to_vec();
    known.push("QueueName");
    check_known(id, &props, &known, &["Tags"])?;
    // moto does not append .fifo to generated names, so FIFO queues need explicit names.
    let name = text(field(&props, id, "QueueName")?);
    let mut request = aws.sqs().create_queue().queue_name(&name);
    for attr in QUEUE_ATTRS {
        if let Some(v) = props.get(*attr) {
            let value = match v {
                Json::Object(_) => v.to_string(),
                other => text(other),
            };
            request = request.attributes(QueueAttributeName::from(*attr), value);
        }
    }
    let out = request
        .send()
        .await
        .map_err(|e| err(id, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let url = out
        .queue_url()
        .ok_or_else(|| err(id, "no queue URL returned"))?
        .to_string();
    let attrs = aws
        .sqs()
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(id, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| err(id, "no queue ARN returned"))?;
    Ok(Physical {
        kind: QUEUE.into(),
        reference: url.clone(),
        attributes: BTreeMap::from([
            ("Arn".to_string(), arn),
            ("QueueName".to_string(), name),
            ("QueueUrl".to_string(), url),
        ]),
        properties: props,
    })
}

async fn create_secret(aws: &AwsEnv, id: &str, props: Json) -> Result<Physical, HarnessError> {
    check_known(
        id,
        &props,
        &["Name", "Description", "SecretString"],
        &["Tags", "KmsKeyId"],
    )?;
    let name = text(field(&props, id, "Name")?);
    let out = aws
        .secrets()
        .create_secret()
        .name(&name)
        .set_description(props.get("Description").map(text))
        .set_secret_string(props.get("SecretString").map(text))
        .send()
        .await
        .map_err(|e| err(id, aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
    let arn = out
        .arn()
        .ok_or_else(|| err(id, "no secret ARN returned"))?
        .to_string();
    Ok(Physical {
        kind: SECRET.into(),
        reference: arn.clone(),
        attributes: BTreeMap::from([("Id".to_string(), arn), ("Name".to_string(), name)]),
        properties: props,
    })
}
