//! What `stack ls` and `stack history` print (pure): Docker's `stack ls` columns (NAME,
//! SERVICES) followed by flotilla's (REVISION, SYNC, LAST DEPLOYMENT), and one row per
//! deployment record. `stack services` and `stack ps` print `service ls` and `service ps`
//! tables (see [`crate::cmd::service::render`]). Ages come from the manager's `now`.

use crate::cmd::api::table;
use crate::cmd::service::render::{human_duration, natural_cmp};
use reconciler_api::stacks::{DeploymentTrigger, DeploymentView, StackHistory, StackList};
use reconciler_types::MonoTime;

/// The length commits are shortened to.
const COMMIT_LEN: usize = 12;

/// A commit as tables show it (its first 12 characters).
pub fn short_commit(commit: &str) -> &str {
    commit.char_indices().nth(COMMIT_LEN).map_or(commit, |(i, _)| &commit[..i])
}

fn ago(now: MonoTime, at: MonoTime) -> String {
    format!("{} ago", human_duration(now.saturating_since(at)).to_lowercase())
}

/// The LAST DEPLOYMENT cell: its result and age (`succeeded 5 minutes ago`).
fn last_cell(d: Option<&DeploymentView>, now: MonoTime) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{} {}", d.outcome.as_str(), ago(now, d.at)))
}

/// The `stack ls` table, sorted by name as Docker sorts it.
pub fn stack_table(list: &StackList) -> String {
    let mut stacks: Vec<_> = list.stacks.iter().collect();
    stacks.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let rows: Vec<Vec<String>> = stacks
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.services.to_string(),
                s.revision.as_deref().map_or("-", short_commit).to_owned(),
                s.sync.as_str().to_owned(),
                last_cell(s.last_deployment.as_ref(), list.now),
            ]
        })
        .collect();
    table(&["NAME", "SERVICES", "REVISION", "SYNC", "LAST DEPLOYMENT"], &rows)
}

/// Why each stack that is not synced is in its state, one line each (`stack ls` prints them
/// on stderr, under the table).
pub fn stack_notes(list: &StackList) -> Vec<String> {
    let mut stacks: Vec<_> = list.stacks.iter().filter(|s| !s.message.is_empty()).collect();
    stacks.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    stacks.iter().map(|s| format!("{}: {}: {}", s.name, s.sync.as_str(), s.message)).collect()
}

/// An author as the history shows it: the name without the address.
fn author_name(author: &str) -> &str {
    match author.split_once(" <") {
        Some((name, _)) if !name.trim().is_empty() => name.trim(),
        _ => author,
    }
}

/// The TRIGGER cell: what made the deployment, and who asked (`rollback by bob`).
fn trigger_cell(d: &DeploymentView) -> String {
    match (&d.by, d.trigger) {
        (Some(by), DeploymentTrigger::Reconcile | DeploymentTrigger::Rollback) => {
            format!("{} by {by}", d.trigger.as_str())
        }
        _ => d.trigger.as_str().to_owned(),
    }
}

/// The `stack history` table: one row per deployment, newest first.
pub fn history_table(h: &StackHistory) -> String {
    let rows: Vec<Vec<String>> = h
        .deployments
        .iter()
        .map(|d| {
            vec![
                short_commit(&d.commit).to_owned(),
                ago(h.now, d.at),
                author_name(&d.author).to_owned(),
                d.summary.clone(),
                d.outcome.as_str().to_owned(),
                trigger_cell(d),
                d.message.clone(),
            ]
        })
        .collect();
    table(&["REVISION", "DEPLOYED", "AUTHOR", "CHANGES", "RESULT", "TRIGGER", "MESSAGE"], &rows)
}

/// The lines `stack ps` and `stack services` print on stderr for services changed by hand.
pub fn drift_notes(drifted: &[String]) -> Vec<String> {
    drifted
        .iter()
        .map(|s| format!("{s}: differs from the last deployment (changed by hand)"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_api::stacks::{DeploymentOutcome, StackView, SyncStatus};
    use std::time::Duration;

    fn at(secs: u64) -> MonoTime {
        MonoTime(Duration::from_secs(secs))
    }

    fn deployment(commit: &str, secs: u64, outcome: DeploymentOutcome) -> DeploymentView {
        DeploymentView {
            id: secs,
            commit: commit.into(),
            author: "Ann Lee <ann@example.com>".into(),
            subject: "a change".into(),
            at: at(secs),
            summary: "1 created, 1 updated".into(),
            trigger: DeploymentTrigger::Sync,
            by: None,
            outcome,
            message: String::new(),
        }
    }

    fn view(
        name: &str,
        services: u64,
        sync: SyncStatus,
        last: Option<DeploymentView>,
    ) -> StackView {
        StackView {
            name: name.into(),
            services,
            revision: last.as_ref().map(|d| d.commit.clone()),
            sync,
            message: String::new(),
            drifted: Vec::new(),
            last_deployment: last,
        }
    }

    #[test]
    fn stack_ls_prints_dockers_columns_then_flotillas_sorted_naturally() {
        let c = "0123456789abcdef0123";
        let mut drifted = view(
            "shop10",
            3,
            SyncStatus::Drifted,
            Some(deployment(c, 700, DeploymentOutcome::Succeeded)),
        );
        drifted.message = "changed by hand: shop10_db".into();
        let list = StackList {
            stacks: vec![
                drifted,
                view(
                    "shop2",
                    1,
                    SyncStatus::RolledBack,
                    Some(deployment(c, 880, DeploymentOutcome::RolledBack)),
                ),
                view("legacy", 2, SyncStatus::Unmanaged, None),
            ],
            now: at(1000),
        };
        assert_eq!(
            stack_table(&list),
            "NAME      SERVICES   REVISION       SYNC          LAST DEPLOYMENT\n\
             legacy    2          -              -             -\n\
             shop2     1          0123456789ab   rolled back   rolled back 2 minutes ago\n\
             shop10    3          0123456789ab   drifted       succeeded 5 minutes ago"
        );
        assert_eq!(stack_notes(&list), ["shop10: drifted: changed by hand: shop10_db"]);
    }

    #[test]
    fn stack_history_has_one_row_per_deployment_with_who_asked() {
        let mut rollback = deployment("1111111111111111", 990, DeploymentOutcome::InProgress);
        rollback.trigger = DeploymentTrigger::Rollback;
        rollback.by = Some("bob@laptop".into());
        rollback.summary = "1 updated".into();
        let mut failed = deployment("2222222222222222", 400, DeploymentOutcome::RolledBack);
        failed.message = "service shop_web: update rolled back".into();
        failed.author = "ci".into();
        let h = StackHistory {
            stack: "shop".into(),
            deployments: vec![
                rollback,
                failed,
                deployment("1111111111111111", 100, DeploymentOutcome::Succeeded),
            ],
            rolled_back_from: Some("2222222222222222".into()),
            now: at(1000),
        };
        assert_eq!(
            history_table(&h),
            "REVISION       DEPLOYED         AUTHOR    CHANGES                RESULT        TRIGGER                  MESSAGE\n\
             111111111111   10 seconds ago   Ann Lee   1 updated              in progress   rollback by bob@laptop\n\
             222222222222   10 minutes ago   ci        1 created, 1 updated   rolled back   sync                     service shop_web: update rolled back\n\
             111111111111   15 minutes ago   Ann Lee   1 created, 1 updated   succeeded     sync"
        );
    }

    #[test]
    fn drifted_services_are_named_with_why() {
        assert_eq!(
            drift_notes(&["shop_db".into()]),
            ["shop_db: differs from the last deployment (changed by hand)"]
        );
        assert_eq!(short_commit("abc"), "abc");
    }
}
