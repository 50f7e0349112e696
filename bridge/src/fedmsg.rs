//! The fedmsg source: a ZeroMQ SUB socket per endpoint, two frames per message (the topic,
//! then the JSON envelope).

use std::str::FromStr;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{Socket, SocketRecv, SubSocket};

use fmn_queue::{Outgoing, QUARANTINE_REASON_ATTRIBUTE, Queue, TOPIC_ATTRIBUTE};

use crate::metrics::{Metrics, Source};
use crate::signature::Validator;
use crate::{BusMessage, Delivery};

/// How to reach a fedmsg endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// Connect to a publisher that binds (fedmsg's usual publishers, a gateway).
    Connect,
    /// Bind and let publishers connect (fedmsg's `active` publishers, a relay).
    Bind,
}

/// A fedmsg endpoint, written `connect:tcp://host:port` or `bind:tcp://127.0.0.1:port`
/// (a bare `tcp://…` connects), prefixed with `signed:` to validate signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Connect or bind.
    pub mode: EndpointMode,
    /// The ZeroMQ address.
    pub address: String,
    /// Validate signatures (with the bridge's [`crate::SignatureConfig`]); invalid messages
    /// are quarantined, never forwarded.
    pub signed: bool,
}

/// An endpoint that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad fedmsg endpoint {0:?}: expected [signed:][connect:|bind:]tcp://HOST:PORT")]
pub struct EndpointError(String);

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let original = s;
        let (signed, s) = match s.strip_prefix("signed:") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (mode, address) = if let Some(a) = s.strip_prefix("bind:") {
            (EndpointMode::Bind, a)
        } else {
            (
                EndpointMode::Connect,
                s.strip_prefix("connect:").unwrap_or(s),
            )
        };
        if !(address.starts_with("tcp://") || address.starts_with("ipc://")) {
            return Err(EndpointError(original.to_owned()));
        }
        Ok(Endpoint {
            mode,
            address: address.to_owned(),
            signed,
        })
    }
}

/// A fedmsg message whose frames are not a topic and a JSON envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Not two frames.
    #[error("expected 2 frames (topic, envelope), got {0}")]
    FrameCount(usize),
    /// A frame is not UTF-8.
    #[error("frame {0} is not UTF-8")]
    Utf8(usize),
}

/// Reads the two fedmsg frames. The envelope is forwarded as received: the matcher validates
/// and quarantines it, so that nothing is lost here.
pub fn decode(frames: &[&[u8]]) -> Result<BusMessage, FrameError> {
    let [topic, body] = frames else {
        return Err(FrameError::FrameCount(frames.len()));
    };
    let topic = std::str::from_utf8(topic).map_err(|_| FrameError::Utf8(0))?;
    let body = std::str::from_utf8(body).map_err(|_| FrameError::Utf8(1))?;
    Ok(BusMessage {
        topic: topic.to_owned(),
        body: body.to_owned(),
    })
}

/// What happens to messages from `signed:` endpoints.
#[derive(Debug, Default)]
pub struct Checks {
    /// Validates signatures (required for `signed:` endpoints).
    pub validator: Option<Validator>,
    /// Where rejected messages go, with the [`QUARANTINE_REASON_ATTRIBUTE`] (the incoming
    /// DLQ); without it they are logged and dropped.
    pub quarantine: Option<fmn_queue::SqsQueue>,
}

impl Checks {
    /// Validates `message`; a rejected one is quarantined and `false` returned.
    async fn admit(&self, message: &BusMessage, metrics: &Metrics) -> bool {
        let Some(validator) = &self.validator else {
            return true;
        };
        let Err(invalid) = validator.validate(&message.body) else {
            return true;
        };
        metrics.fedmsg.quarantined.fetch_add(1, Relaxed);
        let reason = format!("fedmsg signature: {invalid}");
        tracing::warn!(topic = %message.topic, %reason, "fedmsg: quarantining");
        if let Some(queue) = &self.quarantine {
            let quarantined = Outgoing::new(message.body.clone())
                .with_attribute(TOPIC_ATTRIBUTE, message.topic.clone())
                .with_attribute(QUARANTINE_REASON_ATTRIBUTE, reason);
            if let Err(e) = queue.send_all(vec![quarantined]).await {
                tracing::error!(error = %e, topic = %message.topic,
                    "fedmsg: cannot quarantine a rejected message; dropped");
            }
        }
        false
    }
}

/// Subscribes to every topic on `endpoint` and sends what arrives to `out`, until `stop`.
pub async fn subscribe(
    endpoint: Endpoint,
    out: mpsc::Sender<Delivery>,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    subscribe_checked(endpoint, out, stop, metrics, Arc::default()).await
}

/// [`subscribe`], validating signatures with `checks` when the endpoint is `signed:`.
pub async fn subscribe_checked(
    endpoint: Endpoint,
    out: mpsc::Sender<Delivery>,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    checks: Arc<Checks>,
) -> anyhow::Result<()> {
    if endpoint.signed && checks.validator.is_none() {
        anyhow::bail!(
            "fedmsg endpoint {} is signed: but no signature configuration (CA) is given",
            endpoint.address
        );
    }
    let mut socket = SubSocket::new();
    match endpoint.mode {
        EndpointMode::Bind => {
            let bound = socket.bind(&endpoint.address).await?;
            tracing::info!(endpoint = %bound, "fedmsg: bound, waiting for publishers");
        }
        EndpointMode::Connect => {
            // Retries until the publisher answers; the socket reconnects by itself later.
            let mut delay = std::time::Duration::from_millis(200);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    result = socket.connect(&endpoint.address) => match result {
                        Ok(()) => break,
                        Err(e) => tracing::warn!(endpoint = %endpoint.address, error = %e,
                            "fedmsg: connect failed; retrying"),
                    },
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
            tracing::info!(endpoint = %endpoint.address, "fedmsg: connected");
        }
    }
    socket.subscribe("").await?;
    // ZeroMQ reconnects by itself: from here on the endpoint counts as up.
    metrics.fedmsg.connected.fetch_add(1, Relaxed);
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => break,
            r = socket.recv() => r,
        };
        let message = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.address, error = %e, "fedmsg: receive failed");
                continue;
            }
        };
        let frames: Vec<&[u8]> = message.iter().map(|f| f.as_ref()).collect();
        match decode(&frames) {
            Ok(m) => {
                tracing::debug!(topic = %m.topic, bytes = m.body.len(), "fedmsg: received");
                metrics.received(Source::Fedmsg);
                if endpoint.signed && !checks.admit(&m, &metrics).await {
                    continue;
                }
                if out
                    .send(Delivery::unacknowledged(m, Source::Fedmsg))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Err(e) => tracing::warn!(endpoint = %endpoint.address, error = %e,
                "fedmsg: dropping undecodable frames"),
        }
    }
    metrics.fedmsg.connected.fetch_sub(1, Relaxed);
    tracing::info!(endpoint = %endpoint.address, "fedmsg: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            "tcp://127.0.0.1:9940".parse::<Endpoint>().unwrap().mode,
            EndpointMode::Connect
        );
        assert_eq!(
            "bind:tcp://127.0.0.1:9941".parse::<Endpoint>().unwrap(),
            Endpoint {
                mode: EndpointMode::Bind,
                address: "tcp://127.0.0.1:9941".into(),
                signed: false,
            }
        );
        let signed: Endpoint = "signed:connect:tcp://hub:9940".parse().unwrap();
        assert!(signed.signed);
        assert_eq!(signed.mode, EndpointMode::Connect);
        assert!("signed:http://x".parse::<Endpoint>().is_err());
        assert!("http://x".parse::<Endpoint>().is_err());
    }

    #[test]
    fn frames_decode() {
        let m = decode(&[b"org.x.prod.a.b", b"{\"msg\": {}}"]).unwrap();
        assert_eq!(m.topic, "org.x.prod.a.b");
        assert_eq!(decode(&[b"only"]), Err(FrameError::FrameCount(1)));
        assert_eq!(decode(&[b"t", &[0xff]]), Err(FrameError::Utf8(1)));
    }
}
