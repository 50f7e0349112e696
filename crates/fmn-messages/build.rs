//! Lists the catalog files so that they are compiled into the crate (`BUILTIN`).

use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            // New files change their directory's mtime, not the parent's.
            println!("cargo::rerun-if-changed={}", path.display());
            toml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or(io::ErrorKind::NotFound)?);
    let dir = root.join("catalog");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    toml_files(&dir, &mut files)?;
    files.sort();
    let mut code = String::from(
        "/// Catalog files compiled into the crate.\nconst BUILTIN: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo::rerun-if-changed={}", f.display());
        let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or(io::ErrorKind::NotFound)?);
    fs::write(out.join("builtin_catalog.rs"), code)
}
