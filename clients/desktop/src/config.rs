//! The configuration: `$XDG_CONFIG_HOME/fmn/desktop.toml`, the token from `FMN_TOKEN`, the
//! file or a token file, and where the last item seen is kept (`$XDG_STATE_HOME/fmn`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The environment variable that overrides the token of the configuration file.
pub const TOKEN_ENV: &str = "FMN_TOKEN";

/// A personal API token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from its text (surrounding whitespace removed).
    pub fn new(text: &str) -> anyhow::Result<Token> {
        let t = text.trim();
        if t.is_empty() {
            bail!("the token is empty");
        }
        if t.len() > 8192 || t.chars().any(|c| c.is_control() || c == ' ') {
            bail!("the token is not a token (control characters, spaces or over 8 KiB)");
        }
        Ok(Token(t.to_owned()))
    }

    /// The secret, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// `desktop.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The fmn deployment, e.g. `https://notifications.fedoraproject.org`.
    pub api_url: Option<String>,
    /// A personal token (`fmn tokens` or the web app's settings). Prefer `token_file`.
    pub token: Option<String>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// The WebSocket URL, when not the one the API names (a proxy in between).
    pub socket_url: Option<String>,
    /// The program that opens a link (default `xdg-open`).
    pub open_command: Option<String>,
    /// At most this many popups after a reconnect; more become one summary popup.
    pub max_backfill_popups: Option<usize>,
    /// Seconds between keepalive pings (default 300: API Gateway closes idle sockets after 600).
    pub ping_secs: Option<u64>,
    /// Seconds after which a connection is replaced (default 6600: API Gateway's cap is 7200).
    pub reconnect_after_secs: Option<u64>,
}

/// The configuration the program runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_url: url::Url,
    pub token: Token,
    pub socket_url: Option<String>,
    pub open_command: String,
    pub max_backfill_popups: usize,
    pub ping_interval: Duration,
    pub reconnect_after: Duration,
    /// The file holding the id of the last item seen.
    pub state_file: PathBuf,
}

/// `$XDG_CONFIG_HOME/fmn/desktop.toml` (or `~/.config/fmn/desktop.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("fmn").join("desktop.toml"))
}

/// `$XDG_STATE_HOME/fmn/desktop-last-id` (or `~/.local/state/fmn/desktop-last-id`).
pub fn default_state_file() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("fmn").join("desktop-last-id"))
}

fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        // The spec: a relative path is invalid and ignored.
        Some(v) if Path::new(&v).is_absolute() => Some(PathBuf::from(v)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback)),
    }
}

impl Config {
    /// Reads `path` (absent is fine when everything else is given), then applies the
    /// overrides: `api_url` from the command line, the token from `env_token` (`FMN_TOKEN`).
    pub fn load(
        path: Option<&Path>,
        api_url: Option<&str>,
        env_token: Option<&str>,
        state_file: Option<PathBuf>,
    ) -> anyhow::Result<Config> {
        let file = match path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                let file: FileConfig =
                    toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
                if file.token.is_some() {
                    warn_if_readable_by_others(p);
                }
                file
            }
            _ => FileConfig::default(),
        };
        let api_url = api_url
            .map(str::to_owned)
            .or(file.api_url.clone())
            .with_context(|| {
                let place = path.map_or("desktop.toml".into(), |p| p.display().to_string());
                format!("no api_url: write it in {place} or pass --api-url")
            })?;
        let mut api_url =
            url::Url::parse(&api_url).with_context(|| format!("api_url {api_url}"))?;
        if !matches!(api_url.scheme(), "http" | "https") {
            bail!("api_url must be http or https, not {}", api_url.scheme());
        }
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        let token = match (
            env_token.filter(|t| !t.trim().is_empty()),
            &file.token,
            &file.token_file,
        ) {
            (Some(t), _, _) => Token::new(t).context(TOKEN_ENV)?,
            (None, Some(t), _) => Token::new(t).context("token in desktop.toml")?,
            (None, None, Some(f)) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading the token file {}", f.display()))?;
                Token::new(&text).with_context(|| format!("the token file {}", f.display()))?
            }
            (None, None, None) => bail!(
                "no token: set {TOKEN_ENV}, or token or token_file in desktop.toml \
                 (create one on the web app's \"Tokens and feed\" page)"
            ),
        };
        let state_file = state_file.or_else(default_state_file).context(
            "no place for the state file: set XDG_STATE_HOME or HOME, or pass --state-file",
        )?;
        // Half API Gateway's idle limit; renewal ten minutes before its cap.
        let idle = fmn_inbox::IDLE_TIMEOUT_SECS;
        let cap = fmn_inbox::CONNECTION_MAX_SECS;
        let ping_secs = file.ping_secs.unwrap_or(idle / 2);
        if !(1..=idle - 60).contains(&ping_secs) {
            bail!(
                "ping_secs must be 1 to {} (API Gateway closes a socket idle for {idle} s)",
                idle - 60
            );
        }
        let reconnect_after_secs = file.reconnect_after_secs.unwrap_or(cap - 600);
        if !(10..=cap - 200).contains(&reconnect_after_secs) {
            bail!(
                "reconnect_after_secs must be 10 to {} (API Gateway's cap is {cap} s)",
                cap - 200
            );
        }
        Ok(Config {
            api_url,
            token,
            socket_url: file.socket_url,
            open_command: file.open_command.unwrap_or_else(|| "xdg-open".to_owned()),
            max_backfill_popups: file.max_backfill_popups.unwrap_or(10).clamp(1, 100),
            ping_interval: Duration::from_secs(ping_secs),
            reconnect_after: Duration::from_secs(reconnect_after_secs),
            state_file,
        })
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the configuration holds a token and others may read it: chmod 600 it, or use token_file"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("desktop.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_environment_token_wins_and_the_url_gets_its_slash() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "api_url = \"http://127.0.0.1:8080/fmn\"\ntoken = \"fmn_file\"\n",
        );
        let state = Some(dir.path().join("last"));
        let c = Config::load(Some(&p), None, Some("fmn_env"), state.clone()).unwrap();
        assert_eq!(c.token.secret(), "fmn_env");
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:8080/fmn/");
        assert_eq!(format!("{:?}", c.token), "Token(…)");
        let c = Config::load(Some(&p), None, None, state).unwrap();
        assert_eq!(c.token.secret(), "fmn_file");
        assert_eq!(c.ping_interval, Duration::from_secs(300));
        assert_eq!(c.reconnect_after, Duration::from_secs(6600));
    }

    #[test]
    fn a_token_file_is_read_and_bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "fmn_secret\n").unwrap();
        let state = Some(dir.path().join("last"));
        let p = write(
            dir.path(),
            &format!(
                "api_url = \"https://fmn.example.org\"\ntoken_file = \"{}\"\n",
                dir.path().join("tok").display()
            ),
        );
        let c = Config::load(Some(&p), None, None, state.clone()).unwrap();
        assert_eq!(c.token.secret(), "fmn_secret");
        for bad in [
            "api_url = \"ftp://x\"\ntoken = \"fmn_x\"\n",
            "api_url = \"http://x\"\n",
            "api_url = \"http://x\"\ntoken = \"fmn_x\"\nping_secs = 900\n",
            "api_url = \"http://x\"\ntoken = \"fmn_x\"\nunknown = 1\n",
            "api_url = \"http://x\"\ntoken = \"a b\"\n",
        ] {
            let p = write(dir.path(), bad);
            assert!(
                Config::load(Some(&p), None, None, state.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
