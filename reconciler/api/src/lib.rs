//! flotilla's wire: the HTTP/JSON bodies every component exchanges and the typed clients
//! that speak them. The CLI, the agent and the manager all link this crate; it has no daemon
//! dependencies (no axum, redb or openraft), so an agent never builds the manager.
//!
//! ```text
//!   CLI ──ApiClient──► operator API (nodes, services, tokens, state, logs) ─┐
//!                                                                           ├─► manager
//!   agent ──DispatcherClient──► dispatcher (session, heartbeat, long-polled ┘
//!           assignments and routes, batched status, log chunks)
//! ```
//!
//! * [`operator`]: bodies of the operator API; [`dispatcher`]: the agent session protocol
//!   (and why it is long polls); [`mesh`]: the routing table every agent follows;
//!   [`credential`]: a node's own credential; [`services`]: the
//!   service endpoints (and the client's calls to them); [`stacks`]: the stack endpoints;
//!   [`logs`]: the `service logs` stream; [`source`]: the Git source the cluster deploys
//!   from, and the forges' webhook.
//! * [`client`]: [`ApiClient`], [`DispatcherClient`], [`client::join`], [`client::unlock`].
//! * [`error`]: [`ApiError`], the one error a client sees, with its HTTP status.
//! * [`pki`]: joining with a token that pins the cluster CA, certificate renewal.
//! * [`http`]: the HTTP client every component builds, and manager addresses as URLs.

pub mod b64;
pub mod client;
pub mod credential;
pub mod dispatcher;
pub mod error;
pub mod http;
pub mod logs;
pub mod mesh;
pub mod operator;
pub mod pki;
pub mod services;
pub mod source;
pub mod stacks;

pub use client::{ApiClient, ClientError, DispatcherClient, Empty};
pub use credential::NodeCredential;
pub use error::{ApiError, ErrorBody};
