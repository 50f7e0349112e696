//! `fmn`: the operator's command line.
//!
//! AWS endpoints and credentials come from the standard AWS environment variables
//! (`AWS_ENDPOINT_URL` for an emulator).

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

mod replay;
mod stream;

use stream::{Skips, message};

/// Operate fmn: preferences, messages, tokens and the API.
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
    /// Normalise bus messages: JSON lines on stdin, one JSON line out per line in (a bad
    /// line gives `{"error": …}`, is reported on stderr and counted).
    Meta {
        /// Exit non-zero when any line was skipped.
        #[arg(long)]
        strict: bool,
    },
    /// Match messages (JSON lines on stdin, as for `meta`) against preferences: one JSON
    /// line per notification (message_id, user, context, addresses, filters).
    Match {
        #[command(flatten)]
        rules: RulesArgs,
        /// Print to stderr the time spent loading, building the index and matching.
        #[arg(long)]
        stats: bool,
        /// Exit non-zero when any message was skipped (bad lines are always reported on
        /// stderr with their line number, and skipped).
        #[arg(long)]
        strict: bool,
    },
    /// Explain, for each message on stdin (one JSON message, or JSON lines), every rule of
    /// every filter of one user.
    Explain {
        /// The user.
        #[arg(long)]
        user: String,
        /// Exit non-zero when any message was skipped.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Convert rules from another system into fmn preferences (stdin to stdout).
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Feed recorded bus messages (JSON lines, either generation, or datagrepper pages)
    /// into the incoming queue, through the bridge's sink.
    Replay(replay::ReplayArgs),
    /// Personal API tokens (`fmn token create --user U [--admin] [--expires-in SECS]`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The HTTP API (`fmn api openapi`).
    Api {
        #[command(subcommand)]
        command: ApiCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a personal API token (printed once; only its hash is stored).
    Create {
        /// The user it acts as.
        #[arg(long)]
        user: String,
        /// Grant admin rights (every user's data).
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds (default: 30 days).
        #[arg(long, default_value_t = 30 * 24 * 3600)]
        expires_in: i64,
        /// The API table name.
        #[arg(long, env = "FMN_API_TABLE", conflicts_with = "stack")]
        table: Option<String>,
        /// Read the table name from this stack's outputs instead.
        #[arg(long, default_value = "fmn-local")]
        stack: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiCommand {
    /// Print the HTTP API's OpenAPI 3 document (JSON), for client generators.
    Openapi,
}

/// One output of a deployed stack.
async fn stack_output(
    aws: &aws_config::SdkConfig,
    stack: &str,
    key: &str,
) -> anyhow::Result<String> {
    let out = aws_sdk_cloudformation::Client::new(aws)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .with_context(|| format!("reading stack {stack} (or pass --table)"))?;
    out.stacks()
        .first()
        .and_then(|s| s.outputs().iter().find(|o| o.output_key() == Some(key)))
        .and_then(|o| o.output_value())
        .map(str::to_owned)
        .with_context(|| format!("stack {stack} has no {key} output"))
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

#[derive(Debug, Subcommand)]
enum ImportFrom {
    /// FMN 3's rules as its API serves them (one rule or a list).
    Fmn3,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    /// Preferences (fmn_rules::Preferences JSON: one user's or a list; see docs/rules.md).
    #[arg(long)]
    prefs: PathBuf,
    /// Maintainers, in dist-git's pagure_owner_alias.json shape.
    #[arg(long)]
    ownership: Option<PathBuf>,
}

impl RulesArgs {
    fn load(&self) -> anyhow::Result<(Vec<fmn_rules::Preferences>, Arc<fmn_rules::Ownership>)> {
        let text = std::fs::read_to_string(&self.prefs)
            .with_context(|| format!("reading {}", self.prefs.display()))?;
        let prefs = fmn_rules::Preferences::parse_many(&text)
            .with_context(|| format!("parsing {}", self.prefs.display()))?;
        let ownership = match &self.ownership {
            None => fmn_rules::Ownership::default(),
            Some(path) => fmn_rules::Ownership::from_json(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )?,
        };
        Ok((prefs, Arc::new(ownership)))
    }
}

fn run_match(rules: &RulesArgs, stats: bool, strict: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let (prefs, ownership) = rules.load()?;
    let loaded = started.elapsed();
    let matcher = fmn_rules::Matcher::build_with(prefs, ownership)?;
    let built = started.elapsed() - loaded;
    let mut matching = Duration::ZERO;
    let (mut messages, mut notifications) = (0u64, 0u64);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Messages are parsed a batch at a time, then matched together, then written: the
    // matching of a batch runs with the index warm in the cache, and is timed alone.
    const BATCH: usize = 4096;
    let mut batch = Vec::with_capacity(BATCH);
    let mut skips = Skips::new("match", strict);
    let mut lines = std::io::stdin().lock().lines().enumerate().peekable();
    while lines.peek().is_some() {
        batch.clear();
        for (n, line) in lines.by_ref() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match message(&line) {
                Ok(m) => batch.push(m),
                Err(e) => skips.skip(n + 1, &e),
            }
            if batch.len() == BATCH {
                break;
            }
        }
        let t = Instant::now();
        let hits: Vec<Vec<fmn_rules::NotificationRef<'_>>> =
            batch.iter().map(|m| matcher.matches_borrowed(m)).collect();
        matching += t.elapsed();
        messages += batch.len() as u64;
        for (m, hits) in batch.iter().zip(hits) {
            for hit in hits {
                notifications += 1;
                let line = serde_json::json!({
                    "message_id": m.id, "user": hit.user, "context": hit.context,
                    "addresses": hit.addresses, "filters": hit.filters,
                });
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if stats {
        let index = matcher.stats();
        eprintln!(
            "loading {loaded:?}, building {built:?} ({} filters, {} distinct rule sets, ~{} \
             bytes), matching {matching:?} ({messages} messages, {:.0} msg/s excluding \
             loading and parsing, {notifications} notifications)",
            index.filters,
            index.rule_sets,
            index.heap_bytes,
            messages as f64 / matching.as_secs_f64().max(1e-9),
        );
    }
    skips.finish()
}

fn run_explain(user: &str, rules: &RulesArgs, strict: bool) -> anyhow::Result<()> {
    let (prefs, ownership) = rules.load()?;
    let prefs = prefs
        .into_iter()
        .find(|p| p.user == user)
        .with_context(|| format!("no preferences for {user} in {}", rules.prefs.display()))?;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let mut skips = Skips::new("explain", strict);
    for (line, m) in stream::explain_inputs(&input, &mut skips) {
        if let Err(e) = explain_one(&prefs, &ownership, &m) {
            skips.skip(line, &e);
        }
    }
    skips.finish()
}

fn explain_one(
    prefs: &fmn_rules::Preferences,
    ownership: &Arc<fmn_rules::Ownership>,
    m: &fmn_messages::Message,
) -> anyhow::Result<()> {
    let verdicts = fmn_rules::explain(prefs, ownership, m)?;
    println!("message {} ({}, {})", m.id, m.topic, m.summary);
    for c in &verdicts {
        let enabled = if c.enabled { "" } else { " (disabled)" };
        println!("{}{enabled}:", c.context.as_str());
        for f in &c.filters {
            let active = if f.active { "" } else { " (inactive)" };
            let verdict = if f.matched { "MATCHED" } else { "no match" };
            println!("  filter {:?} ({}){active}: {verdict}", f.name, f.id);
            for r in &f.rules {
                let mark = if r.held { "held" } else { "did not hold" };
                println!("    {mark}: {}", serde_json::to_string(&r.rule)?);
            }
        }
        if c.addresses.is_empty() {
            println!("  => not notified");
        } else {
            println!("  => notified at {}", c.addresses.join(", "));
        }
    }
    Ok(())
}

fn run_import_fmn3() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let rules = fmn_rules::fmn3::parse(&input).context("parsing FMN 3 rules")?;
    let prefs = fmn_rules::fmn3::import(&rules)?;
    // Check what was produced compiles, so a bad glob surfaces now and not in the matcher.
    fmn_rules::Matcher::build(prefs.clone())?;
    println!("{}", serde_json::to_string_pretty(&prefs)?);
    Ok(())
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
            let all = fmn_rules::Preferences::read_file(&file)?;
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
        Command::Replay(args) => replay::run(args).await?,
        Command::Token {
            command:
                TokenCommand::Create {
                    user,
                    admin,
                    expires_in,
                    table,
                    stack,
                },
        } => {
            anyhow::ensure!(
                fmn_api::validate::valid_username(&user),
                "not a user name: {user:?}"
            );
            anyhow::ensure!(expires_in > 0, "--expires-in must be positive");
            let aws = aws_config::load_from_env().await;
            let table = match table {
                Some(t) => t,
                None => stack_output(&aws, &stack, "ApiTableName").await?,
            };
            let tokens = fmn_store::TokenStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
            let (secret, record) = fmn_api::auth::mint(
                &user,
                admin,
                Some("fmn token create".into()),
                Some(expires_in),
            );
            tokens.insert(&record).await?;
            eprintln!(
                "token {} for {user}{} (expires in {expires_in} s); it is shown only now:",
                record.id,
                if admin { ", admin" } else { "" }
            );
            println!("{secret}");
        }
        Command::Api {
            command: ApiCommand::Openapi,
        } => println!("{}", fmn_api::openapi_json()),
        Command::Meta { strict } => stream::run_meta(strict)?,
        Command::Match {
            rules,
            stats,
            strict,
        } => run_match(&rules, stats, strict)?,
        Command::Explain {
            user,
            rules,
            strict,
        } => run_explain(&user, &rules, strict)?,
        Command::Import {
            from: ImportFrom::Fmn3,
        } => run_import_fmn3()?,
    }
    Ok(())
}
