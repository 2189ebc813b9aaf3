//! One module per command group.

pub mod agent;
pub mod agent_shim;
pub mod api;
pub mod bars;
pub mod ca;
pub mod join_token;
pub mod manager;
pub mod node;
pub mod probe;
pub mod reconcile;
pub mod service;
pub mod source;
pub mod stack;
pub mod state;
pub mod up;
