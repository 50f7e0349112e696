//! `fmn`: the operator's command line.
//!
//! AWS endpoints and credentials come from the standard AWS environment variables
//! (`AWS_ENDPOINT_URL` for an emulator).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Operate fmn: preferences, messages, and the emails a local emulator accepted.
#[derive(Debug, Parser)]
#[command(name = "fmn", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Users' preferences in the preferences table.
    Prefs {
        #[command(subcommand)]
        command: PrefsCommand,
    },
    /// Normalise bus messages: JSON lines on stdin, one JSON line out per line in.
    Meta,
    /// List the emails the emulator's SES accepted (local runs only).
    Emails {
        /// The emulator (default: $AWS_ENDPOINT_URL).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint: String,
        /// Keep watching and print new emails as they arrive.
        #[arg(long)]
        follow: bool,
        /// Print the whole body of each email.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PrefsCommand {
    /// Store preferences from a JSON file (one user's, or a list), replacing each user's.
    Put {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        table: TableArgs,
    },
    /// Print one user's stored preferences.
    Get {
        /// The user.
        user: String,
        #[command(flatten)]
        table: TableArgs,
    },
}

#[derive(Debug, clap::Args)]
struct TableArgs {
    /// The preferences table name.
    #[arg(long, env = "FMN_PREFERENCES_TABLE", conflicts_with = "stack")]
    table: Option<String>,
    /// Read the table name from this stack's outputs instead.
    #[arg(long, default_value = "fmn-local")]
    stack: String,
}

impl TableArgs {
    async fn open(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> anyhow::Result<fmn_store::PreferenceTable> {
        let name = match &self.table {
            Some(t) => t.clone(),
            None => {
                let cfn = aws_sdk_cloudformation::Client::new(aws);
                let out = cfn
                    .describe_stacks()
                    .stack_name(&self.stack)
                    .send()
                    .await
                    .with_context(|| format!("reading stack {} (or pass --table)", self.stack))?;
                out.stacks()
                    .first()
                    .and_then(|s| {
                        s.outputs()
                            .iter()
                            .find(|o| o.output_key() == Some("PreferencesTableName"))
                    })
                    .and_then(|o| o.output_value())
                    .map(str::to_owned)
                    .with_context(|| {
                        format!("stack {} has no PreferencesTableName output", self.stack)
                    })?
            }
        };
        Ok(fmn_store::PreferenceTable::new(
            aws_sdk_dynamodb::Client::new(aws),
            name,
        ))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Prefs {
            command: PrefsCommand::Put { file, table },
        } => {
            let all = fmn_local::demo::read_preferences(&file)?;
            let aws = aws_config::load_from_env().await;
            let table = table.open(&aws).await?;
            for prefs in &all {
                table.put(prefs).await?;
                println!("stored preferences of {}", prefs.user);
            }
        }
        Command::Prefs {
            command: PrefsCommand::Get { user, table },
        } => {
            let aws = aws_config::load_from_env().await;
            match table.open(&aws).await?.get(&user).await? {
                Some(p) => println!("{}", serde_json::to_string_pretty(&p)?),
                None => anyhow::bail!("no preferences stored for {user}"),
            }
        }
        Command::Meta => {
            let stdin = std::io::stdin().lock();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in stdin.lines() {
                writeln!(out, "{}", fmn_messages::meta_line_json(&line?))?;
            }
            out.flush()?;
        }
        Command::Emails {
            endpoint,
            follow,
            full,
        } => {
            let mut seen = 0;
            loop {
                let all = fmn_local::emails::list(&endpoint).await?;
                for e in all.iter().skip(seen) {
                    println!("{}  to {}  {}", e.id, e.to.join(","), e.subject);
                    if full {
                        println!("{}\n", e.body);
                    }
                }
                seen = seen.max(all.len());
                if !follow {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Ok(())
}
