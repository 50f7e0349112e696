//! What fmn does on the AWS emulator (started by the `fmn-emulator` crate): deploying the
//! stack, reading the emails its SES accepted, and probing whether it can host the stack.

pub mod deploy;
pub mod emails;
mod probe;

pub use probe::{Unfit, lambda_works, unfit_message};
