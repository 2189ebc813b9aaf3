//! `flotilla service create | update | ls | ps | inspect | scale | rollback | rm`, with Docker's
//! names, flags, columns and messages.
//!
//! * [`flags`]: the flags; [`parse`]: their value syntaxes; [`spec`]: flags → `ServiceSpec`
//!   (pure, as Docker's CLI builds the spec it sends);
//! * [`render`]: the tables and `inspect --pretty` (pure);
//! * [`progress`]: convergence progress as a pure state machine, [`watch`]: its poll loop.
//! * [`logs`]: `service logs`, streamed through the manager's log broker.
//!
//! Like Docker, `update`, `scale` and `rollback` read the service, change its spec and send it
//! back with the version they read: a concurrent change is refused, never overwritten.

pub mod flags;
pub mod logs;
pub mod parse;
pub mod progress;
pub mod render;
pub mod spec;
pub mod watch;

use super::api::{GlobalArgs, OutputFormat, block_on, print_json};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use flags::{CreateArgs, UpdateArgs, UpdateFlags, WaitFlags};
use reconciler_api::ApiClient;
use reconciler_api::services::{ServiceCreated, ServiceInfo, ServiceTasks};
use reconciler_types::{ServiceMode, TaskState};
use render::PsOptions;
use std::process::ExitCode;

/// `flotilla service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Create a new service
    Create(Box<CreateArgs>),
    /// Update a service
    Update(Box<UpdateArgs>),
    /// List services
    #[command(alias = "list")]
    Ls {
        /// Only display IDs
        #[arg(short, long)]
        quiet: bool,
        /// Filter output based on conditions provided (id=<prefix>, name=<prefix>,
        /// label=<key> or label=<key>=<value>, mode=replicated|global)
        #[arg(short, long = "filter", value_name = "filter")]
        filters: Vec<String>,
    },
    /// List the tasks of one or more services
    Ps(PsArgs),
    /// Display detailed information on one or more services
    Inspect {
        /// Print the information in a human friendly format
        #[arg(long)]
        pretty: bool,
        /// The services (id, name or unique id prefix)
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Scale one or multiple replicated services
    Scale {
        #[command(flatten)]
        wait: WaitFlags,
        /// SERVICE=REPLICAS pairs
        #[arg(required = true, value_name = "SERVICE=REPLICAS")]
        pairs: Vec<String>,
    },
    /// Revert changes to a service's configuration
    Rollback {
        #[command(flatten)]
        wait: WaitFlags,
        /// The service
        service: String,
    },
    /// Fetch the logs of a service or task
    Logs(Box<logs::LogsArgs>),
    /// Remove one or more services
    #[command(alias = "remove")]
    Rm {
        /// The services
        #[arg(required = true)]
        services: Vec<String>,
    },
}

/// `service ps`.
#[derive(Debug, Args)]
struct PsArgs {
    /// Only display task IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    no_resolve: bool,
    /// Filter output based on conditions provided (desired-state=running|shutdown|accepted,
    /// node=<name or id>, id=<prefix>, name=<task name>)
    #[arg(short, long = "filter", value_name = "filter")]
    filters: Vec<String>,
    /// The services
    #[arg(required = true)]
    services: Vec<String>,
}

/// Runs `flotilla service ...`.
pub fn run(args: ServiceArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if let ServiceCommand::Logs(a) = args.command {
        return logs::run(*a, global);
    }
    let client = global.client()?;
    let json = global.output == OutputFormat::Json;
    block_on(async move {
        match args.command {
            ServiceCommand::Create(a) => create(&client, &a, json).await,
            ServiceCommand::Update(a) => update(&client, &a, json).await,
            ServiceCommand::Ls { quiet, filters } => ls(&client, quiet, &filters, json).await,
            ServiceCommand::Ps(a) => ps(&client, &a, json).await,
            ServiceCommand::Inspect { pretty, services } => {
                inspect(&client, &services, pretty).await
            }
            ServiceCommand::Scale { wait, pairs } => scale(&client, &pairs, &wait, json).await,
            ServiceCommand::Rollback { wait, service } => {
                rollback(&client, &service, &wait, json).await
            }
            ServiceCommand::Rm { services } => rm(&client, &services, json).await,
            ServiceCommand::Logs(_) => unreachable_logs(),
        }
    })
}

/// `service logs` runs before the match (it streams); the arm only completes it.
fn unreachable_logs() -> anyhow::Result<ExitCode> {
    bail!("service logs is handled before the other service commands")
}

fn lookup_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Prints what a write answered: Docker prints the service (its id after a create, the name
/// the operator gave otherwise), warnings on stderr.
fn print_written(done: &ServiceCreated, label: &str, json: bool) -> anyhow::Result<()> {
    for w in &done.warnings {
        eprintln!("{w}");
    }
    if json {
        print_json(done)
    } else {
        println!("{label}");
        Ok(())
    }
}

async fn create(client: &ApiClient, a: &CreateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let spec = spec::create_spec(a, lookup_env)?;
    let done = client.create_service(&spec).await?;
    print_written(&done, done.id.as_str(), json)?;
    if !a.wait.detach {
        watch::wait(client, done.id.as_str(), done.id.as_str(), a.wait.quiet, json).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn update(client: &ApiClient, a: &UpdateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let current = client.inspect_service(&a.service).await?.service;
    let done = if a.rollback {
        if a.flags != UpdateFlags::default() {
            bail!("other flags may not be combined with --rollback");
        }
        client.rollback_service(current.id.as_str(), current.version).await?
    } else {
        let mut spec = current.spec.clone();
        spec::update_spec(&a.flags, &mut spec, lookup_env)?;
        client.update_service(current.id.as_str(), current.version, &spec).await?
    };
    print_written(&done, &a.service, json)?;
    if !a.wait.detach {
        watch::wait(client, done.id.as_str(), &a.service, a.wait.quiet, json).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn rollback(
    client: &ApiClient,
    service: &str,
    wait: &WaitFlags,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let current = client.inspect_service(service).await?.service;
    let done = client.rollback_service(current.id.as_str(), current.version).await?;
    print_written(&done, service, json)?;
    if !wait.detach {
        watch::wait(client, done.id.as_str(), service, wait.quiet, json).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps the services that pass `service ls`'s filters (Docker's: every filter must hold).
pub(crate) fn filter_services(
    services: &mut Vec<ServiceInfo>,
    filters: &[String],
) -> anyhow::Result<()> {
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        match key {
            "id" => services.retain(|s| s.id.as_str().starts_with(value)),
            "name" => services.retain(|s| s.spec.name.starts_with(value)),
            "label" => services.retain(|s| match value.split_once('=') {
                Some((k, v)) => s.spec.labels.get(k).is_some_and(|x| x == v),
                None => s.spec.labels.contains_key(value),
            }),
            "mode" => match value {
                "replicated" | "global" => {
                    services.retain(|s| render::mode_name(&s.spec.mode) == value);
                }
                other => bail!("Invalid filter: 'mode'='{other}'"),
            },
            other => bail!("invalid filter '{other}'"),
        }
    }
    Ok(())
}

async fn ls(
    client: &ApiClient,
    quiet: bool,
    filters: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut services = client.services().await?;
    filter_services(&mut services, filters)?;
    if json {
        print_json(&services)?;
    } else if quiet {
        services.iter().for_each(|s| println!("{}", s.id));
    } else {
        println!("{}", render::service_table(&services));
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps the tasks that pass `service ps`'s filters.
pub(crate) fn filter_tasks(answer: &mut ServiceTasks, filters: &[String]) -> anyhow::Result<()> {
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        let keep: Box<dyn Fn(&reconciler_api::services::TaskView) -> bool> = match key {
            "desired-state" => {
                let wanted = match value {
                    "running" => TaskState::Running,
                    "shutdown" => TaskState::Shutdown,
                    "accepted" => TaskState::Accepted,
                    other => bail!("invalid filter 'desired-state={other}'"),
                };
                Box::new(move |v| v.task.desired_state == wanted)
            }
            "node" => Box::new(move |v| {
                v.node == value || v.task.node_id.as_ref().is_some_and(|n| n.as_str() == value)
            }),
            "id" => Box::new(move |v| v.task.id.as_str().starts_with(value)),
            "name" => {
                let service = answer.service.spec.name.clone();
                Box::new(move |v| format!("{service}.{}", v.task.slot).starts_with(value))
            }
            other => bail!("invalid filter '{other}'"),
        };
        answer.tasks.retain(|v| keep(v));
    }
    Ok(())
}

async fn ps(client: &ApiClient, a: &PsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut answers = Vec::new();
    let mut missing = Vec::new();
    for s in &a.services {
        match client.service_tasks(s).await {
            Ok(mut answer) => {
                filter_tasks(&mut answer, &a.filters)?;
                answers.push(answer);
            }
            Err(reconciler_api::ClientError::Api(reconciler_api::ApiError::NotFound(_))) => {
                missing.push(format!("no such service: {s}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if answers.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    if json {
        print_json(&answers)?;
    } else if a.quiet {
        answers.iter().flat_map(|x| &x.tasks).for_each(|t| println!("{}", t.task.id));
    } else {
        let now = answers.iter().map(|x| x.now).max().unwrap_or_default();
        let groups: Vec<_> = answers.iter().map(|x| (&x.service, x.tasks.as_slice())).collect();
        let o = PsOptions { no_trunc: a.no_trunc, no_resolve: a.no_resolve };
        println!("{}", render::task_table(&groups, now, o));
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn inspect(
    client: &ApiClient,
    services: &[String],
    pretty: bool,
) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    for s in services {
        found.push(client.inspect_service(s).await.with_context(|| format!("inspect {s}"))?);
    }
    if pretty {
        for f in &found {
            print!("{}", render::pretty(&f.service, f.now));
        }
    } else {
        let list: Vec<_> = found.into_iter().map(|f| f.service).collect();
        print_json(&list)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `SERVICE=REPLICAS` as `docker service scale` does.
fn scale_pair(pair: &str) -> anyhow::Result<(&str, u64)> {
    match pair.split_once('=') {
        Some((name, n)) if !name.is_empty() && !n.is_empty() => {
            let n = n
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}: invalid replicas value {n}: {e}"))?;
            Ok((name, n))
        }
        _ => bail!("invalid scale specifier '{pair}'.\nSee 'flotilla service scale --help'."),
    }
}

async fn scale(
    client: &ApiClient,
    pairs: &[String],
    wait: &WaitFlags,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let parsed: Vec<(&str, u64)> = pairs.iter().map(|p| scale_pair(p)).collect::<Result<_, _>>()?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for (name, replicas) in parsed {
        let result = async {
            let current = client.inspect_service(name).await?.service;
            let mut spec = current.spec.clone();
            match &mut spec.mode {
                ServiceMode::Replicated { replicas: r } => *r = replicas,
                ServiceMode::Global => {
                    bail!("scale can only be used with replicated or replicated-job mode")
                }
            }
            Ok(client.update_service(current.id.as_str(), current.version, &spec).await?)
        };
        match result.await {
            Ok(done) => {
                done.warnings.iter().for_each(|w| eprintln!("{w}"));
                if json {
                    print_json(&done)?;
                } else {
                    println!("{name} scaled to {replicas}");
                }
                scaled.push((name, done.id));
            }
            Err(e) => errors.push(format!("{name}: {e:#}")),
        }
    }
    if !wait.detach {
        for (name, id) in &scaled {
            if let Err(e) = watch::wait(client, id.as_str(), name, wait.quiet, json).await {
                errors.push(format!("{name}: {e:#}"));
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn rm(client: &ApiClient, services: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let mut errors = Vec::new();
    let mut removed = Vec::new();
    for s in services {
        match client.remove_service(s).await {
            Ok(()) => {
                if !json {
                    println!("{s}");
                }
                removed.push(s.clone());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if json {
        print_json(&removed)?;
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(
        id: &str,
        name: &str,
        mode: ServiceMode,
        label: Option<(&str, &str)>,
    ) -> ServiceInfo {
        let mut spec =
            reconciler_types::ServiceSpec { name: name.into(), mode, ..Default::default() };
        spec.labels.extend(label.map(|(k, v)| (k.to_owned(), v.to_owned())));
        ServiceInfo {
            id: reconciler_types::ServiceId::new(id),
            version: 1,
            spec,
            spec_version: 1,
            previous_spec: None,
            previous_spec_version: None,
            update_status: None,
            endpoint_ports: Vec::new(),
            status: None,
        }
    }

    #[test]
    fn ls_filters_are_dockers() {
        let all = vec![
            service("abc1", "web", ServiceMode::Replicated { replicas: 1 }, Some(("team", "a"))),
            service("abd2", "web-admin", ServiceMode::Global, Some(("team", "b"))),
            service("xyz3", "api", ServiceMode::Replicated { replicas: 1 }, None),
        ];
        let names = |filters: &[&str]| {
            let mut s = all.clone();
            let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
            filter_services(&mut s, &filters)
                .map(|()| s.iter().map(|x| x.spec.name.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            names(&["name=web"]).unwrap(),
            ["web", "web-admin"],
            "a name filter is a prefix"
        );
        assert_eq!(names(&["id=ab", "mode=global"]).unwrap(), ["web-admin"]);
        assert_eq!(names(&["label=team"]).unwrap(), ["web", "web-admin"]);
        assert_eq!(names(&["label=team=a"]).unwrap(), ["web"]);
        assert!(names(&["mode=job"]).is_err());
        assert!(names(&["colour=red"]).is_err());
    }

    #[test]
    fn scale_pairs_parse_as_dockers() {
        assert_eq!(scale_pair("web=3").unwrap(), ("web", 3));
        assert!(
            scale_pair("web")
                .unwrap_err()
                .to_string()
                .starts_with("invalid scale specifier 'web'.")
        );
        assert!(
            scale_pair("web=x")
                .unwrap_err()
                .to_string()
                .starts_with("web: invalid replicas value x")
        );
    }
}
