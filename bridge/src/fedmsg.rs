//! The fedmsg source: a ZeroMQ SUB socket per endpoint, two frames per message (the topic,
//! then the JSON envelope).

use std::str::FromStr;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{Socket, SocketRecv, SubSocket};

use crate::metrics::Metrics;
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
/// (a bare `tcp://…` connects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Connect or bind.
    pub mode: EndpointMode,
    /// The ZeroMQ address.
    pub address: String,
}

/// An endpoint that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad fedmsg endpoint {0:?}: expected [connect:|bind:]tcp://HOST:PORT")]
pub struct EndpointError(String);

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mode, address) = if let Some(a) = s.strip_prefix("bind:") {
            (EndpointMode::Bind, a)
        } else {
            (
                EndpointMode::Connect,
                s.strip_prefix("connect:").unwrap_or(s),
            )
        };
        if !(address.starts_with("tcp://") || address.starts_with("ipc://")) {
            return Err(EndpointError(s.to_owned()));
        }
        Ok(Endpoint {
            mode,
            address: address.to_owned(),
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

/// Subscribes to every topic on `endpoint` and sends what arrives to `out`, until `stop`.
pub async fn subscribe(
    endpoint: Endpoint,
    out: mpsc::Sender<Delivery>,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
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
                metrics.received(&metrics.fedmsg_in);
                if out.send(m.into()).await.is_err() {
                    break;
                }
            }
            Err(e) => tracing::warn!(endpoint = %endpoint.address, error = %e,
                "fedmsg: dropping undecodable frames"),
        }
    }
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
                address: "tcp://127.0.0.1:9941".into()
            }
        );
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
