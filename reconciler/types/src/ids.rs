//! Typed identifiers. Each is a newtype so that a node id can never be passed where a task
//! id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a string.
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A node (manager or worker), as Swarm's 25-character node id.
    NodeId
);
string_id!(
    /// A service's cluster-wide id.
    ServiceId
);
string_id!(
    /// A task's cluster-wide id.
    TaskId
);
string_id!(
    /// The name of a stack (a folder of the Git repository, or `docker stack deploy`'s name).
    StackName
);

/// A service named within its stack; Docker names it `<stack>_<service>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    /// The stack the service belongs to.
    pub stack: StackName,
    /// The service's name inside the stack file.
    pub name: String,
}

impl ServiceKey {
    /// A key from a stack and a service name.
    pub fn new(stack: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceKey { stack: StackName(stack.into()), name: name.into() }
    }

    /// The name Docker gives the service: `<stack>_<service>`.
    pub fn full_name(&self) -> String {
        format!("{}_{}", self.stack, self.name)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.stack, self.name)
    }
}

/// A monotonically increasing version number (a Raft log index, a spec version, an
/// assignment generation). Anything stamped with an older generation is stale.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Generation(pub u64);

impl Generation {
    /// The next generation.
    #[must_use]
    pub fn next(self) -> Generation {
        Generation(self.0.saturating_add(1))
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_key_full_name_joins_with_underscore() {
        assert_eq!(ServiceKey::new("shop", "web").full_name(), "shop_web");
    }

    #[test]
    fn generation_next_increments() {
        assert_eq!(Generation(4).next(), Generation(5));
        assert_eq!(Generation(u64::MAX).next(), Generation(u64::MAX));
    }
}
