//! Local stand-ins for the services fmn talks to outside AWS, each on 127.0.0.1.

pub mod files;
pub mod irc;
pub mod matrix;
pub mod ntfy;
pub mod oidc;
pub mod webhook;
