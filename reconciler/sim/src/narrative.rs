//! The simulator's narrative: one line per store command that changed something, `t=<secs>
//! <what>`, so tests can assert a timeline of what the product wrote.

use reconciler_orchestrator::state::StoreCommand;
use reconciler_types::MonoTime;

/// `t=12` or `t=12.500`.
pub fn fmt_time(t: MonoTime) -> String {
    let ms = t.0.as_millis();
    if ms.is_multiple_of(1000) {
        format!("t={}", ms / 1000)
    } else {
        format!("t={}.{:03}", ms / 1000, ms % 1000)
    }
}

/// One of the orchestrator's decisions as a narrative line (without the time); `None` for the
/// bookkeeping that is not narrated (rollout runs).
pub fn describe(cmd: &StoreCommand) -> Option<String> {
    use StoreCommand as C;
    let line = match cmd {
        C::PutTask { task: t, .. } => {
            let at = t.node_id.as_ref().map(|n| format!(" on {n}")).unwrap_or_default();
            format!(
                "create {} {} slot {}{at} v{} {}",
                t.id, t.service_id, t.slot, t.spec_version, t.desired_state
            )
        }
        C::SetTaskDesiredState { id, state, .. } => format!("desire {id} {state}"),
        C::AssignTask { id, node, .. } => format!("assign {id} {node}"),
        C::SetTaskStatus { id, status } if status.err.is_empty() => {
            format!("mark {id} {}", status.state)
        }
        C::SetTaskStatus { id, status } => format!("mark {id} {}: {}", status.state, status.err),
        C::RemoveTask { id, .. } => format!("delete {id}"),
        C::SetUpdateStatus { service, status: Some(s) } => {
            format!("status {service} {}: {}", s.state, s.message)
        }
        C::SetUpdateStatus { service, status: None } => format!("status {service} nil"),
        C::AutoRollback { service, status } => {
            format!("rollback {service} {}: {}", status.state, status.message)
        }
        C::DelayStart { task, delay } => {
            format!("hold {task} until {}", fmt_time(delay.not_before))
        }
        C::ClearDelay { task } => format!("release {task}"),
        C::RecordRestart { service, slot, .. } => format!("restart-recorded {service} {slot}"),
        C::PutRollout { .. } | C::RemoveRollout { .. } => return None,
        other => format!("{other:?}"),
    };
    Some(line)
}
