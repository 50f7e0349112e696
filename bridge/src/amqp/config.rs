//! How to reach the fedora-messaging broker.

use std::path::PathBuf;

/// The queue the bridge consumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueName {
    /// A durable queue with this name: messages wait in it while the bridge is down.
    Durable(String),
    /// A server-named, exclusive, auto-deleted queue: nothing is kept while the bridge is
    /// down (what Fedora's public broker allows anonymous consumers).
    ServerNamed,
}

/// TLS material for `amqps://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates (PEM) to trust instead of the system roots.
    pub ca_certificates: Option<PathBuf>,
    /// Client certificate and key as a PKCS#12 file (`openssl pkcs12 -export -in cert.pem
    /// -inkey key.pem -out client.p12`), for brokers that authenticate by certificate.
    pub client_identity: Option<PathBuf>,
    /// The PKCS#12 file's password (often empty).
    pub client_identity_password: String,
}

/// The AMQP source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` or `amqps://…`.
    pub url: String,
    /// The exchange to bind to (fedora-messaging publishes to `amq.topic`).
    pub exchange: String,
    /// The queue to declare and consume.
    pub queue: QueueName,
    /// Routing keys bound to the queue (`#`: everything).
    pub routing_keys: Vec<String>,
    /// Deliveries in flight (received, not yet acknowledged) at most.
    pub prefetch: u16,
    /// TLS files, for `amqps://`.
    pub tls: Tls,
}

impl AmqpConfig {
    /// Everything on `amq.topic`, into a durable queue named `queue`, prefetch 100.
    pub fn new(url: impl Into<String>, queue: QueueName) -> Self {
        AmqpConfig {
            url: url.into(),
            exchange: "amq.topic".into(),
            queue,
            routing_keys: vec!["#".into()],
            prefetch: 100,
            tls: Tls::default(),
        }
    }
}
