//! `orglink`: the operator CLI.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "orglink", version, about = "Keeps one trustworthy link between each Salesforce Account and one Zendesk Organization")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows what orglink makes of website values (being written).
    CheckWebsite { values: Vec<String> },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckWebsite { .. } => {
            eprintln!("check-website is being written");
            std::process::exit(2);
        }
    }
}
