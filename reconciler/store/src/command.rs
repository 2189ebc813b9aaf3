//! The commands written through Raft and their answers, from the one model of the
//! orchestration core ([`reconciler_orchestrator::state::command`]), re-exported here.

pub use reconciler_orchestrator::state::command::{
    Expect, Fence, RecordKind, Refusal, StoreCommand, StoreResponse,
};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};

/// A command as the Raft log carries it: one shared value, turned into JSON at most once.
///
/// The leader writes a command to its log and then sends it to every follower; a follower
/// reads it from an append and writes it to its log. Carried as a bare [`StoreCommand`],
/// each step cloned or serialized the whole command again (an orchestrator entry holds up to
/// 200 tasks), and that was a fifth of a busy leader's time. A `LogCommand` clones as a
/// reference count and keeps its JSON: serialized once on the leader (for its log, reused by
/// every append), kept as received on a follower.
///
/// It is (de)serialized as JSON only, with exactly the bytes the [`StoreCommand`] gives.
#[derive(Clone)]
pub struct LogCommand {
    command: Arc<StoreCommand>,
    json: Arc<OnceLock<Box<RawValue>>>,
}

impl LogCommand {
    /// A command not yet serialized.
    pub fn new(command: StoreCommand) -> Self {
        LogCommand { command: Arc::new(command), json: Arc::default() }
    }

    /// The command.
    pub fn command(&self) -> &StoreCommand {
        &self.command
    }

    /// The command, shared.
    pub fn shared(&self) -> Arc<StoreCommand> {
        self.command.clone()
    }

    /// The length of its JSON (serialized now if it was not yet), to size the buffers it is
    /// written into.
    ///
    /// # Errors
    /// The command cannot be serialized.
    pub fn encoded_len(&self) -> Result<usize, serde_json::Error> {
        self.json().map(|raw| raw.get().len())
    }

    fn json(&self) -> Result<&RawValue, serde_json::Error> {
        if let Some(raw) = self.json.get() {
            return Ok(raw);
        }
        let raw = serde_json::value::to_raw_value(&*self.command)?;
        // Another clone may have set it meanwhile: both are the same bytes.
        Ok(self.json.get_or_init(|| raw))
    }
}

impl From<StoreCommand> for LogCommand {
    fn from(command: StoreCommand) -> Self {
        LogCommand::new(command)
    }
}

impl std::fmt::Debug for LogCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.command.fmt(f)
    }
}

impl PartialEq for LogCommand {
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command
    }
}

impl Serialize for LogCommand {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().map_err(S::Error::custom)?.serialize(s)
    }
}

impl<'de> Deserialize<'de> for LogCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let command = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        Ok(LogCommand { command: Arc::new(command), json: Arc::new(OnceLock::from(raw)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::ServiceId;

    fn command() -> StoreCommand {
        StoreCommand::RemoveService { id: ServiceId::new("svc-1"), expected: Expect::Version(3) }
    }

    #[test]
    fn a_log_command_is_the_same_json_as_its_command_both_ways() {
        let cmd = command();
        let plain = serde_json::to_string(&cmd).expect("json");
        let logged = LogCommand::new(cmd.clone());
        assert_eq!(serde_json::to_string(&logged).expect("json"), plain);
        // Inside a larger document (an append, a log entry), and read back from one.
        let doc = serde_json::to_string(&vec![logged.clone(), logged]).expect("json");
        assert_eq!(doc, format!("[{plain},{plain}]"));
        let back: Vec<LogCommand> = serde_json::from_str(&doc).expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].command(), &cmd);
        // What was read is written again as it came.
        assert_eq!(serde_json::to_string(&back[1]).expect("json"), plain);
    }

    #[test]
    fn a_malformed_command_is_refused_with_the_reason() {
        let e = serde_json::from_str::<LogCommand>(r#"{"op":"no_such_op","args":{}}"#)
            .expect_err("refused");
        assert!(e.to_string().contains("no_such_op"), "{e}");
        assert!(serde_json::from_str::<LogCommand>("{\"op\":").is_err());
    }
}
