//! The Git source endpoints, behind `flotilla source set | show | rm | refresh` and the
//! forges' push webhooks.
//!
//! ```text
//! GET    /v1/source           → SourceView        (the source, what the leader last saw of it)
//! PUT    /v1/source           SourceSet → SourceView   (set or change it; leader)
//! DELETE /v1/source           → {}                (stop deploying from Git; what runs stays)
//! POST   /v1/source/refresh   → {}                (fetch now instead of at the next poll)
//! POST   /v1/webhook          a forge's push (no bearer: its signature) → WebhookAnswer
//! ```
//!
//! The source is cluster state: whichever manager leads fetches it. Secrets (the webhook
//! secret, a repository credential) travel once, in [`SourceSet`], and are sealed with the
//! cluster key by the leader; no answer ever carries them back.

use crate::client::{ApiClient, ClientError, Empty};
use reconciler_types::MonoTime;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The source's path.
pub const SOURCE_PATH: &str = "/v1/source";
/// The path that asks the leader to fetch at once.
pub const REFRESH_PATH: &str = "/v1/source/refresh";
/// The forges' webhook path.
pub const WEBHOOK_PATH: &str = "/v1/webhook";

/// A repository credential as an operator gives it (sealed on arrival).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSet {
    /// `ssh-key` or `token`.
    pub kind: String,
    /// The user name given with a token (`x-access-token`, `oauth2`, ...).
    #[serde(default)]
    pub username: Option<String>,
    /// The private key or the token.
    pub secret: String,
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSet")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `PUT /v1/source`: sets the source, or changes the fields given of the current one. A
/// new source needs `url`; `branch`, `path` and `poll` default to `main`, `stacks` and 60 s.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSet {
    /// A URL (https, ssh, file) or a folder on the managers.
    #[serde(default)]
    pub url: Option<String>,
    /// The branch whose head is deployed.
    #[serde(default)]
    pub branch: Option<String>,
    /// The folder of the repository that holds the stacks.
    #[serde(default)]
    pub path: Option<String>,
    /// How often the leader fetches.
    #[serde(default, with = "reconciler_types::duration_ns::option")]
    pub poll: Option<Duration>,
    /// A new webhook secret.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Forget the webhook secret (the webhook endpoint then refuses every call).
    #[serde(default)]
    pub clear_webhook_secret: bool,
    /// A new repository credential.
    #[serde(default)]
    pub credential: Option<CredentialSet>,
    /// Forget the repository credential.
    #[serde(default)]
    pub clear_credential: bool,
    /// Deploy only the stacks this runtime (`process` or `docker`) can run, skipping the
    /// others; `any` deploys every stack again.
    #[serde(default)]
    pub runtime: Option<String>,
    /// The version of the source this change was made from (`None`: whatever it is).
    #[serde(default)]
    pub version: Option<u64>,
}

impl std::fmt::Debug for SourceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSet")
            .field("url", &self.url)
            .field("branch", &self.branch)
            .field("path", &self.path)
            .field("poll", &self.poll)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "…"))
            .field("credential", &self.credential)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// The source as the cluster holds it, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// A URL or a folder on the managers.
    pub url: String,
    /// The branch deployed.
    pub branch: String,
    /// The stacks' folder in the repository.
    pub path: String,
    /// The poll interval.
    #[serde(with = "reconciler_types::duration_ns")]
    pub poll: Duration,
    /// `ssh-key` or `token` when a credential is set.
    pub credential: Option<String>,
    /// Whether a webhook secret is set.
    pub webhook: bool,
    /// The runtime whose unrunnable stacks are skipped (`None`: none are).
    #[serde(default)]
    pub runtime: Option<String>,
    /// The log index that last wrote it (a change names it).
    pub version: u64,
}

/// What the leader last saw of the source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceStatusView {
    /// The branch head at the last successful fetch.
    pub commit: Option<String>,
    /// Why the last fetch or load failed.
    pub error: Option<String>,
    /// When the leader last looked (the managers' epoch clock; zero: never).
    pub at: MonoTime,
    /// The head's stacks skipped because the source's runtime cannot run them, each as
    /// `stack S: why`.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// `GET /v1/source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceView {
    /// The source (`None`: the cluster deploys nothing from Git).
    pub source: Option<SourceInfo>,
    /// What the leader last saw of it.
    pub status: SourceStatusView,
    /// The answering manager's time, for ages.
    pub now: MonoTime,
}

/// The answer to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAnswer {
    /// Whether a fetch was started.
    pub fetch: bool,
    /// Why not (a push to another branch).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl ApiClient {
    /// `source show`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn source(&self) -> Result<SourceView, ClientError> {
        self.get(SOURCE_PATH).await
    }

    /// `source set`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn set_source(&self, set: &SourceSet) -> Result<SourceView, ClientError> {
        self.call(reqwest::Method::PUT, SOURCE_PATH, Some(set)).await
    }

    /// `source rm`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn remove_source(&self) -> Result<(), ClientError> {
        self.delete::<Empty>(SOURCE_PATH).await.map(|_| ())
    }

    /// `source refresh`: the leader fetches at once.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn refresh_source(&self) -> Result<(), ClientError> {
        self.post::<_, Empty>(REFRESH_PATH, &Empty {}).await.map(|_| ())
    }
}
