//! `fmn meta` without the CLI: bus messages as JSON lines on stdin, one normalised JSON line
//! per input line on stdout. `cargo run -p fmn-messages --example meta < messages.jsonl`

use std::io::{BufRead, BufWriter, Write};

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        writeln!(out, "{}", fmn_messages::meta_line_json(&line))?;
    }
    out.flush()
}
