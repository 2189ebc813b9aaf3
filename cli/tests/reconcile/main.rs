//! `flotilla reconcile --dry-run` end to end: real temporary Git repositories with commits,
//! the built binary, golden files for text, markdown and json, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed step should panic

mod scenarios;
mod schema_check;
mod state;
mod support;
