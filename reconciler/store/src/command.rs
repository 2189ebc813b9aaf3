//! The commands written through Raft and their answers, from the one model of the
//! orchestration core ([`reconciler_orchestrator::state::command`]), re-exported here.

pub use reconciler_orchestrator::state::command::{
    Expect, Fence, RecordKind, Refusal, StoreCommand, StoreResponse,
};
