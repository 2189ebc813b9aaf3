//! Compose v3 stack files, loaded exactly as `docker stack config` loads them.

pub mod value;

pub use value::{Map, Value};
