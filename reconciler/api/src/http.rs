//! The HTTP client every flotilla component uses, and how a manager address becomes a URL.

use std::time::Duration;

/// `host:port` → `http://host:port`; an address that already has a scheme is kept.
pub fn base_url(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Builds the HTTP client flotilla uses (rustls with ring is installed as the process's
/// crypto provider the first time, so `https://` addresses work too). `timeout` bounds every
/// request; a long poll sets its own, longer, timeout per request.
///
/// # Errors
/// The client cannot be built.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Installing twice returns an error that only says a provider is already there.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let builder =
        || reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).no_proxy();
    // Without system CA certificates (a FROM-scratch image) the platform verifier cannot be
    // built; plain-http managers need no roots, so fall back to an empty root store.
    builder()
        .build()
        .or_else(|_| builder().tls_certs_only(Vec::<reqwest::Certificate>::new()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_adds_a_scheme_only_when_missing() {
        assert_eq!(base_url("127.0.0.1:2377"), "http://127.0.0.1:2377");
        assert_eq!(base_url("https://m1:2377/"), "https://m1:2377");
    }
}
