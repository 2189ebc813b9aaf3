use super::*;
use reconciler_types::{ConfigReference, SecretReference, ServiceId};

struct Files;

impl Sources for Files {
    fn config(&self, name: &str) -> Option<Vec<u8>> {
        Some(format!("config {name}").into_bytes())
    }
    fn secret(&self, name: &str) -> Option<Vec<u8>> {
        (name != "missing").then(|| format!("secret {name}").into_bytes())
    }
    fn describe(&self, task: &Task) -> TaskAssignment {
        TaskAssignment {
            task: task.clone(),
            service_name: "web".into(),
            service_labels: BTreeMap::new(),
            endpoint: Default::default(),
        }
    }
}

/// The incremental answer after `tasks` (the node's tasks now) were all touched, and every
/// task the set held (a held task missing from `tasks` is gone).
fn after(set: &mut AssignmentSet, tasks: &[Task]) -> Option<Assignments> {
    let held: Vec<TaskId> = set.tasks.keys().cloned().collect();
    set.touch(held.into_iter().chain(tasks.iter().map(|t| t.id.clone())));
    set.incremental(|id| tasks.iter().find(|t| &t.id == id), &Files)
}

fn task(id: &str, state: TaskState, secrets: &[&str], configs: &[&str]) -> Task {
    let mut t = Task {
        id: TaskId::new(id),
        service_id: ServiceId::new("s"),
        slot: 1,
        spec_version: 1,
        desired_state: TaskState::Running,
        ..Task::default()
    };
    t.status.state = state;
    let c = &mut t.spec.container_spec;
    c.secrets = secrets
        .iter()
        .map(|s| SecretReference { secret_name: (*s).into(), ..Default::default() })
        .collect();
    c.configs = configs
        .iter()
        .map(|s| ConfigReference { config_name: (*s).into(), ..Default::default() })
        .collect();
    t
}

/// Each change as `update task t1` / `remove secret s` / `update secret s=<content>`.
fn lines(a: &Assignments) -> Vec<String> {
    a.changes
        .iter()
        .map(|c| match c {
            AssignmentChange::Update { assignment: Assignment::Task(t) } => {
                format!("update task {} {}", t.task.id, t.task.desired_state)
            }
            AssignmentChange::Update { assignment: Assignment::Config(f) } => {
                format!("update config {}={}", f.name, String::from_utf8_lossy(&f.data))
            }
            AssignmentChange::Update { assignment: Assignment::Secret(f) } => {
                format!("update secret {}={}", f.name, String::from_utf8_lossy(&f.data))
            }
            AssignmentChange::Remove { item: AssignmentRef::Task { id } } => {
                format!("remove task {id}")
            }
            AssignmentChange::Remove { item: AssignmentRef::Config { name } } => {
                format!("remove config {name}")
            }
            AssignmentChange::Remove { item: AssignmentRef::Secret { name } } => {
                format!("remove secret {name}")
            }
        })
        .collect()
}

#[test]
fn a_complete_set_holds_assigned_tasks_after_exactly_the_files_they_use() {
    let tasks = [
        task("t1", TaskState::Assigned, &["db"], &["conf"]),
        task("t2", TaskState::Pending, &["other"], &[]),
        task("t3", TaskState::Running, &["db"], &[]),
    ];
    let mut set = AssignmentSet::default();
    let a = set.complete(tasks.iter(), &Files);
    assert_eq!((a.kind, a.applies_to, a.generation), (AssignmentsKind::Complete, 0, 1));
    assert_eq!(
        lines(&a),
        [
            "update config conf=config conf",
            "update secret db=secret db",
            "update task t1 running",
            "update task t3 running",
        ]
    );
}

#[test]
fn reported_states_are_not_echoed_and_managers_changes_are_sent() {
    let mut tasks = [task("t1", TaskState::Assigned, &[], &[])];
    let mut set = AssignmentSet::default();
    set.complete(tasks.iter(), &Files);
    assert!(after(&mut set, &tasks).is_none(), "nothing changed");
    tasks[0].status.state = TaskState::Running;
    assert!(after(&mut set, &tasks).is_none(), "the agent's own report");
    tasks[0].desired_state = TaskState::Shutdown;
    let a = after(&mut set, &tasks).unwrap();
    assert_eq!((a.kind, a.applies_to, a.generation), (AssignmentsKind::Incremental, 1, 2));
    assert_eq!(lines(&a), ["update task t1 shutdown"]);
}

#[test]
fn a_secret_leaves_the_node_when_its_last_user_ends_or_goes() {
    let mut tasks = vec![
        task("t1", TaskState::Running, &["db"], &[]),
        task("t2", TaskState::Running, &["db", "api"], &[]),
    ];
    let mut set = AssignmentSet::default();
    set.complete(tasks.iter(), &Files);
    tasks[0].status.state = TaskState::Failed;
    assert!(after(&mut set, &tasks).is_none(), "t2 still uses db");
    tasks.remove(1);
    let a = after(&mut set, &tasks).unwrap();
    assert_eq!(lines(&a), ["remove task t2", "remove secret db", "remove secret api"]);
}

#[test]
fn a_new_task_brings_only_the_files_the_node_does_not_hold() {
    let mut tasks = vec![task("t1", TaskState::Running, &["db"], &[])];
    let mut set = AssignmentSet::default();
    set.complete(tasks.iter(), &Files);
    tasks.push(task("t2", TaskState::Assigned, &["db", "missing"], &["conf"]));
    let a = after(&mut set, &tasks).unwrap();
    assert_eq!(lines(&a), ["update config conf=config conf", "update task t2 running"]);
}

#[test]
fn a_task_first_seen_after_it_ended_brings_no_files() {
    let tasks = [task("t1", TaskState::Failed, &["db"], &[])];
    let mut set = AssignmentSet::default();
    assert_eq!(lines(&set.complete(tasks.iter(), &Files)), ["update task t1 running"]);
}

#[test]
fn an_incremental_answer_looks_only_at_the_tasks_touched_since_the_last() {
    let mut tasks =
        [task("t1", TaskState::Assigned, &[], &[]), task("t2", TaskState::Assigned, &[], &[])];
    let mut set = AssignmentSet::default();
    set.complete(tasks.iter(), &Files);
    tasks[0].desired_state = TaskState::Shutdown;
    tasks[1].desired_state = TaskState::Shutdown;
    let current = |id: &TaskId| tasks.iter().find(|t| &t.id == id);
    assert!(set.incremental(current, &Files).is_none(), "nothing touched: nothing looked at");
    set.touch([TaskId::new("t2")]);
    let a = set.incremental(current, &Files).unwrap();
    assert_eq!(lines(&a), ["update task t2 shutdown"]);
    set.touch([TaskId::new("t1")]);
    let gone = set.incremental(|_| None, &Files).unwrap();
    assert_eq!(lines(&gone), ["remove task t1"], "touched and no longer the node's");
    assert!(!set.is_touched());
}
