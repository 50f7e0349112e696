//! The emails an emulator's SES accepted: moto lists them in `/moto-api/data.json`,
//! LocalStack at `/_aws/ses`.

use serde::Serialize;
use serde_json::Value;

/// One accepted email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentEmail {
    /// SES message id.
    pub id: String,
    /// From.
    pub source: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Text body (or the raw message for raw sends).
    pub body: String,
    /// The text body as a reader sees it (decoded from the MIME message of a raw send).
    pub text: String,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Every email the emulator at `endpoint` has accepted, oldest first.
pub async fn list(endpoint: &str) -> anyhow::Result<Vec<SentEmail>> {
    let client = reqwest::Client::new();
    // moto builds data.json from live state; while functions write to it, building can fail
    // (500) now and then: ask again, a bounded number of times.
    let mut moto = client
        .get(format!("{endpoint}/moto-api/data.json"))
        .send()
        .await?;
    for _ in 0..20 {
        if !moto.status().is_server_error() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        moto = client
            .get(format!("{endpoint}/moto-api/data.json"))
            .send()
            .await?;
    }
    if moto.status().is_success() {
        let data: Value = moto.json().await?;
        let mut out = Vec::new();
        for m in data
            .pointer("/ses/Message")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(SentEmail {
                id: text(m, "id"),
                source: text(m, "source"),
                to: m
                    .pointer("/destinations/ToAddresses")
                    .map(strings)
                    .unwrap_or_default(),
                subject: text(m, "subject"),
                body: text(m, "body"),
                text: text(m, "body"),
            });
        }
        for m in data
            .pointer("/ses/RawMessage")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let raw = text(m, "raw_data");
            // Decoded (RFC 2047, quoted-printable) and unfolded, as a mail client shows it.
            let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
            let subject = parsed
                .as_ref()
                .and_then(|p| p.subject().map(str::to_owned))
                .unwrap_or_default();
            let readable = parsed
                .as_ref()
                .and_then(|p| p.body_text(0).map(|t| t.into_owned()))
                .unwrap_or_default();
            out.push(SentEmail {
                id: text(m, "id"),
                source: text(m, "source"),
                to: m.get("destinations").map(strings).unwrap_or_default(),
                subject,
                body: raw,
                text: readable,
            });
        }
        return Ok(out);
    }
    let localstack: Value = client
        .get(format!("{endpoint}/_aws/ses"))
        .send()
        .await?
        .json()
        .await?;
    Ok(localstack
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let body = m
                .pointer("/Body/text_part")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            SentEmail {
                id: text(m, "Id"),
                source: text(m, "Source"),
                to: m
                    .pointer("/Destination/ToAddresses")
                    .map(strings)
                    .unwrap_or_default(),
                subject: text(m, "Subject"),
                text: body.clone(),
                body,
            }
        })
        .collect())
}
