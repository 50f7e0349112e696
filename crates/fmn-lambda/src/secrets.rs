//! Secrets from SSM Parameter Store, read once when a function starts.
//!
//! A function's environment never holds a secret: it holds `NAME_SSM_PARAMETER=/fmn/…`, the
//! name of a `SecureString` parameter, and [`resolve`] puts the decrypted value under `NAME`
//! before the function reads its configuration. Lambda's console, `GetFunctionConfiguration`
//! and CloudFormation's stack parameters then show a parameter name, not the secret.

use std::collections::HashMap;

use crate::{ConfigError, Vars};

/// The suffix of a variable naming the SSM parameter that holds `NAME`'s value.
pub const SSM_SUFFIX: &str = "_SSM_PARAMETER";

/// `GetParameters` takes at most this many names per call.
const PER_CALL: usize = 10;

impl Vars {
    /// `(NAME, parameter)` for every `NAME_SSM_PARAMETER` set in these variables.
    pub fn secret_parameters(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, v)| Some((k.strip_suffix(SSM_SUFFIX)?.to_owned(), v.clone())))
            .collect();
        out.sort();
        out
    }

    /// These variables with `name` set to `value`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    /// The process environment with its secrets read from SSM (see the module doc): what
    /// every function's `main` reads its configuration from.
    pub async fn load(aws: &aws_config::SdkConfig) -> Result<Vars, ConfigError> {
        resolve(Vars::from_env(), &fmn_calls::client!(aws_sdk_ssm, aws)).await
    }
}

/// `vars` with each `NAME_SSM_PARAMETER`'s parameter read (decrypted) into `NAME`. A value
/// set directly under `NAME` is replaced. A parameter that is missing or unreadable fails,
/// naming the variable and the parameter: a function must not start without its secrets.
pub async fn resolve(vars: Vars, ssm: &aws_sdk_ssm::Client) -> Result<Vars, ConfigError> {
    let wanted = vars.secret_parameters();
    let mut values: HashMap<String, String> = HashMap::new();
    for chunk in wanted.chunks(PER_CALL) {
        let names: Vec<String> = chunk.iter().map(|(_, p)| p.clone()).collect();
        let out = ssm
            .get_parameters()
            .set_names(Some(names))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let (var, param) = &chunk[0];
                ConfigError::invalid(
                    &format!("{var}{SSM_SUFFIX}"),
                    format!(
                        "reading SSM parameter {param}: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&e)
                    ),
                )
            })?;
        for p in out.parameters() {
            if let (Some(name), Some(value)) = (p.name(), p.value()) {
                values.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    let mut vars = vars;
    for (var, param) in wanted {
        let value = values.get(&param).ok_or_else(|| {
            ConfigError::invalid(
                &format!("{var}{SSM_SUFFIX}"),
                format!("SSM parameter {param} does not exist (create it as a SecureString)"),
            )
        })?;
        vars = vars.with(&var, value.clone());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_are_found_by_suffix() {
        let vars = Vars::new(HashMap::from([
            (
                "FMN_LINK_SECRET_SSM_PARAMETER".to_owned(),
                "/fmn/link".to_owned(),
            ),
            (
                "FMN_IRC_SASL_PASSWORD_SSM_PARAMETER".to_owned(),
                String::new(),
            ),
            ("FMN_TABLE".to_owned(), "t".to_owned()),
        ]));
        assert_eq!(
            vars.secret_parameters(),
            vec![("FMN_LINK_SECRET".to_owned(), "/fmn/link".to_owned())],
            "an empty parameter name means no secret"
        );
    }
}
