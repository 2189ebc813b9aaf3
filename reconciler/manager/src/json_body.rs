//! [`JsonBody`]: a request body read as JSON, as axum's `Json` reads it, only faster.
//!
//! axum's `Json` deserializes through `serde_path_to_error`, which copies every object key
//! it passes into a `String` so that an error can name the field path. Agents' task states,
//! forwarded writes and Raft appends are large and almost always well formed, and on a busy
//! leader that copying showed up in profiles. `JsonBody` parses with `serde_json` alone and
//! hands a body that fails (or lacks the JSON content type) to axum's `Json`, so a bad request
//! gets exactly the rejection, field path included, that `Json` gives.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

/// A JSON request body (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let plain_json = is_plain_json(&parts.headers);
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await?;
        if plain_json && let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(JsonBody(value));
        }
        let again = Request::from_parts(parts, Body::from(bytes));
        Json::<T>::from_request(again, state).await.map(|Json(value)| JsonBody(value))
    }
}

/// `Content-Type: application/json`, with parameters or not: a subset of what `Json`
/// accepts, so the fast path never accepts a body that `Json` would refuse.
fn is_plain_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Report {
        session: String,
        updates: Vec<Update>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Update {
        task_id: String,
        state: u8,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut b = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body.to_owned())).expect("request")
    }

    async fn both(content_type: Option<&str>, body: &str) -> (String, String) {
        let fast = JsonBody::<Report>::from_request(request(content_type, body), &()).await;
        let axum = Json::<Report>::from_request(request(content_type, body), &()).await;
        let show = |r: Result<Report, JsonRejection>| match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("{} {}", e.status(), e.body_text()),
        };
        (show(fast.map(|JsonBody(v)| v)), show(axum.map(|Json(v)| v)))
    }

    #[tokio::test]
    async fn a_good_body_parses_as_json_parses_it() {
        let body = r#"{"session":"s1","updates":[{"task_id":"t1","state":3}]}"#;
        let (fast, axum) = both(Some("application/json; charset=utf-8"), body).await;
        assert_eq!(fast, axum);
        assert!(fast.contains("t1"), "{fast}");
    }

    #[tokio::test]
    async fn a_bad_body_gets_jsons_rejection_with_the_field_path() {
        let body = r#"{"session":"s1","updates":[{"task_id":"t1","state":"running"}]}"#;
        let (fast, axum) = both(Some("application/json"), body).await;
        assert_eq!(fast, axum);
        assert!(fast.contains("updates[0].state"), "{fast}");
        assert!(fast.starts_with(StatusCode::UNPROCESSABLE_ENTITY.as_str()), "{fast}");
    }

    #[tokio::test]
    async fn syntax_errors_trailing_bytes_and_content_types_are_refused_as_json_refuses_them() {
        let cases = [
            (Some("application/json"), r#"{"session":"s1","updates":["#),
            (Some("application/json"), r#"{"session":"s1","updates":[]} x"#),
            (None, r#"{"session":"s1","updates":[]}"#),
            (Some("text/plain"), r#"{"session":"s1","updates":[]}"#),
            // Accepted by `Json` through its slower path only.
            (Some("application/problem+json"), r#"{"session":"s1","updates":[]}"#),
        ];
        for (ct, body) in cases {
            let (fast, axum) = both(ct, body).await;
            assert_eq!(fast, axum, "{ct:?} {body}");
        }
    }
}
