//! `flotilla stack ...`: `config` prints the final stack file exactly as
//! `docker stack config` does; `ls`, `services`, `ps`, `history`, `rollback` and `rm` ask a
//! manager about the stacks it runs ([`remote`]; tables in [`render`]).

pub mod remote;
pub mod render;

use super::api::GlobalArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use schema::load::{Files, LoadError, LoadInput, SourceFile, load};
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// Largest stack file (or env file) flotilla reads.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `flotilla stack`.
#[derive(Debug, Args)]
pub struct StackArgs {
    #[command(subcommand)]
    command: StackCommand,
}

#[derive(Debug, Subcommand)]
enum StackCommand {
    /// Outputs the final config file, after doing merges and interpolations.
    Config(ConfigArgs),
    /// List stacks
    #[command(alias = "list")]
    Ls,
    /// List the services in the stack
    Services(remote::ServicesArgs),
    /// List the tasks in the stack
    Ps(remote::PsArgs),
    /// List the stack's deployments, newest first
    History {
        /// The stack
        stack: String,
    },
    /// Return a stack to an earlier deployment's specs
    Rollback(remote::RollbackArgs),
    /// Remove one or more stacks
    #[command(aliases = ["remove", "down"])]
    Rm(remote::RmArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Path to a Compose file, or "-" to read from stdin.
    #[arg(short = 'c', long = "compose-file", value_name = "FILE")]
    compose_file: Vec<String>,
    /// Skip interpolation and output only merged config.
    #[arg(long)]
    skip_interpolation: bool,
}

/// Runs `flotilla stack ...`.
pub fn run(args: StackArgs, global: &GlobalArgs) -> Result<ExitCode> {
    match args.command {
        StackCommand::Config(c) => config(c),
        StackCommand::Ls => remote::ls(global),
        StackCommand::Services(a) => remote::services(&a, global),
        StackCommand::Ps(a) => remote::ps(&a, global),
        StackCommand::History { stack } => remote::history(&stack, global),
        StackCommand::Rollback(a) => remote::rollback(&a, global),
        StackCommand::Rm(a) => remote::rm(&a, global),
    }
}

/// Reads files from the local filesystem, with a size limit and Go-style error text.
pub struct LocalFiles;

impl Files for LocalFiles {
    fn read(&self, path: &str) -> std::result::Result<Vec<u8>, String> {
        read_limited(Path::new(path))
    }
}

fn read_limited(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("open {shown}: {}", os_error(&e)))?;
    let meta = file.metadata().map_err(|e| format!("stat {shown}: {}", os_error(&e)))?;
    if meta.is_dir() {
        return Err(format!("read {shown}: is a directory"));
    }
    let mut data = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("read {shown}: {}", os_error(&e)))?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "read {shown}: file is larger than flotilla's limit of {} MiB",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    Ok(data)
}

/// The lowercase OS error text Go prints (`no such file or directory`).
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_owned();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

fn read_sources(files: &[String]) -> Result<Vec<SourceFile>, String> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let bytes = if f == "-" {
            let mut data = Vec::new();
            std::io::stdin()
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut data)
                .map_err(|e| format!("read stdin: {e}"))?;
            if data.len() as u64 > MAX_FILE_BYTES {
                return Err("stdin is larger than flotilla's limit of 64 MiB".into());
            }
            data
        } else {
            read_limited(Path::new(f))?
        };
        out.push(SourceFile { filename: f.clone(), bytes });
    }
    Ok(out)
}

fn working_dir(files: &[String]) -> Result<String> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    if files.len() == 1 && files[0] == "-" {
        return Ok(cwd.display().to_string());
    }
    let abs = schema::paths::join(&cwd.display().to_string(), &files[0]);
    let abs = if files[0].starts_with('/') { schema::paths::clean(&files[0]) } else { abs };
    Ok(Path::new(&abs).parent().map_or_else(|| "/".to_owned(), |p| p.display().to_string()))
}

fn config(args: ConfigArgs) -> Result<ExitCode> {
    if args.compose_file.is_empty() {
        eprintln!("Specify a Compose file (with --compose-file)");
        return Ok(ExitCode::from(1));
    }
    let sources = match read_sources(&args.compose_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let input = LoadInput {
        files: sources,
        working_dir: working_dir(&args.compose_file)?,
        env: std::env::vars().collect(),
        skip_interpolation: args.skip_interpolation,
        reader: &LocalFiles,
    };
    let deep = might_nest_deeply(&input.files);
    let result = on_big_stack(deep, || {
        load(&input).map(|l| {
            let out = l.config.to_out();
            let yaml = schema::yaml::emit(&out);
            // Freeing the trees of a large stack is slow and the process is about to end.
            std::mem::forget(out);
            std::mem::forget(l.config);
            (yaml, l.warnings)
        })
    })?;
    match result {
        Ok((yaml, warnings)) => {
            for w in &warnings {
                warn(w);
            }
            let mut out = std::io::stdout().lock();
            out.write_all(yaml.as_bytes()).context("cannot write to stdout")?;
            out.flush().context("cannot write to stdout")?;
            // The process ends right after; freeing a large document only costs time.
            std::mem::forget(yaml);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{}", render_error(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints a warning the way Docker's logger does on a non-terminal.
fn warn(msg: &str) {
    let escaped = msg.replace('\\', "\\\\").replace('"', "\\\"");
    eprintln!("level=warning msg=\"{escaped}\"");
}

/// Docker's message on the first line, then where it is and anything else found.
pub fn render_error(e: &LoadError) -> String {
    let mut s = format!("{}\n", e.message);
    if !e.file.is_empty() {
        let mut at = format!("  in {}", e.file);
        if let Some(line) = e.line {
            at.push_str(&format!(", line {line}"));
        }
        if let Some(path) = &e.path {
            at.push_str(&format!(", at {path}"));
        }
        s.push_str(&at);
        s.push('\n');
    }
    if !e.more.is_empty() {
        s.push_str(&format!("  and {} more problem(s) in the same file:\n", e.more.len()));
        for m in &e.more {
            s.push_str(&format!("  - {m}\n"));
        }
    }
    s
}

/// Whether the files could nest deeper than the main thread's stack comfortably allows
/// (see [`schema::depth`]); an ordinary stack file is loaded without starting a thread.
pub fn might_nest_deeply(files: &[SourceFile]) -> bool {
    const SAFE_ON_MAIN_THREAD: usize = 256;
    files.iter().any(|f| schema::depth::nesting_bound(&f.bytes) > SAFE_ON_MAIN_THREAD)
}

/// Runs `f`, on a thread with a large stack when `deep`: YAML may nest up to 10,000 levels,
/// as Docker allows, and every stage walks the tree recursively.
pub fn on_big_stack<T: Send>(deep: bool, f: impl FnOnce() -> T + Send) -> Result<T> {
    if !deep {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("load".into())
            .stack_size(schema::load::LOADER_STACK_BYTES)
            .spawn_scoped(scope, f)
            .context("cannot start the loader thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("the loader stopped unexpectedly"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        stack: StackArgs,
    }

    fn parse(args: &[&str]) -> StackCommand {
        let all = std::iter::once("stack").chain(args.iter().copied());
        Top::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}")).stack.command
    }

    #[test]
    fn detach_takes_its_value_after_an_equals_sign_so_a_stack_name_follows_it() {
        let StackCommand::Rm(rm) = parse(&["rm", "-d", "shop", "blog"]) else { panic!() };
        assert_eq!(format!("{rm:?}"), r#"RmArgs { detach: true, stacks: ["shop", "blog"] }"#);
        let StackCommand::Rm(rm) = parse(&["down", "--detach=false", "shop"]) else { panic!() };
        assert_eq!(format!("{rm:?}"), r#"RmArgs { detach: false, stacks: ["shop"] }"#);
        let StackCommand::Rollback(r) = parse(&["rollback", "--to", "abc1", "shop"]) else {
            panic!()
        };
        assert_eq!(
            format!("{r:?}"),
            r#"RollbackArgs { to: Some("abc1"), detach: true, quiet: false, stack: "shop" }"#
        );
        assert!(matches!(parse(&["list"]), StackCommand::Ls));
    }
}
