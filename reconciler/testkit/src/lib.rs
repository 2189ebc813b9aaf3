//! Support for process-level tests and benchmarks, linked only as a dev-dependency (and by the
//! benchmark programs), never by the daemon:
//!
//! - [`harness`]: real `flotilla manager` processes on loopback ports (start a cluster, find
//!   the leader, `kill -9` one, restart it from its data folder);
//! - [`agent_process`]: real `flotilla agent` processes (process runtime) that join such a
//!   cluster, and whose tasks are killed with them;
//! - [`fake_agent`]: nodes that speak the real dispatcher protocol and play their tasks'
//!   states from a behaviour instead of running them.

pub mod agent_process;
pub mod fake_agent;
pub mod harness;

pub use agent_process::AgentProcess;
pub use fake_agent::{Behaviour, FakeAgent, FakeNode, Run, Seen};
pub use harness::{HarnessError, ManagerProcess, ProcessCluster};
