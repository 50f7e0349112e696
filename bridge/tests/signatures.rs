//! fedmsg's labelled signature vectors (`fixtures/fedmsg-signed-vectors.jsonl`, each signed
//! and judged by fedmsg's own code): every one is accepted or rejected as labelled, under the
//! CA, CRL and routing policy it names.

// Fixture helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use fmn_bridge::SignatureConfig;
use fmn_bridge::signature::{Invalid, Validator, canonical_json};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn vectors() -> Vec<Value> {
    std::fs::read_to_string(fixture("fedmsg-signed-vectors.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn config(validation: &Value) -> SignatureConfig {
    SignatureConfig {
        ca: fixture(validation["ca"].as_str().unwrap()),
        crl: validation["crl"].as_str().map(fixture),
        routing_policy: serde_json::from_value(validation["routing_policy"].clone()).unwrap(),
        routing_nitpicky: validation["routing_nitpicky"].as_bool().unwrap(),
    }
}

#[test]
fn every_vector_is_judged_as_labelled() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 16);
    let mut failures = Vec::new();
    for v in &vectors {
        let case = v["case"].as_str().unwrap();
        let validator = Validator::load(&config(&v["validation"])).unwrap();
        // The envelope exactly as a subscriber receives it on the wire (Python's json.dumps).
        let wire = v["envelope"].to_string();
        let verdict = validator.validate(&wire);
        let expected = v["expect_valid"].as_bool().unwrap();
        if verdict.is_ok() != expected {
            failures.push(format!(
                "{case}: expected valid={expected}, got {verdict:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rejections_say_why() {
    let expected = [
        ("routing_policy_denies_signer", "NotAuthorized"),
        ("routing_nitpicky_topic_absent", "NoPolicy"),
        ("tampered_body", "BadSignature"),
        ("tampered_topic", "BadSignature"),
        ("tampered_envelope_field_i", "BadSignature"),
        ("crypto_field_removed", "BadSignature"),
        ("unsigned", "Unsigned"),
        ("rogue_self_signed_cert", "Untrusted"),
        ("revoked_cert_with_crl", "Revoked"),
    ];
    let vectors = vectors();
    for (case, kind) in expected {
        let v = vectors.iter().find(|v| v["case"] == case).unwrap();
        let validator = Validator::load(&config(&v["validation"])).unwrap();
        let err: Invalid = validator.validate(&v["envelope"].to_string()).unwrap_err();
        assert!(format!("{err:?}").starts_with(kind), "{case}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn python_number_forms_are_reproduced() {
    // The envelope's numbers as Python wrote them, parsed and written back identically.
    let v = vectors()
        .into_iter()
        .find(|v| v["case"] == "valid_float_int_canonicalization")
        .unwrap();
    let text = canonical_json(&v["envelope"]["msg"]);
    assert_eq!(
        text,
        r#"{"big":1e+16,"empty":{},"float":1344447839.891876,"int":12345678901234567890,"neg0":-0.0,"nested":[1.5,{"a":true,"z":null}],"small":1e-07}"#
    );
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let missing = SignatureConfig {
        ca: fixture("no-such-ca.crt"),
        ..Default::default()
    };
    let err = Validator::load(&missing).unwrap_err().to_string();
    assert!(err.contains("no-such-ca.crt"), "{err}");
    // A CRL that is not signed by the CA is refused.
    let wrong_crl = SignatureConfig {
        ca: fixture("ca.crt"),
        crl: Some(fixture("ca.crt")),
        ..Default::default()
    };
    assert!(Validator::load(&wrong_crl).is_err());
    // Garbage envelopes are rejected, never a panic.
    let ok = Validator::load(&SignatureConfig {
        ca: fixture("ca.crt"),
        ..Default::default()
    })
    .unwrap();
    for junk in [
        "",
        "[]",
        "{",
        r#"{"signature": 1, "certificate": "!!"}"#,
        r#"{"signature": "AAAA", "certificate": "AAAA", "crypto": "gpg"}"#,
    ] {
        assert!(ok.validate(junk).is_err(), "{junk}");
    }
}
