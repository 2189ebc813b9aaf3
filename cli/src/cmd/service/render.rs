//! What `service ls`, `service ps` and `service inspect --pretty` print, with Docker's columns,
//! order and wording (`cli/command/service/formatter.go`, `cli/command/task/print.go`,
//! `formatter.go`). Pure: ages are computed from the manager's `now` sent with the data.

use super::parse::{bytes_string, cpus_string, go_duration_string};
use crate::cmd::api::table;
use reconciler_api::services::{ServiceInfo, TaskView};
use reconciler_types::{MonoTime, PortConfig, PortProtocol, PublishMode, ServiceMode, TaskState};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::time::Duration;

/// The length Docker truncates ids to.
const ID_LEN: usize = 12;
/// The length Docker truncates a task's error to in `service ps`.
const ERR_LEN: usize = 30;

/// An id as Docker shows it in tables (its first 12 characters).
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(ID_LEN).map_or(id, |(i, _)| &id[..i])
}

/// Docker's `HumanDuration` ("Less than a second", "5 seconds", "About a minute", ...).
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match () {
        () if seconds < 1 => "Less than a second".into(),
        () if seconds == 1 => "1 second".into(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// Docker's `PrettyPrint` of a state: its name with the first letter capitalized.
pub fn pretty_state(state: TaskState) -> String {
    let name = state.as_str();
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Compares strings as Docker's `sortorder.NaturalLess`: runs of digits by their value.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let by_value = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                let ord = by_value.then_with(|| da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|c| **c == b'0').count();
    &digits[zeros..]
}

/// An image as Docker's tables show it: the digest dropped when there is a tag, and Docker
/// Hub's `docker.io/library/` prefix dropped.
pub fn familiar_image(image: &str) -> String {
    let without_digest = match image.split_once('@') {
        Some((named, _)) if named.rsplit('/').next().is_some_and(|last| last.contains(':')) => {
            named
        }
        _ => image,
    };
    let short = without_digest.strip_prefix("docker.io/").unwrap_or(without_digest);
    short.strip_prefix("library/").unwrap_or(short).to_owned()
}

fn protocol_name(p: PortProtocol) -> &'static str {
    match p {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
        PortProtocol::Sctp => "sctp",
    }
}

/// The PORTS column of `service ls`: ingress ports, consecutive ones grouped into ranges
/// (`*:8080-8081->80-81/tcp`), as Docker's `serviceContext.Ports`.
pub fn ls_ports(ports: &[PortConfig]) -> String {
    let mut sorted: Vec<&PortConfig> =
        ports.iter().filter(|p| p.publish_mode == PublishMode::Ingress).collect();
    sorted.sort_by(|a, b| {
        protocol_name(a.protocol)
            .cmp(protocol_name(b.protocol))
            .then(a.published_port.cmp(&b.published_port))
    });
    let mut out: Vec<String> = Vec::new();
    // (published start, published end, target start, target end, protocol)
    let mut current: Option<(u32, u32, u32, u32, PortProtocol)> = None;
    for p in sorted {
        if let Some((_, pe, ts, te, proto)) = current.as_mut() {
            let is_range = *te != *ts;
            let overlaps = p.target_port <= *te;
            // Go's unsigned subtraction wraps: a port below the range's end starts a new one.
            let apart =
                p.published_port.wrapping_sub(*pe) > 1 || p.target_port.wrapping_sub(*te) > 1;
            if p.protocol == *proto && !apart && !(is_range && overlaps) {
                *pe = p.published_port;
                *te = p.target_port;
                continue;
            }
        }
        if let Some(range) = current.take() {
            out.push(port_range(range));
        }
        current =
            Some((p.published_port, p.published_port, p.target_port, p.target_port, p.protocol));
    }
    out.extend(current.map(port_range));
    out.join(", ")
}

fn port_range((ps, pe, ts, te, proto): (u32, u32, u32, u32, PortProtocol)) -> String {
    let side = |a: u32, b: u32| if b > a { format!("{a}-{b}") } else { a.to_string() };
    format!("*:{}->{}/{}", side(ps, pe), side(ts, te), protocol_name(proto))
}

/// Docker's MODE column.
pub fn mode_name(mode: &ServiceMode) -> &'static str {
    match mode {
        ServiceMode::Replicated { .. } => "replicated",
        ServiceMode::Global => "global",
    }
}

/// Docker's REPLICAS column (`2/3`, `3/3 (max 1 per node)`).
pub fn replicas_cell(s: &ServiceInfo) -> String {
    let status = s.status.unwrap_or_default();
    let counts = format!("{}/{}", status.running_tasks, status.desired_tasks);
    match (&s.spec.mode, s.spec.task_template.placement.max_replicas) {
        (ServiceMode::Replicated { .. }, max) if max > 0 => {
            format!("{counts} (max {max} per node)")
        }
        _ => counts,
    }
}

/// The `service ls` table (ID NAME MODE REPLICAS IMAGE PORTS), sorted by name.
pub fn service_table(services: &[ServiceInfo]) -> String {
    let mut sorted: Vec<&ServiceInfo> = services.iter().collect();
    sorted.sort_by(|a, b| natural_cmp(&a.spec.name, &b.spec.name));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|s| {
            vec![
                short_id(s.id.as_str()).to_owned(),
                s.spec.name.clone(),
                mode_name(&s.spec.mode).to_owned(),
                replicas_cell(s),
                familiar_image(&s.spec.task_template.container_spec.image),
                ls_ports(&s.endpoint_ports),
            ]
        })
        .collect();
    table(&["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], &rows)
}

/// How `service ps` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct PsOptions {
    /// Full ids, images and errors (`--no-trunc`).
    pub no_trunc: bool,
    /// Service and node ids instead of names (`--no-resolve`).
    pub no_resolve: bool,
}

/// One task with the name `service ps` gives it.
struct Row<'a> {
    name: String,
    view: &'a TaskView,
}

/// The task's name: `<service>.<slot>`, or `<service>.<node id>` for a global task.
fn task_name(service: &str, view: &TaskView) -> String {
    let t = &view.task;
    match (t.slot, &t.node_id) {
        (0, Some(node)) => format!("{service}.{node}"),
        (0, None) => format!("{service}.{}", t.id),
        (slot, _) => format!("{service}.{slot}"),
    }
}

/// The `service ps` table: ID NAME IMAGE NODE DESIRED STATE CURRENT STATE ERROR PORTS, tasks of
/// a slot together, the newest first and the older ones indented with ` \_ `.
pub fn task_table(services: &[(&ServiceInfo, &[TaskView])], now: MonoTime, o: PsOptions) -> String {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (service, tasks) in services {
        let key = if o.no_resolve { service.id.to_string() } else { service.spec.name.clone() };
        rows.extend(tasks.iter().map(|view| Row { name: task_name(&key, view), view }));
    }
    // Docker sorts by name, then the most recently created first; task ids grow with creation.
    rows.sort_by(|a, b| {
        natural_cmp(&a.name, &b.name)
            .then_with(|| natural_cmp(b.view.task.id.as_str(), a.view.task.id.as_str()))
    });
    let mut previous = String::new();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let indent = if row.name == previous { " \\_ " } else { "" };
            previous.clone_from(&row.name);
            task_cells(row, indent, now, o)
        })
        .collect();
    let header =
        ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"];
    table(&header, &cells)
}

fn task_cells(row: &Row<'_>, indent: &str, now: MonoTime, o: PsOptions) -> Vec<String> {
    let t = &row.view.task;
    let id = if o.no_trunc { t.id.to_string() } else { short_id(t.id.as_str()).to_owned() };
    let image = &t.spec.container_spec.image;
    let image = if o.no_trunc { image.clone() } else { familiar_image(image) };
    let node = match (&t.node_id, o.no_resolve) {
        (Some(id), true) => id.to_string(),
        _ => row.view.node.clone(),
    };
    let age = human_duration(now.saturating_since(t.status.timestamp)).to_lowercase();
    let current = format!("{} {age} ago", pretty_state(t.status.state));
    vec![
        id,
        format!("{indent}{}", row.name),
        image,
        node,
        pretty_state(t.desired_state),
        current,
        error_cell(&t.status.err, o.no_trunc),
        task_ports(row.view),
    ]
}

/// Docker's ERROR cell: quoted, and cut to 30 characters with an ellipsis unless `--no-trunc`.
pub fn error_cell(err: &str, no_trunc: bool) -> String {
    if err.is_empty() {
        return String::new();
    }
    let shown = if no_trunc || err.chars().count() <= ERR_LEN {
        err.to_owned()
    } else {
        err.chars().take(ERR_LEN - 1).collect::<String>() + "…"
    };
    format!("\"{shown}\"")
}

fn task_ports(view: &TaskView) -> String {
    let ports: Vec<String> = view
        .ports
        .iter()
        .map(|p| format!("*:{}->{}/{}", p.published_port, p.target_port, protocol_name(p.protocol)))
        .collect();
    ports.join(",")
}

/// `service inspect --pretty`, after Docker's template.
pub fn pretty(s: &ServiceInfo, now: MonoTime) -> String {
    let mut out = String::new();
    let spec = &s.spec;
    let _ = writeln!(out, "\nID:\t\t{}\nName:\t\t{}", s.id, spec.name);
    if !spec.labels.is_empty() {
        out.push_str("Labels:\n");
        for (k, v) in &spec.labels {
            let _ =
                writeln!(out, " {k}{}", if v.is_empty() { String::new() } else { format!("={v}") });
        }
    }
    match spec.mode {
        ServiceMode::Global => out.push_str("Service Mode:\tGlobal\n"),
        ServiceMode::Replicated { replicas } => {
            let _ = writeln!(out, "Service Mode:\tReplicated\n Replicas:\t{replicas}");
        }
    }
    if let Some(u) = &s.update_status {
        let _ = writeln!(out, "UpdateStatus:\n State:\t\t{}", u.state);
        if let Some(at) = u.started_at {
            let _ = writeln!(out, " Started:\t{} ago", human_duration(now.saturating_since(at)));
        }
        if let Some(at) = u.completed_at {
            let _ = writeln!(out, " Completed:\t{} ago", human_duration(now.saturating_since(at)));
        }
        let _ = writeln!(out, " Message:\t{}", u.message);
    }
    pretty_placement(&mut out, spec);
    pretty_rollout(&mut out, "UpdateConfig", "Update order:      ", &spec.update_config);
    pretty_rollout(&mut out, "RollbackConfig", "Rollback order:    ", &spec.rollback_config);
    pretty_container(&mut out, spec);
    let mode = match spec.endpoint_spec.mode {
        reconciler_types::EndpointMode::Vip => "vip",
        reconciler_types::EndpointMode::Dnsrr => "dnsrr",
    };
    let _ = writeln!(out, "Endpoint Mode:\t{mode}");
    if !s.endpoint_ports.is_empty() {
        out.push_str("Ports:\n");
        for p in &s.endpoint_ports {
            let mode = match p.publish_mode {
                PublishMode::Ingress => "ingress",
                PublishMode::Host => "host",
            };
            let _ = writeln!(
                out,
                " PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {mode}",
                p.published_port,
                protocol_name(p.protocol),
                p.target_port
            );
        }
    }
    pretty_health(&mut out, spec.task_template.container_spec.healthcheck.as_ref());
    out
}

fn pretty_placement(out: &mut String, spec: &reconciler_types::ServiceSpec) {
    let p = &spec.task_template.placement;
    out.push_str("Placement:\n");
    if !p.constraints.is_empty() {
        let _ = writeln!(out, " Constraints:\t[{}]", p.constraints.join(" "));
    }
    if !p.preferences.is_empty() {
        let prefs: Vec<String> =
            p.preferences.iter().map(|x| format!("Spread={}", x.spread)).collect();
        let _ = writeln!(out, " Preferences:   [{}]", prefs.join(" "));
    }
    if p.max_replicas > 0 {
        let _ = writeln!(out, " Max Replicas Per Node:   {}", p.max_replicas);
    }
}

fn pretty_rollout(out: &mut String, title: &str, order: &str, u: &reconciler_types::UpdateConfig) {
    let action = match u.failure_action {
        reconciler_types::FailureAction::Pause => "pause",
        reconciler_types::FailureAction::Continue => "continue",
        reconciler_types::FailureAction::Rollback => "rollback",
    };
    let order_name = match u.order {
        reconciler_types::UpdateOrder::StopFirst => "stop-first",
        reconciler_types::UpdateOrder::StartFirst => "start-first",
    };
    let _ = writeln!(out, "{title}:\n Parallelism:\t{}", u.parallelism);
    if u.delay > Duration::ZERO {
        let _ = writeln!(out, " Delay:\t\t{}", go_duration_string(u.delay));
    }
    let _ = writeln!(out, " On failure:\t{action}");
    let _ = writeln!(out, " Monitoring Period: {}", go_duration_string(u.monitor));
    let _ = writeln!(out, " Max failure ratio: {}\n {order}{order_name}", u.max_failure_ratio);
}

fn pretty_container(out: &mut String, spec: &reconciler_types::ServiceSpec) {
    let c = &spec.task_template.container_spec;
    let _ = writeln!(out, "ContainerSpec:\n Image:\t\t{}", c.image);
    if !c.command.is_empty() {
        let _ = writeln!(out, " Command:\t{}", c.command.join(" "));
    }
    if !c.args.is_empty() {
        let _ = writeln!(out, " Args:\t\t{} ", c.args.join(" "));
    }
    if !c.env.is_empty() {
        let _ = writeln!(out, " Env:\t\t{} ", c.env.join(" "));
    }
    if !c.dir.is_empty() {
        let _ = writeln!(out, " Dir:\t\t{}", c.dir);
    }
    if let Some(init) = c.init {
        let _ = writeln!(out, " Init:\t\t{init}");
    }
    if !c.user.is_empty() {
        let _ = writeln!(out, " User: {}", c.user);
    }
    for (title, refs) in [
        ("Configs", c.configs.iter().map(|r| (&r.target, &r.config_name)).collect::<Vec<_>>()),
        ("Secrets", c.secrets.iter().map(|r| (&r.target, &r.secret_name)).collect()),
    ] {
        if !refs.is_empty() {
            let _ = writeln!(out, "{title}:");
            for (target, source) in refs {
                let _ = writeln!(out, " Target:\t{target}\n  Source:\t{source}");
            }
        }
    }
    pretty_resources(out, &spec.task_template.resources);
}

fn pretty_resources(out: &mut String, r: &reconciler_types::Resources) {
    let (res, lim) = (&r.reservations, &r.limits);
    if res.nano_cpus > 0 || res.memory_bytes > 0 || lim.nano_cpus > 0 || lim.memory_bytes > 0 {
        out.push_str("Resources:\n");
        for (title, cpu, mem) in [
            (" Reservations:", res.nano_cpus, res.memory_bytes),
            (" Limits:", lim.nano_cpus, lim.memory_bytes),
        ] {
            if cpu > 0 || mem > 0 {
                let _ = writeln!(out, "{title}");
            }
            if cpu > 0 {
                let _ = writeln!(out, "  CPU:\t\t{}", cpus_string(cpu));
            }
            if mem > 0 {
                let _ = writeln!(out, "  Memory:\t{}", bytes_string(mem));
            }
        }
    }
}

fn pretty_health(out: &mut String, health: Option<&reconciler_types::HealthConfig>) {
    if let Some(h) = health {
        let d = |v: Option<Duration>| go_duration_string(v.unwrap_or_default());
        let _ = writeln!(
            out,
            " Healthcheck:\n  Interval = {}\n  Retries = {}\n  StartPeriod =\t{}\n  Timeout =\t{}",
            d(h.interval),
            h.retries.unwrap_or(0),
            d(h.start_period),
            d(h.timeout)
        );
        if !h.test.is_empty() {
            out.push_str("  Tests:\n");
            for t in &h.test {
                let _ = writeln!(out, "\t Test = {t}");
            }
        }
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
