//! Serde helpers that write durations as whole nanoseconds, as the Docker Engine API does.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Serializes a `Duration` as a `u64` count of nanoseconds (saturating).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Reads a `u64` count of nanoseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_nanos(u64::deserialize(d)?))
}

/// The same for `Option<Duration>`.
pub mod option {
    use super::*;

    /// Serializes `Some(d)` as nanoseconds and `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads nanoseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_nanos))
    }
}
