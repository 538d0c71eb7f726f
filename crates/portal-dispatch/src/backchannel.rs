//! The sender of OpenID Connect back-channel logout tokens: `POST` to the client's registered
//! URI with the form body `logout_token=<JWT>` (OIDC Back-Channel Logout 1.0, section 2.5),
//! through `reqwest`.
//!
//! A `2xx` answer delivers the message. A client that cannot be reached, times out, or answers
//! `5xx` or `429` is tried again later (the dispatcher's back-off, then dead letters); any other
//! `4xx` means the client refused the token for good (the spec's `400`), a permanent error.

use async_trait::async_trait;
use portal_core::outbox::{OutboxKind, OutboxMessage, Payload, SendError, Sender};
use std::time::Duration;

/// Posts back-channel logout tokens.
#[derive(Debug, Clone)]
pub struct BackchannelSender {
    client: reqwest::Client,
}

impl BackchannelSender {
    /// A sender whose requests give up after `timeout` (and never follow redirects: the spec
    /// says a redirect is not a delivery).
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS provider).
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Sender for BackchannelSender {
    fn kind(&self) -> OutboxKind {
        OutboxKind::BackchannelLogout
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let Payload::BackchannelLogout(logout) = &message.payload else {
            return Err(SendError::Permanent(format!(
                "not a back-channel logout: kind {}",
                message.payload.kind_key()
            )));
        };
        let response = self
            .client
            .post(&logout.uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", logout.logout_token.as_str())])
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 || status.is_redirection() {
            Err(SendError::Transient(format!("client answered {status}")))
        } else {
            Err(SendError::Permanent(format!("client answered {status}")))
        }
    }
}
