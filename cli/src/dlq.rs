//! `orglink dlq list|redrive`: the sync queue's dead letters. The worker sends transient
//! failures back to the queue itself, so what lands here is a crash or a poison message:
//! look first, fix the cause, then redrive.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use orglink_shared::aws::WorkQueue;
use orglink_shared::sync_request::SyncRequest;
use serde_json::json;

use crate::context::{self, OpsError, State};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  orglink dlq list              up to 10 dead letters, left in place
  orglink dlq list --json
  orglink dlq redrive --max 100 back onto the sync queue (fresh deduplication ids)")]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Shows dead letters without taking them (SQS returns at most 10 per look).
    List {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10))]
        max: u16,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Moves dead letters back onto the sync queue.
    Redrive {
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

pub fn run(args: DlqArgs) -> ExitCode {
    context::run(async move {
        let state = State::from_env().await?;
        let queue = state.queue();
        match args.command {
            DlqCommand::List { max, json } => {
                let letters = queue.dead_letters(usize::from(max)).await?;
                if letters.is_empty() && !json {
                    println!("the dead-letter queue is empty");
                }
                for m in &letters {
                    let request = SyncRequest::from_body(&m.body);
                    if json {
                        let line = json!({
                            "message_id": m.message_id,
                            "receive_count": m.receive_count,
                            "group_id": m.group_id,
                            "request": request.as_ref().ok(),
                            "body": m.body,
                            "poison": request.is_err(),
                        });
                        println!("{line}");
                        continue;
                    }
                    match request {
                        Ok(r) => println!(
                            "{}  account {}  kind {}  source {:?}  event {}  received {} time(s)",
                            m.message_id,
                            r.account_id,
                            r.kind,
                            r.source,
                            r.event_id,
                            m.receive_count
                        ),
                        Err(e) => println!(
                            "{}  POISON (not a sync request: {e})  received {} time(s)  body {:?}",
                            m.message_id,
                            m.receive_count,
                            m.body.chars().take(200).collect::<String>()
                        ),
                    }
                }
            }
            DlqCommand::Redrive { max } => {
                if max == 0 {
                    return Err(OpsError::Usage("--max must be at least 1".into()));
                }
                let moved = queue.redrive(max).await?;
                println!("moved {moved} dead letter(s) back onto the sync queue");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
