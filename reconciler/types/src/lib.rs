//! Shared, pure domain types of flotilla.
//!
//! Everything that more than one part of flotilla talks about lives here: identifiers,
//! the service spec that `docker stack deploy` would create (and that the planner, the
//! scheduler, the orchestrators and the Raft store all use), nodes, tasks and their
//! Swarm-ordered states, and time as data (`MonoTime`).
//!
//! ```text
//!  schema (stack files) ──convert──► ServiceSpec ──► planner / orchestrators / store
//!                                        │
//!                     Node, Task ◄───────┘  (scheduler places Tasks on Nodes)
//! ```
//!
//! The crate is pure: no I/O, no clock, no environment. Every map is a `BTreeMap` so that
//! what is rendered, hashed or compared is deterministic.

pub mod duration_ns;
pub mod ids;
pub mod node;
pub mod rollout_math;
pub mod spec;
pub mod stack;
pub mod task;
pub mod time;
pub mod update_status;

pub use ids::{Generation, NodeId, ServiceId, ServiceKey, StackName, TaskId};
pub use node::{
    Availability, EngineDescription, ManagerStatus, Node, NodeDescription, NodeRole, NodeSpec,
    NodeState, NodeStatus, Platform, Reachability,
};
pub use spec::{
    ConfigReference, ConfigSpec, ContainerSpec, DnsConfig, EndpointMode, EndpointSpec,
    FailureAction, GenericResource, HealthConfig, LogDriver, Mount, MountType, NetworkAttachment,
    NetworkSpec, Placement, PlacementPreference, PortConfig, PortProtocol, PublishMode,
    ResourceLimits, ResourceReservations, Resources, RestartCondition, RestartPolicy,
    SecretReference, SecretSpec, ServiceMode, ServiceSpec, TaskSpec, Ulimit, UpdateConfig,
    UpdateOrder, VolumeSpec,
};
pub use stack::{NAMESPACE_LABEL, StackPolicy, StackSet, StackSpec, SyncPolicy};
pub use task::{Task, TaskState, TaskStatus};
pub use time::{Clock, MonoTime};
pub use update_status::{UpdateState, UpdateStatus};
