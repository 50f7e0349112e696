//! No build step: this script exists so that the `[build-dependencies]` in Cargo.toml
//! (syn with the test build's features, for artifact reuse) take part in the build.

fn main() {}
