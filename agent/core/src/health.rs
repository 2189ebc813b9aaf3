//! Health checks as Docker runs them (moby `daemon/health.go`), as data: a
//! [`HealthPolicy`] from the compose `healthcheck`, and a [`HealthTracker`] that is told each
//! probe's result and the time, and answers the task's health and when to probe next.
//!
//! Docker's rules, kept here:
//! * defaults: interval 30 s, timeout 30 s, retries 3, start period 0, start interval 5 s;
//! * the first probe runs one interval after the start (the start interval while inside the
//!   start period and not yet healthy), the next one interval after the previous ended;
//! * a success makes the task healthy and resets the failing streak; a failure inside the
//!   start period, before the first success, does not count; `retries` counted failures in a
//!   row make it unhealthy;
//! * exit code 0 is healthy, anything else (or a probe over its timeout) a failure.
//!
//! The task is STARTING until its first healthy result, and an unhealthy one stops it
//! (`docs/swarm-semantics.md` §1.3, S53).

use reconciler_types::{HealthConfig, MonoTime};
use std::time::Duration;

/// Docker's default probe interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Docker's default number of failures in a row that make a task unhealthy.
pub const DEFAULT_RETRIES: u64 = 3;
/// Docker's default interval between probes during the start period.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// What a probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `["CMD", program, args...]`: run directly.
    Exec(Vec<String>),
    /// `["CMD-SHELL", command]`: run with `/bin/sh -c`.
    Shell(String),
}

impl HealthTest {
    /// The argv to run.
    pub fn argv(&self) -> Vec<String> {
        match self {
            HealthTest::Exec(argv) => argv.clone(),
            HealthTest::Shell(cmd) => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        }
    }
}

/// A malformed `healthcheck.test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("healthcheck test {test:?}: {reason}")]
pub struct HealthTestError {
    /// The test as given.
    pub test: Vec<String>,
    /// Why it cannot run.
    pub reason: &'static str,
}

/// A health check with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// What to run.
    pub test: HealthTest,
    /// Time between probes.
    pub interval: Duration,
    /// Time one probe may take.
    pub timeout: Duration,
    /// Counted failures in a row that make the task unhealthy.
    pub retries: u64,
    /// Start-up time during which failures do not count.
    pub start_period: Duration,
    /// Time between probes during the start period.
    pub start_interval: Duration,
}

impl HealthPolicy {
    /// The policy of a compose `healthcheck`; `None` when it is disabled (`["NONE"]`, or
    /// `disable: true`, which the loader turns into `["NONE"]`) or has no test.
    ///
    /// # Errors
    /// A test that names neither `CMD`, `CMD-SHELL` nor `NONE`, or has nothing to run.
    pub fn from_config(config: &HealthConfig) -> Result<Option<HealthPolicy>, HealthTestError> {
        let err = |reason| HealthTestError { test: config.test.clone(), reason };
        let test = match config.test.split_first() {
            None => return Ok(None),
            Some((kind, _)) if kind == "NONE" => return Ok(None),
            Some((kind, rest)) if kind == "CMD" => {
                if rest.first().is_none_or(|p| p.is_empty()) {
                    return Err(err("CMD needs a program to run"));
                }
                HealthTest::Exec(rest.to_vec())
            }
            Some((kind, rest)) if kind == "CMD-SHELL" => match rest {
                [cmd] if !cmd.trim().is_empty() => HealthTest::Shell(cmd.clone()),
                _ => return Err(err("CMD-SHELL needs exactly one command string")),
            },
            Some(_) => return Err(err("the first element must be CMD, CMD-SHELL or NONE")),
        };
        let or = |d: Option<Duration>, default| d.filter(|d| !d.is_zero()).unwrap_or(default);
        Ok(Some(HealthPolicy {
            test,
            interval: or(config.interval, DEFAULT_INTERVAL),
            timeout: or(config.timeout, DEFAULT_TIMEOUT),
            retries: config.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
            start_period: config.start_period.unwrap_or_default(),
            start_interval: or(config.start_interval, DEFAULT_START_INTERVAL),
        }))
    }
}

/// A task's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// No healthy result yet.
    Starting,
    /// The last counted probes passed.
    Healthy,
    /// `retries` counted probes failed in a row.
    Unhealthy,
}

/// The health of one running task, fed with probe results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    policy: HealthPolicy,
    started: MonoTime,
    streak: u64,
    health: Health,
    last_output: String,
}

impl HealthTracker {
    /// A tracker for a task started at `started`.
    pub fn new(policy: HealthPolicy, started: MonoTime) -> HealthTracker {
        HealthTracker {
            policy,
            started,
            streak: 0,
            health: Health::Starting,
            last_output: String::new(),
        }
    }

    /// A tracker for a task already known healthy (found running after an agent restart).
    pub fn healthy(policy: HealthPolicy, started: MonoTime) -> HealthTracker {
        HealthTracker { health: Health::Healthy, ..HealthTracker::new(policy, started) }
    }

    /// The policy.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Counted failures in a row.
    pub fn failing_streak(&self) -> u64 {
        self.streak
    }

    /// What the last failed probe printed (trimmed), for the task's error message.
    pub fn last_output(&self) -> &str {
        &self.last_output
    }

    /// When to run the next probe, given when the previous one ended (or the start).
    pub fn next_probe_at(&self, previous_end: MonoTime) -> MonoTime {
        let in_start_period = self.started + self.policy.start_period > previous_end;
        let wait = if self.health == Health::Starting
            && !self.policy.start_period.is_zero()
            && in_start_period
        {
            self.policy.start_interval
        } else {
            self.policy.interval
        };
        previous_end + wait
    }

    /// Records a probe that began at `began`; answers the health after it.
    pub fn record(&mut self, passed: bool, output: &str, began: MonoTime) -> Health {
        if passed {
            self.streak = 0;
            self.health = Health::Healthy;
            return self.health;
        }
        self.last_output = output.trim().chars().take(200).collect();
        let in_start_period = began.saturating_since(self.started) < self.policy.start_period;
        if self.health == Health::Starting && in_start_period {
            return self.health;
        }
        self.streak += 1;
        if self.streak >= self.policy.retries {
            self.health = Health::Unhealthy;
        }
        self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..HealthConfig::default()
        }
    }

    fn policy(retries: u64, interval: u64, start_period: u64) -> HealthPolicy {
        let mut c = config(&["CMD", "true"]);
        c.retries = Some(retries);
        c.interval = Some(Duration::from_secs(interval));
        c.start_period = Some(Duration::from_secs(start_period));
        HealthPolicy::from_config(&c).unwrap().unwrap()
    }

    #[test]
    fn tests_parse_as_docker_reads_them_with_its_defaults() {
        let p = HealthPolicy::from_config(&config(&["CMD-SHELL", "curl -f localhost"])).unwrap();
        let p = p.unwrap();
        assert_eq!(p.test.argv(), ["/bin/sh", "-c", "curl -f localhost"]);
        assert_eq!((p.interval, p.timeout, p.retries), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, 3));
        assert_eq!(HealthPolicy::from_config(&config(&["NONE"])).unwrap(), None);
        assert_eq!(HealthPolicy::from_config(&config(&[])).unwrap(), None);
        assert!(HealthPolicy::from_config(&config(&["CMD"])).is_err());
        assert!(HealthPolicy::from_config(&config(&["curl", "x"])).is_err());
        assert!(HealthPolicy::from_config(&config(&["CMD-SHELL", "a", "b"])).is_err());
    }

    #[test]
    fn s53_the_first_healthy_probe_after_one_interval_makes_the_task_healthy() {
        let t0 = MonoTime::from_secs(100);
        let mut h = HealthTracker::new(policy(1, 10, 0), t0);
        assert_eq!(h.health(), Health::Starting);
        let first = h.next_probe_at(t0);
        assert_eq!(first, MonoTime::from_secs(110));
        assert_eq!(h.record(true, "", first), Health::Healthy);
    }

    #[test]
    fn s53_one_failure_with_retries_one_makes_the_task_unhealthy() {
        let t0 = MonoTime::from_secs(0);
        let mut h = HealthTracker::new(policy(1, 10, 0), t0);
        assert_eq!(h.record(false, "connection refused\n", h.next_probe_at(t0)), Health::Unhealthy);
        assert_eq!(h.last_output(), "connection refused");
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_the_first_success() {
        let t0 = MonoTime::from_secs(0);
        let mut h = HealthTracker::new(policy(2, 30, 60), t0);
        // Inside the start period, probes come every start interval (5 s) and failures are free.
        let p1 = h.next_probe_at(t0);
        assert_eq!(p1, MonoTime::from_secs(5));
        for _ in 0..5 {
            assert_eq!(h.record(false, "", p1), Health::Starting);
        }
        assert_eq!(h.failing_streak(), 0);
        // After the period they count.
        let late = MonoTime::from_secs(61);
        assert_eq!(h.next_probe_at(late), MonoTime::from_secs(91));
        assert_eq!(h.record(false, "", late), Health::Starting);
        assert_eq!(h.record(false, "", late), Health::Unhealthy);
    }

    #[test]
    fn after_a_success_failures_count_even_inside_the_start_period() {
        let t0 = MonoTime::from_secs(0);
        let mut h = HealthTracker::new(policy(2, 30, 60), t0);
        h.record(true, "", MonoTime::from_secs(5));
        // Healthy: the next probe waits a full interval.
        assert_eq!(h.next_probe_at(MonoTime::from_secs(5)), MonoTime::from_secs(35));
        assert_eq!(h.record(false, "", MonoTime::from_secs(10)), Health::Healthy);
        assert_eq!(h.record(false, "", MonoTime::from_secs(15)), Health::Unhealthy);
    }

    #[test]
    fn a_success_resets_the_failing_streak() {
        let t0 = MonoTime::ZERO;
        let mut h = HealthTracker::new(policy(3, 1, 0), t0);
        h.record(false, "", t0);
        h.record(false, "", t0);
        h.record(true, "", t0);
        assert_eq!(h.failing_streak(), 0);
        h.record(false, "", t0);
        assert_eq!(h.record(false, "", t0), Health::Healthy);
    }
}
