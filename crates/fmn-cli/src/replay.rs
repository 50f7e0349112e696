//! `fmn replay FILE`: recorded bus traffic into `incoming`, through the bridge's own sink.

use std::path::PathBuf;

use anyhow::Context;

/// Feed JSON lines (fedmsg envelopes, fedora-messaging `{topic, headers, body, id}`
/// messages, or datagrepper `{"raw_messages": [...]}` pages) into the incoming queue.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The JSON-lines file.
    file: PathBuf,
    /// Messages per second at most (`N` or `N/s`; default: as fast as SQS takes them).
    #[arg(long, value_parser = fmn_bridge::replay::parse_rate)]
    rate: Option<f64>,
    /// The incoming queue (default: the stack's `IncomingQueueUrl`).
    #[arg(long, env = "FMN_INCOMING_QUEUE_URL")]
    queue_url: Option<String>,
    /// The stack whose outputs name the queue and the oversize bucket.
    #[arg(long, default_value = "fmn-local")]
    stack: String,
    /// Spool batches SQS refuses here (drained before returning, or left for the bridge).
    #[arg(long, env = "FMN_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// S3 bucket for messages over SQS's size limit (default: the stack's, if it has one).
    #[arg(long, env = "FMN_OVERSIZE_BUCKET")]
    oversize_bucket: Option<String>,
}

async fn stack_output(
    aws: &aws_config::SdkConfig,
    stack: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let out = aws_sdk_cloudformation::Client::new(aws)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .with_context(|| format!("reading stack {stack} (or pass --queue-url)"))?;
    Ok(out
        .stacks()
        .first()
        .and_then(|s| s.outputs().iter().find(|o| o.output_key() == Some(key)))
        .and_then(|o| o.output_value())
        .map(str::to_owned))
}

/// Runs the replay; prints how many messages went in.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    // Read and check the whole file first: a bad line sends nothing.
    let messages = fmn_bridge::replay::read_file(&args.file)?;
    let aws = aws_config::load_from_env().await;
    let queue_url = match args.queue_url {
        Some(url) => url,
        None => stack_output(&aws, &args.stack, "IncomingQueueUrl")
            .await?
            .with_context(|| format!("stack {} has no IncomingQueueUrl output", args.stack))?,
    };
    let oversize_bucket = match args.oversize_bucket {
        Some(b) => Some(b),
        None => stack_output(&aws, &args.stack, "OversizeBucketName")
            .await
            .ok()
            .flatten(),
    };
    let config = fmn_bridge::Config {
        queue_url,
        spool_dir: args.spool_dir,
        oversize_bucket,
        ..Default::default()
    };
    let total = messages.len();
    let sent = fmn_bridge::replay::replay(
        fmn_bridge::Bridge::from_aws(config, &aws),
        messages,
        args.rate,
    )
    .await?;
    eprintln!("replayed {sent} of {total} messages");
    Ok(())
}
