//! Message streams on stdin (`fmn meta`, `fmn match`, `fmn explain`): one bad message never
//! stops a stream. Each is reported on stderr with its line number and reason, the stream goes
//! on, and the command ends with the count of what it skipped: exit 0, or an error with
//! `--strict`.

use std::fmt::Display;
use std::io::Write;

use anyhow::Context;

/// The messages of a stream that could not be used, reported as they come and counted.
#[derive(Debug)]
pub(crate) struct Skips {
    command: &'static str,
    strict: bool,
    count: u64,
}

impl Skips {
    /// For the named command; `strict`: fail at the end when anything was skipped.
    pub(crate) fn new(command: &'static str, strict: bool) -> Self {
        Skips {
            command,
            strict,
            count: 0,
        }
    }

    /// Reports line `line` (1-based) as skipped, with why.
    pub(crate) fn skip(&mut self, line: usize, reason: &dyn Display) {
        self.count += 1;
        eprintln!("fmn {}: line {line}: skipped: {reason:#}", self.command);
    }

    /// Ends the stream: the count on stderr when anything was skipped; with `--strict`, an
    /// error (non-zero exit) in that case.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        if self.count > 0 {
            eprintln!(
                "fmn {}: {} message{} skipped",
                self.command,
                self.count,
                if self.count == 1 { "" } else { "s" }
            );
            anyhow::ensure!(!self.strict, "{} message(s) skipped (--strict)", self.count);
        }
        Ok(())
    }
}

/// Normalises one input line (a raw bus message, or an already normalised one).
pub(crate) fn message(line: &str) -> anyhow::Result<fmn_messages::Message> {
    let raw: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
    if let Ok(m) = serde_json::from_value::<fmn_messages::Message>(raw.clone()) {
        return Ok(m);
    }
    Ok(fmn_messages::Catalog::builtin().normalize(&raw)?)
}

/// `fmn meta`: one JSON line out per line in (`{"error": …}` for a bad one, also reported
/// on stderr and counted).
pub(crate) fn run_meta(strict: bool) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut skips = Skips::new("meta", strict);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let json = fmn_messages::meta_line_json(&line);
        if json.starts_with("{\"error\":") {
            let reason = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            skips.skip(n + 1, &reason);
        }
        writeln!(out, "{json}")?;
    }
    out.flush()?;
    skips.finish()
}

/// The messages of `input` for `fmn explain`: the whole input as one JSON message (it may
/// span lines), or else one message per line; bad lines are reported and skipped.
pub(crate) fn explain_inputs(
    input: &str,
    skips: &mut Skips,
) -> Vec<(usize, fmn_messages::Message)> {
    if serde_json::from_str::<serde_json::Value>(input.trim()).is_ok() {
        return match message(input.trim()) {
            Ok(m) => vec![(1, m)],
            Err(e) => {
                skips.skip(1, &e);
                Vec::new()
            }
        };
    }
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match message(line) {
            Ok(m) => out.push((n + 1, m)),
            Err(e) => skips.skip(n + 1, &e),
        }
    }
    out
}
