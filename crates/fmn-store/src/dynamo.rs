//! The one mapping of DynamoDB SDK errors used by every table crate (store, held, feed).

/// The text of an SDK error with its whole source chain: the SDK's `Display` is terse
/// ("service error"), the chain says what actually happened.
pub fn error_text<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether an SDK error is a failed condition check (of a put, update, delete or
/// transaction): a conditional write lost to a concurrent one, or found the item otherwise.
pub fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| {
            c == "ConditionalCheckFailedException" || c == "TransactionCanceledException"
        })
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_source_chain_is_kept() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(super::error_text(&e), "outer: connection refused");
    }
}
