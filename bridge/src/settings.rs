//! The bridge's settings: a TOML file (`--config`), overridden by flags and environment
//! variables, validated into a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Config;
use crate::amqp::{AmqpConfig, QueueName, Tls};
use crate::fedmsg::Endpoint;
use crate::signature::SignatureConfig;

/// The default health endpoint address.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9108";

/// Forwards Fedora bus messages into fmn's incoming SQS queue.
///
/// Every setting can come from the `--config` TOML file; a flag (or its environment
/// variable) overrides the file.
#[derive(Debug, Default, clap::Parser)]
#[command(name = "fmn-bridge", version)]
pub struct Args {
    /// A TOML configuration file (see docs/bridge.md).
    #[arg(long, env = "FMN_BRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// fedmsg endpoint, `[signed:][connect:|bind:]tcp://HOST:PORT`; repeat for several.
    #[arg(long = "fedmsg", env = "FMN_FEDMSG_ENDPOINTS", value_delimiter = ',')]
    pub fedmsg: Vec<Endpoint>,
    /// CA certificates (PEM) issuing fedmsg signing certificates (for `signed:` endpoints).
    #[arg(long, env = "FMN_FEDMSG_CA")]
    pub fedmsg_ca: Option<PathBuf>,
    /// CRL (PEM or DER) of that CA.
    #[arg(long, env = "FMN_FEDMSG_CRL")]
    pub fedmsg_crl: Option<PathBuf>,
    /// fedora-messaging broker, `amqp://…` or `amqps://…`.
    #[arg(long, env = "FMN_AMQP_URL")]
    pub amqp_url: Option<String>,
    /// The exchange to bind to (default `amq.topic`).
    #[arg(long, env = "FMN_AMQP_EXCHANGE")]
    pub amqp_exchange: Option<String>,
    /// A durable queue to consume from; without it, a server-named exclusive queue.
    #[arg(long, env = "FMN_AMQP_QUEUE")]
    pub amqp_queue: Option<String>,
    /// Routing keys to bind, comma-separated (default `#`).
    #[arg(long, env = "FMN_AMQP_ROUTING_KEYS", value_delimiter = ',')]
    pub amqp_routing_keys: Vec<String>,
    /// Unacknowledged deliveries in flight at most (default 100).
    #[arg(long, env = "FMN_AMQP_PREFETCH")]
    pub amqp_prefetch: Option<u16>,
    /// CA certificates (PEM) for `amqps://`.
    #[arg(long, env = "FMN_AMQP_CA_CERT")]
    pub amqp_ca_cert: Option<PathBuf>,
    /// Client certificate and key (PKCS#12) for `amqps://`.
    #[arg(long, env = "FMN_AMQP_CLIENT_P12")]
    pub amqp_client_p12: Option<PathBuf>,
    /// The PKCS#12 password.
    #[arg(long, env = "FMN_AMQP_CLIENT_P12_PASSWORD")]
    pub amqp_client_p12_password: Option<String>,
    /// The incoming queue URL.
    #[arg(long, env = "FMN_INCOMING_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Where rejected messages (invalid fedmsg signatures) go: the incoming DLQ.
    #[arg(long, env = "FMN_QUARANTINE_QUEUE_URL")]
    pub quarantine_queue_url: Option<String>,
    /// Spool directory for batches SQS refuses (drained in order when it is back).
    #[arg(long, env = "FMN_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes (default 1 GiB).
    #[arg(long, env = "FMN_SPOOL_MAX_BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// Serve `/healthz` and `/metrics` here (default 127.0.0.1:9108; `off`: not at all).
    #[arg(long, env = "FMN_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// S3 bucket for messages over SQS's size limit (the stack's `OversizeBucketName`).
    #[arg(long, env = "FMN_OVERSIZE_BUCKET")]
    pub oversize_bucket: Option<String>,
    /// Publish health metrics to CloudWatch in this namespace every minute (the stack's
    /// `BridgeMetricsNamespace` output; its alarms watch them).
    #[arg(long, env = "FMN_CLOUDWATCH_NAMESPACE")]
    pub cloudwatch_namespace: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "FMN_LOG_JSON")]
    pub log_json: bool,
    /// Measure throughput instead of bridging: push N corpus messages through the bridge's
    /// sink into the queue, then the same N with a plain SendMessageBatch loop.
    #[arg(long, value_name = "N")]
    pub bench: Option<usize>,
}

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The incoming queue URL.
    pub queue_url: Option<String>,
    /// The incoming DLQ, for rejected messages.
    pub quarantine_queue_url: Option<String>,
    /// The disk spool.
    pub spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes.
    pub spool_max_bytes: Option<u64>,
    /// The health endpoint (`"off"`: none).
    pub metrics_addr: Option<String>,
    /// The oversize bucket.
    pub oversize_bucket: Option<String>,
    /// The CloudWatch namespace for health metrics.
    pub cloudwatch_namespace: Option<String>,
    /// JSON logs.
    #[serde(default)]
    pub log_json: bool,
    /// fedmsg endpoints.
    #[serde(default)]
    pub fedmsg: Vec<FedmsgEndpoint>,
    /// Signature validation for `signed` endpoints.
    pub fedmsg_signatures: Option<SignatureConfig>,
    /// The fedora-messaging broker.
    pub amqp: Option<FileAmqp>,
}

/// One `[[fedmsg]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FedmsgEndpoint {
    /// `[connect:|bind:]tcp://HOST:PORT`.
    pub endpoint: String,
    /// Validate signatures.
    #[serde(default)]
    pub signed: bool,
}

/// The `[amqp]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAmqp {
    /// `amqp://…` or `amqps://…`.
    pub url: String,
    /// Exchange (default `amq.topic`).
    pub exchange: Option<String>,
    /// Durable queue name (none: server-named).
    pub queue: Option<String>,
    /// Binding keys (default `["#"]`).
    pub routing_keys: Option<Vec<String>>,
    /// Prefetch (default 100).
    pub prefetch: Option<u16>,
    /// CA bundle for `amqps://`.
    pub ca_cert: Option<PathBuf>,
    /// PKCS#12 client identity.
    pub client_p12: Option<PathBuf>,
    /// Its password.
    pub client_p12_password: Option<String>,
}

/// Settings that cannot make a working bridge.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for the bridge.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// A setting has a bad value.
    #[error("{0}")]
    Invalid(String),
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, SettingsError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SettingsError::Read(path.to_owned(), e))?;
        toml::from_str(&text).map_err(|e| SettingsError::Parse(path.to_owned(), e.to_string()))
    }
}

impl Args {
    /// The bridge configuration: the file's settings, each overridden by its flag, and
    /// whether to log JSON.
    pub fn resolve(&self) -> Result<(Config, bool), SettingsError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let queue_url = self.queue_url.clone().or(file.queue_url).ok_or_else(|| {
            SettingsError::Invalid(
                "no incoming queue: give --queue-url, FMN_INCOMING_QUEUE_URL or queue_url".into(),
            )
        })?;
        let fedmsg = if self.fedmsg.is_empty() {
            file.fedmsg
                .iter()
                .map(|e| {
                    let mut endpoint: Endpoint =
                        e.endpoint
                            .parse()
                            .map_err(|e: crate::fedmsg::EndpointError| {
                                SettingsError::Invalid(e.to_string())
                            })?;
                    endpoint.signed |= e.signed;
                    Ok(endpoint)
                })
                .collect::<Result<Vec<_>, SettingsError>>()?
        } else {
            self.fedmsg.clone()
        };
        let mut fedmsg_signatures = file.fedmsg_signatures;
        if let Some(ca) = &self.fedmsg_ca {
            fedmsg_signatures.get_or_insert_with(Default::default).ca = ca.clone();
        }
        if let Some(crl) = &self.fedmsg_crl {
            fedmsg_signatures.get_or_insert_with(Default::default).crl = Some(crl.clone());
        }
        let file_amqp = file.amqp;
        let amqp_url = self
            .amqp_url
            .clone()
            .or_else(|| file_amqp.as_ref().map(|a| a.url.clone()));
        let amqp = amqp_url.map(|url| {
            let f = file_amqp.as_ref();
            AmqpConfig {
                url,
                exchange: self
                    .amqp_exchange
                    .clone()
                    .or_else(|| f.and_then(|f| f.exchange.clone()))
                    .unwrap_or_else(|| "amq.topic".into()),
                queue: self
                    .amqp_queue
                    .clone()
                    .or_else(|| f.and_then(|f| f.queue.clone()))
                    .map_or(QueueName::ServerNamed, QueueName::Durable),
                routing_keys: if self.amqp_routing_keys.is_empty() {
                    f.and_then(|f| f.routing_keys.clone())
                        .unwrap_or_else(|| vec!["#".into()])
                } else {
                    self.amqp_routing_keys.clone()
                },
                prefetch: self
                    .amqp_prefetch
                    .or_else(|| f.and_then(|f| f.prefetch))
                    .unwrap_or(100),
                tls: Tls {
                    ca_certificates: self
                        .amqp_ca_cert
                        .clone()
                        .or_else(|| f.and_then(|f| f.ca_cert.clone())),
                    client_identity: self
                        .amqp_client_p12
                        .clone()
                        .or_else(|| f.and_then(|f| f.client_p12.clone())),
                    client_identity_password: self
                        .amqp_client_p12_password
                        .clone()
                        .or_else(|| f.and_then(|f| f.client_p12_password.clone()))
                        .unwrap_or_default(),
                },
            }
        });
        let metrics_addr = self
            .metrics_addr
            .clone()
            .or(file.metrics_addr)
            .unwrap_or_else(|| DEFAULT_METRICS_ADDR.into());
        let metrics_addr = match metrics_addr.as_str() {
            "off" | "" => None,
            a => Some(
                a.parse::<SocketAddr>()
                    .map_err(|e| SettingsError::Invalid(format!("metrics address {a:?}: {e}")))?,
            ),
        };
        let config = Config {
            fedmsg,
            amqp,
            queue_url,
            spool_dir: self.spool_dir.clone().or(file.spool_dir),
            spool_max_bytes: self
                .spool_max_bytes
                .or(file.spool_max_bytes)
                .unwrap_or(1 << 30),
            metrics_addr,
            oversize_bucket: self.oversize_bucket.clone().or(file.oversize_bucket),
            cloudwatch_namespace: self
                .cloudwatch_namespace
                .clone()
                .or(file.cloudwatch_namespace),
            fedmsg_signatures,
            quarantine_queue_url: self
                .quarantine_queue_url
                .clone()
                .or(file.quarantine_queue_url),
        };
        Ok((config, self.log_json || file.log_json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const FILE: &str = r#"
queue_url = "https://sqs.example/1/incoming"
spool_dir = "/var/lib/fmn-bridge/spool"
metrics_addr = "127.0.0.1:9200"

[[fedmsg]]
endpoint = "tcp://hub.example:9940"
signed = true

[fedmsg_signatures]
ca = "/etc/fmn/ca.crt"
routing_nitpicky = true
[fedmsg_signatures.routing_policy]
"org.fedoraproject.prod.bodhi.update.comment" = ["bodhi-bodhi01"]

[amqp]
url = "amqps://fedora:@rabbitmq.example/%2Fpublic_pubsub"
queue = "fmn"
routing_keys = ["org.fedoraproject.prod.#"]
"#;

    #[test]
    fn the_file_is_read_and_flags_override_it() {
        let file = write(FILE);
        let path = file.path().to_str().unwrap();
        let args = Args::try_parse_from(["fmn-bridge", "--config", path]).unwrap();
        let (config, json) = args.resolve().unwrap();
        assert!(!json);
        assert_eq!(config.queue_url, "https://sqs.example/1/incoming");
        assert_eq!(config.fedmsg.len(), 1);
        assert!(config.fedmsg[0].signed);
        let signatures = config.fedmsg_signatures.unwrap();
        assert!(signatures.routing_nitpicky);
        assert_eq!(signatures.routing_policy.len(), 1);
        let amqp = config.amqp.unwrap();
        assert_eq!(amqp.queue, QueueName::Durable("fmn".into()));
        assert_eq!(amqp.prefetch, 100);
        assert_eq!(amqp.exchange, "amq.topic");
        assert_eq!(config.metrics_addr, Some("127.0.0.1:9200".parse().unwrap()));

        let args = Args::try_parse_from([
            "fmn-bridge",
            "--config",
            path,
            "--queue-url",
            "http://127.0.0.1:5100/1/q",
            "--amqp-prefetch",
            "7",
            "--metrics-addr",
            "off",
        ])
        .unwrap();
        let (config, _) = args.resolve().unwrap();
        assert_eq!(config.queue_url, "http://127.0.0.1:5100/1/q");
        assert_eq!(config.amqp.unwrap().prefetch, 7);
        assert_eq!(config.metrics_addr, None);
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let unknown = write("queue_url = \"q\"\nspool = \"/x\"\n");
        let args = Args {
            config: Some(unknown.path().to_owned()),
            ..Default::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("spool"), "{err}");
        let err = Args::default().resolve().unwrap_err().to_string();
        assert!(err.contains("--queue-url"), "{err}");
        let args = Args {
            queue_url: Some("q".into()),
            metrics_addr: Some("localhost".into()),
            ..Default::default()
        };
        assert!(args.resolve().unwrap_err().to_string().contains("metrics"));
    }
}
