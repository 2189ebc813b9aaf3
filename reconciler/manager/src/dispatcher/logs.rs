//! Log subscriptions: a manager asks for the logs of some tasks of a node
//! ([`LogRoutes::subscribe`]); the subscription rides on the node's next assignments answer;
//! the agent posts [`LogChunk`]s back and they are handed to the subscriber's channel. A
//! subscriber that drops its receiver cancels the subscription (the agent is told to stop).

use reconciler_api::dispatcher::{LogChunk, LogSubscription};
use reconciler_types::NodeId;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Chunks a subscriber may fall behind before the agent's posts wait.
pub const CHUNK_BUFFER: usize = 64;

struct Route {
    node: NodeId,
    subscription: LogSubscription,
    tx: mpsc::Sender<LogChunk>,
    /// The session the subscription was last sent in.
    sent_in: Option<String>,
}

/// Where a chunk goes.
pub enum Delivery {
    /// Send it here (and forget the route when the chunk is the last).
    To(mpsc::Sender<LogChunk>),
    /// Nobody reads it (cancelled, finished, or not this node's).
    Cancelled,
}

/// Open subscriptions by id.
#[derive(Default)]
pub struct LogRoutes {
    routes: BTreeMap<String, Route>,
}

impl LogRoutes {
    /// Opens a subscription on `node`; its chunks arrive on the returned receiver.
    pub fn subscribe(
        &mut self,
        node: NodeId,
        subscription: LogSubscription,
    ) -> mpsc::Receiver<LogChunk> {
        let (tx, rx) = mpsc::channel(CHUNK_BUFFER);
        let id = subscription.id.clone();
        self.routes.insert(id, Route { node, subscription, tx, sent_in: None });
        rx
    }

    /// The subscriptions `node` has not received in `session` yet (all of them when the
    /// answer is complete); they count as sent. Cancelled ones are dropped.
    pub fn take_for(
        &mut self,
        node: &NodeId,
        session: &str,
        complete: bool,
    ) -> Vec<LogSubscription> {
        self.routes.retain(|_, r| !r.tx.is_closed());
        let mut out = Vec::new();
        for r in self.routes.values_mut().filter(|r| &r.node == node) {
            if complete || r.sent_in.as_deref() != Some(session) {
                r.sent_in = Some(session.to_owned());
                out.push(r.subscription.clone());
            }
        }
        out
    }

    /// Whether `node` has subscriptions not yet sent in `session`.
    pub fn has_new(&self, node: &NodeId, session: &str) -> bool {
        self.routes
            .values()
            .any(|r| &r.node == node && !r.tx.is_closed() && r.sent_in.as_deref() != Some(session))
    }

    /// Where a chunk from `node` goes.
    pub fn route(&mut self, node: &NodeId, chunk: &LogChunk) -> Delivery {
        let Some(r) = self.routes.get(&chunk.subscription) else { return Delivery::Cancelled };
        if &r.node != node || r.tx.is_closed() {
            return Delivery::Cancelled;
        }
        let tx = r.tx.clone();
        if chunk.done {
            self.routes.remove(&chunk.subscription);
        }
        Delivery::To(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_api::dispatcher::LogOptions;

    fn sub(id: &str) -> LogSubscription {
        LogSubscription { id: id.into(), tasks: Vec::new(), options: LogOptions::default() }
    }

    fn chunk(id: &str, done: bool) -> LogChunk {
        LogChunk { session: "s".into(), subscription: id.into(), lines: Vec::new(), done }
    }

    #[test]
    fn a_subscription_is_sent_once_per_session_and_routed_only_from_its_node() {
        let mut routes = LogRoutes::default();
        let (n1, n2) = (NodeId::new("n1"), NodeId::new("n2"));
        let mut rx = routes.subscribe(n1.clone(), sub("L1"));
        assert!(routes.has_new(&n1, "s1"));
        assert!(!routes.has_new(&n2, "s1"));
        assert_eq!(routes.take_for(&n1, "s1", false), [sub("L1")]);
        assert!(routes.take_for(&n1, "s1", false).is_empty());
        assert_eq!(routes.take_for(&n1, "s2", false), [sub("L1")], "again in a new session");
        assert!(matches!(routes.route(&n2, &chunk("L1", false)), Delivery::Cancelled));
        let Delivery::To(tx) = routes.route(&n1, &chunk("L1", true)) else { panic!("routed") };
        tx.try_send(chunk("L1", true)).unwrap();
        assert!(rx.try_recv().unwrap().done);
        assert!(matches!(routes.route(&n1, &chunk("L1", false)), Delivery::Cancelled), "done");
    }

    #[test]
    fn dropping_the_receiver_cancels() {
        let mut routes = LogRoutes::default();
        let n1 = NodeId::new("n1");
        drop(routes.subscribe(n1.clone(), sub("L1")));
        assert!(!routes.has_new(&n1, "s1"));
        assert!(matches!(routes.route(&n1, &chunk("L1", false)), Delivery::Cancelled));
        assert!(routes.take_for(&n1, "s1", true).is_empty());
    }
}
