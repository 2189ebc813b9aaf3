//! The routing mesh's kernel data path: an nftables table of this mesh's own
//! (`flotilla_mesh_<pid>_<n>`) whose `output` chain rewrites the destination of new TCP
//! connections to a published port, spreading them in turn over the tasks
//! ([`agent_core::mesh::nat`] says which ports and writes the rules). The bytes then never
//! pass through this process.
//!
//! ```text
//!  Nat::open: root? ─► stale tables of dead agents removed ─► own table made (`nft -f -`)
//!  Mesh::apply ─► Nat::sync(rules): the table's rules replaced in one transaction
//!  Drop ─► the table deleted; a killed agent's table is removed by the next mesh to open
//! ```

use agent_core::mesh::nat::{NatRule, nat_script};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of the mesh's table names; the owner's process id follows.
pub const TABLE_PREFIX: &str = "flotilla_mesh_";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Why the kernel path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// Changing the kernel's NAT rules needs root.
    #[error("not root: the kernel path needs privileges to change NAT rules")]
    Unprivileged,
    /// The `nft` tool is not installed.
    #[error("the nft tool is missing (Debian's nftables package): {0}")]
    Missing(std::io::Error),
    /// `nft` refused the rules (no netfilter NAT in this kernel, a bad rule …).
    #[error("nft refused the rules: {0}")]
    Refused(String),
    /// The bind address has no kernel path (not loopback or unspecified IPv4).
    #[error("the kernel path forwards only on IPv4 loopback, not on {0}")]
    Scope(std::net::IpAddr),
}

/// This mesh's NAT table.
#[derive(Debug)]
pub struct Nat {
    table: String,
    /// What the table holds now.
    rules: Vec<NatRule>,
}

impl Nat {
    /// Makes this mesh's table (empty), after removing the tables of agents that died.
    ///
    /// # Errors
    /// [`NatError`]: not root, no `nft`, or netfilter refuses the table.
    pub fn open() -> Result<Nat, NatError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(NatError::Unprivileged);
        }
        remove_stale();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let table = format!("{TABLE_PREFIX}{}_{n}", std::process::id());
        nft(&nat_script(&table, &[]))?;
        Ok(Nat { table, rules: Vec::new() })
    }

    /// The table's name (`nft list table ip NAME` shows it).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Makes the table hold exactly `rules` (nothing is run when it already does).
    ///
    /// # Errors
    /// [`NatError::Refused`]; the table keeps its previous rules then.
    pub fn sync(&mut self, rules: Vec<NatRule>) -> Result<(), NatError> {
        if rules == self.rules {
            return Ok(());
        }
        nft(&nat_script(&self.table, &rules))?;
        self.rules = rules;
        Ok(())
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        if let Err(e) = nft(&format!("delete table ip {}\n", self.table)) {
            tracing::warn!(table = %self.table, error = %e, "mesh: cannot remove the NAT table");
        }
    }
}

/// Runs an nftables script.
fn nft(script: &str) -> Result<(), NatError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NatError::Missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| NatError::Refused(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| NatError::Refused(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NatError::Refused(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// The mesh tables on this machine (`flotilla_mesh_<pid>_<n>`), with their owners' pids.
pub fn tables() -> Vec<(String, u32)> {
    let Ok(out) = Command::new("nft").args(["list", "tables", "ip"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table ip "))
        .filter_map(|name| {
            let pid = name.strip_prefix(TABLE_PREFIX)?.split('_').next()?.parse().ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}

/// Deletes the tables of process `pid` (after it was killed, when it could not remove them
/// itself); answers how many.
pub fn remove_tables_of(pid: u32) -> usize {
    tables()
        .into_iter()
        .filter(|(_, owner)| *owner == pid)
        .filter(|(table, _)| nft(&format!("delete table ip {table}\n")).is_ok())
        .count()
}

/// Deletes the tables whose owner no longer runs (an agent that was killed).
fn remove_stale() {
    for (table, pid) in tables() {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            match nft(&format!("delete table ip {table}\n")) {
                Ok(()) => tracing::info!(%table, "mesh: removed a dead agent's NAT table"),
                Err(e) => tracing::debug!(%table, error = %e, "mesh: stale table not removed"),
            }
        }
    }
}
