//! Deploying the CloudFormation template to an emulator.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

/// A deployed stack's outputs (queue URLs, table and function names).
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack name.
    pub name: String,
    /// Output name → value.
    pub outputs: BTreeMap<String, String>,
}

impl Stack {
    /// An output the template declares.
    pub fn output(&self, name: &str) -> anyhow::Result<&str> {
        self.outputs
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("stack {} has no output {name}", self.name))
    }
}

/// A zip holding one `bootstrap` that says it is a placeholder: the local runtime runs the
/// handlers in-process, the emulator only needs a package to create the function.
pub(crate) fn placeholder_zip() -> anyhow::Result<Vec<u8>> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file(
        "bootstrap",
        zip::write::SimpleFileOptions::default().unix_permissions(0o755),
    )?;
    zip.write_all(
        b"#!/bin/sh\necho 'placeholder: fmn-local runs this function in-process' >&2\nexit 1\n",
    )?;
    zip.finish()?;
    Ok(buffer.into_inner())
}

/// CloudFormation's limit on an inline `TemplateBody`, in bytes; larger templates must be
/// given as a `TemplateURL` (limit 1 MB). fmn's template is over it, so every deploy path
/// goes through S3 (docs/decisions.md, "The template goes through S3").
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// The key of the template in the code bucket.
const TEMPLATE_KEY: &str = "local/template.yaml";

/// The `TemplateURL` of `key` in `bucket` as the emulators read it: the virtual-hosted S3
/// form that AWS documents. moto maps it to its own S3 (it takes the bucket from the host
/// name; `http://127.0.0.1:PORT/bucket/key` it would misread as bucket `127`), and
/// LocalStack maps `*.s3.amazonaws.com` to its own S3 as well.
pub fn template_url(bucket: &str, key: &str) -> String {
    format!("https://{bucket}.s3.amazonaws.com/{key}")
}

/// Deploys `template` as `stack_name` with the event-source mappings disabled (the local
/// runtime polls the queues itself), creating or updating the stack. The template is
/// uploaded to the code bucket and passed as a `TemplateURL`, never inline: it is larger
/// than [`INLINE_TEMPLATE_LIMIT`].
pub async fn deploy(
    aws: &aws_config::SdkConfig,
    template: &str,
    stack_name: &str,
    sender_address: &str,
) -> anyhow::Result<Stack> {
    deploy_with(aws, template, stack_name, sender_address, &[]).await
}

/// [`deploy`], with more template parameters (`(name, value)`).
pub async fn deploy_with(
    aws: &aws_config::SdkConfig,
    template: &str,
    stack_name: &str,
    sender_address: &str,
    extra_parameters: &[(&str, &str)],
) -> anyhow::Result<Stack> {
    let s3 = aws_sdk_s3::Client::new(aws);
    let bucket = format!("{stack_name}-code");
    if s3.head_bucket().bucket(&bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .context("creating the code bucket")?;
    }
    let zip = placeholder_zip()?;
    let keys = regex::Regex::new(r"\$\{CodePrefix\}([A-Za-z0-9_-]+\.zip)")?;
    for key in keys.captures_iter(template).map(|c| c[1].to_owned()) {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("local/{key}"))
            .body(zip.clone().into())
            .send()
            .await
            .with_context(|| format!("uploading {key}"))?;
    }
    s3.put_object()
        .bucket(&bucket)
        .key(TEMPLATE_KEY)
        .body(template.as_bytes().to_vec().into())
        .send()
        .await
        .context("uploading the template")?;
    let url = template_url(&bucket, TEMPLATE_KEY);

    let cfn = aws_sdk_cloudformation::Client::new(aws);
    let parameter = |k: &str, v: &str| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    // The link secret the local API also signs with, where the functions read it (SSM).
    let link_secret = put_secret(aws, stack_name, "link-secret", LOCAL_LINK_SECRET).await?;
    let mut parameters = vec![
        parameter("CodeBucket", &bucket),
        parameter("CodePrefix", "local/"),
        parameter("EventSourceMappingsEnabled", "false"),
        parameter("SenderAddress", sender_address),
        parameter("LinkSecretParameter", &link_secret),
    ];
    parameters.extend(extra_parameters.iter().map(|(k, v)| parameter(k, v)));
    let exists = cfn
        .describe_stacks()
        .stack_name(stack_name)
        .send()
        .await
        .is_ok_and(|out| {
            out.stacks()
                .iter()
                .any(|s| s.stack_status() != Some(&StackStatus::DeleteComplete))
        });
    // moto gives stacks made through change sets no outputs, so create/update directly.
    if exists {
        let updated = cfn
            .update_stack()
            .stack_name(stack_name)
            .template_url(&url)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await;
        if let Err(e) = updated {
            let text = format!("{:?}", e.as_service_error());
            if !text.contains("No updates") {
                return Err(e).context("updating the stack");
            }
        }
    } else {
        cfn.create_stack()
            .stack_name(stack_name)
            .template_url(&url)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await
            .context("creating the stack")?;
    }
    wait_for_stack(&cfn, stack_name).await
}

/// Verifies `sender_address` in SES (an operator does this once per account in AWS).
pub async fn verify_sender(
    aws: &aws_config::SdkConfig,
    sender_address: &str,
) -> anyhow::Result<()> {
    let ses = aws_sdk_sesv2::Client::new(aws);
    if ses
        .get_email_identity()
        .email_identity(sender_address)
        .send()
        .await
        .is_err()
    {
        ses.create_email_identity()
            .email_identity(sender_address)
            .send()
            .await
            .context("verifying the sender address in SES")?;
    }
    Ok(())
}

async fn wait_for_stack(cfn: &aws_sdk_cloudformation::Client, name: &str) -> anyhow::Result<Stack> {
    for _ in 0..600 {
        let out = cfn.describe_stacks().stack_name(name).send().await?;
        let Some(stack) = out.stacks().first() else {
            bail!("stack {name} vanished")
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if status.ends_with("_COMPLETE")
            && !status.contains("ROLLBACK")
            && !status.contains("DELETE")
        {
            let outputs = stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect();
            return Ok(Stack {
                name: name.to_owned(),
                outputs,
            });
        }
        if status.contains("FAILED") || status.contains("ROLLBACK") {
            bail!(
                "stack {name}: {status}: {}",
                stack.stack_status_reason().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("stack {name} did not finish deploying")
}

/// The deployed environment variables of `function`.
pub async fn function_environment(
    aws: &aws_config::SdkConfig,
    function: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let out = aws_sdk_lambda::Client::new(aws)
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("reading the configuration of {function}"))?;
    Ok(out
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default())
}

/// The link secret of local runs: the senders read it from SSM, the local API is given it
/// (they must share it). Long and varied enough for `fmn_links::check_secret`.
pub const LOCAL_LINK_SECRET: &str = "fmn-local link secret, not for production";

/// Stores `value` as the SSM SecureString `/<stack>/<name>` (replacing it) and returns the
/// parameter's name, for a template parameter such as `LinkSecretParameter`.
pub async fn put_secret(
    aws: &aws_config::SdkConfig,
    stack: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<String> {
    let parameter = format!("/{stack}/{name}");
    aws_sdk_ssm::Client::new(aws)
        .put_parameter()
        .name(&parameter)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("storing the secret {parameter} in SSM"))?;
    Ok(parameter)
}

/// Sets `vars` in the deployed environment of `function`, keeping the others.
pub async fn set_function_environment(
    aws: &aws_config::SdkConfig,
    function: &str,
    vars: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut env = function_environment(aws, function).await?;
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    aws_sdk_lambda::Client::new(aws)
        .update_function_configuration()
        .function_name(function)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(env))
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("updating the environment of {function}"))?;
    Ok(())
}
