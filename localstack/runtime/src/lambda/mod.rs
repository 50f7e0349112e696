//! The Lambda emulation: the functions built from their deployed environment, run
//! in-process from their queues' event-source mappings and on their schedules.

pub mod functions;
pub mod runtime;
pub mod schedule;
