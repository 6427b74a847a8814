//! The subcommands that are not the daemon.

pub mod backfill;
pub mod demo;
pub mod oneshot;
pub mod output;
pub mod query;
pub mod render;
