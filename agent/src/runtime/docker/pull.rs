//! Getting a task's image: used as is when the engine has it, pulled otherwise, with the
//! registry credentials of the usual Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, its `auths` entries). Progress goes to the task's message, as
//! `service ps` shows it while a task is PREPARING.

use crate::runtime::{Progress, RuntimeError};
use base64::Engine as _;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use std::path::PathBuf;

/// Docker Hub's key in a Docker config's `auths`.
const HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Makes sure the engine has `image`, pulling it when missing.
///
/// # Errors
/// A pull that fails (no such image, no access, no registry), as a fatal error: the task is
/// rejected, as Swarm does.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    progress: &Progress,
) -> Result<(), RuntimeError> {
    if image.is_empty() {
        return Err(RuntimeError::fatal("the service has no image; set image: in the stack file"));
    }
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => return Err(super::engine_error("inspecting the image", e)),
    }
    let reference = with_default_tag(image);
    progress.send_replace(format!("pulling image {reference}"));
    let options = CreateImageOptionsBuilder::default().from_image(&reference).build();
    let creds = credentials(registry_of(&reference));
    let mut stream = docker.create_image(Some(options), None, creds);
    let mut layers_done = 0usize;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    return Err(pull_failed(&reference, &detail));
                }
                if info.status.as_deref() == Some("Pull complete") {
                    layers_done += 1;
                    progress
                        .send_replace(format!("pulling image {reference}: {layers_done} layers"));
                }
            }
            Err(e) => return Err(pull_failed(&reference, &e.to_string())),
        }
    }
    progress.send_replace(String::new());
    Ok(())
}

fn pull_failed(reference: &str, why: &str) -> RuntimeError {
    RuntimeError::fatal(format!("No such image: {reference} (pull failed: {why})"))
}

/// `nginx` → `nginx:latest`; a reference with a tag or digest is kept.
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// The registry host of a reference (`docker.io` when it names none).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var("HOME").ok().map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The credentials of `registry` in the Docker config, if it has any.
fn credentials(registry: &str) -> Option<DockerCredentials> {
    let text = std::fs::read_to_string(docker_config_path()?).ok()?;
    credentials_in(&text, registry)
}

/// The credentials of `registry` in the text of a Docker config.
pub fn credentials_in(config: &str, registry: &str) -> Option<DockerCredentials> {
    let json: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let keys: Vec<String> = if registry == "docker.io" {
        vec![HUB_AUTH_KEY.into(), "docker.io".into(), "index.docker.io".into()]
    } else {
        vec![registry.into(), format!("https://{registry}"), format!("http://{registry}")]
    };
    let entry = keys.iter().find_map(|k| auths.get(k))?;
    let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let mut creds = DockerCredentials {
        serveraddress: Some(registry.to_owned()),
        identitytoken: field("identitytoken"),
        username: field("username"),
        password: field("password"),
        ..Default::default()
    };
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        creds.username = Some(user.to_owned());
        creds.password = Some(pass.to_owned());
    }
    Some(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_latest_and_name_their_registry() {
        assert_eq!(with_default_tag("nginx"), "nginx:latest");
        assert_eq!(with_default_tag("nginx:1.27"), "nginx:1.27");
        assert_eq!(with_default_tag("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(with_default_tag("app@sha256:abc"), "app@sha256:abc");
        assert_eq!(registry_of("nginx:latest"), "docker.io");
        assert_eq!(registry_of("library/nginx:latest"), "docker.io");
        assert_eq!(registry_of("ghcr.io/acme/app:1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/app:1"), "localhost:5000");
    }

    #[test]
    fn credentials_come_from_the_auths_of_the_docker_config() {
        let config = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
            "ghcr.io":{"identitytoken":"tok"}}}"#;
        let hub = credentials_in(config, "docker.io").unwrap();
        assert_eq!(
            (hub.username.as_deref(), hub.password.as_deref()),
            (Some("user"), Some("pass"))
        );
        let gh = credentials_in(config, "ghcr.io").unwrap();
        assert_eq!(gh.identitytoken.as_deref(), Some("tok"));
        assert!(credentials_in(config, "quay.io").is_none());
        assert!(credentials_in("not json", "docker.io").is_none());
    }
}
