//! One moto server for every test process of a run. nextest runs each test in a process of
//! its own, so the server outlives them: each process leaves a lease file naming its pid,
//! the first to find no live server starts one under [`WATCHDOG`], and the last lease to go
//! stops it. Starting moto costs about two seconds of CPU; one start serves the whole run.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::{EmulatorError, free_port, moto_ready_url, ready};

/// Runs moto (`$3 $4`, on 127.0.0.1 port `$2`) and stops it once no lease file in `$1` has
/// named a live process for 30 s; a server no longer advertised keeps serving while any
/// lease is live (a test may have just read its endpoint).
const WATCHDOG: &str = r#"
dir=$1 port=$2 python=$3 server=$4
"$python" "$server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill "$moto" 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM
live() {
    found=1
    for lease in "$dir"/lease-*; do
        [ -e "$lease" ] || continue
        if kill -0 "${lease##*-}" 2>/dev/null; then found=0; else rm -f "$lease"; fi
    done
    return $found
}
idle=0
while kill -0 "$moto" 2>/dev/null && [ "$idle" -lt 30 ]; do
    sleep 1
    if live; then idle=0; else idle=$((idle + 1)); fi
    if [ "$idle" -ge 30 ]; then
        if [ "$(cat "$dir/endpoint" 2>/dev/null)" = "http://127.0.0.1:$port" ]; then
            rm -f "$dir/endpoint"
        fi
        if live; then idle=0; fi
    fi
done
"#;

/// The moto server shared through the lease files in a directory (see the module doc).
#[derive(Debug, Clone)]
pub struct SharedMoto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl SharedMoto {
    /// The server shared through `dir` (created if missing), started from the project venv
    /// under `root` when none is live. This process holds a lease from now until it exits.
    pub async fn get(root: &Path, dir: &Path) -> Result<SharedMoto, EmulatorError> {
        let installed = root.join(".venv/bin/moto_server");
        if !installed.exists() {
            return Err(EmulatorError::NotInstalled(installed.display().to_string()));
        }
        std::fs::create_dir_all(dir)?;
        // The lease first: a server found after it is not stopped under this process.
        static LEASE: OnceLock<()> = OnceLock::new();
        let lease = dir.join(format!("lease-{}", std::process::id()));
        if LEASE.get().is_none() {
            std::fs::write(&lease, "")?;
            let _ = LEASE.set(());
        }
        let endpoint_file = dir.join("endpoint");
        let claim = dir.join("starting");
        for _ in 0..600 {
            if let Ok(endpoint) = std::fs::read_to_string(&endpoint_file) {
                if ready(&moto_ready_url(&endpoint), 3).await {
                    return Ok(SharedMoto { endpoint });
                }
                // Left by a server that is gone.
                if std::fs::read_to_string(&endpoint_file).ok() == Some(endpoint) {
                    let _ = std::fs::remove_file(&endpoint_file);
                }
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&claim)
            {
                Ok(_) => {
                    let started = start(root, dir).await;
                    if let Ok(endpoint) = &started {
                        let tmp = dir.join(format!("endpoint.{}", std::process::id()));
                        std::fs::write(&tmp, endpoint)?;
                        std::fs::rename(&tmp, &endpoint_file)?;
                    }
                    let _ = std::fs::remove_file(&claim);
                    return Ok(SharedMoto { endpoint: started? });
                }
                Err(_) => {
                    // Another process is starting one; a claim left by one that died expires.
                    if age(&claim) > Duration::from_secs(60) {
                        let _ = std::fs::remove_file(&claim);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(EmulatorError::NotReady(format!(
            "a shared moto server in {}",
            dir.display()
        )))
    }
}

/// Starts moto under the watchdog, detached (it outlives this process) in a process group
/// of its own (the caller's may be killed); returns its endpoint once it answers.
async fn start(root: &Path, dir: &Path) -> Result<String, EmulatorError> {
    use std::os::unix::process::CommandExt as _;
    let port = free_port()?;
    let detached = std::process::Command::new("sh")
        .args(["-c", r#"sh -c "$0" watchdog "$@" &"#, WATCHDOG])
        .arg(dir)
        .arg(port.to_string())
        .arg(root.join(".venv/bin/python"))
        .arg(root.join("localstack/moto_server.py"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .status()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    if detached.success() && ready(&moto_ready_url(&endpoint), 300).await {
        Ok(endpoint)
    } else {
        Err(EmulatorError::NotReady(format!(
            "moto server (under its watchdog) on {endpoint}"
        )))
    }
}

fn age(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}
