//! The sender of signed event webhooks ([`portal_core::webhook`]): `POST` of the event's JSON
//! to the endpoint's URL with the three headers of the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification, signed by the
//! reference implementation's Rust crate (`standardwebhooks`), through `reqwest`:
//!
//! * `webhook-id`: the outbox message's id, the same at every attempt (receivers drop
//!   repeats by it: delivery is at least once);
//! * `webhook-timestamp`: the attempt's time in Unix seconds (receivers refuse stale ones);
//! * `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` with the
//!   endpoint's secret.
//!
//! The endpoint's URL and secret are read at each attempt
//! ([`Portal::webhook_target`](portal_core::Portal::webhook_target)), so retries after a
//! rotation are signed with the new secret. A `2xx` answer delivers the event. Any other answer,
//! a redirect (never followed), a timeout or an unreachable endpoint is transient: the
//! dispatcher's back-off retries it and dead-letters it after the last attempt. An endpoint
//! that was removed or disabled, or whose secret no configured key opens, dead-letters its
//! deliveries at once (permanent).

use async_trait::async_trait;
use portal_core::Portal;
use portal_core::outbox::{OutboxKind, OutboxMessage, Payload, SendError, Sender};
use portal_core::ports::Clock;
use portal_core::service::WebhookTargetError;
use std::sync::Arc;
use std::time::Duration;

/// Posts signed webhook events.
#[derive(Clone)]
pub struct WebhookSender {
    portal: Arc<Portal>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender").finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender that reads endpoints through `portal`, stamps attempts with `clock`, and whose
    /// requests give up after `timeout` (never following redirects).
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS provider).
    pub fn new(
        portal: Arc<Portal>,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            portal,
            clock,
            client,
        })
    }
}

/// The signature header's value for one attempt.
///
/// # Errors
/// The body is not UTF-8 (it always is: JSON).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> Result<String, SendError> {
    standardwebhooks::Webhook::from_bytes(key.to_vec())
        .and_then(|w| w.sign(id, timestamp, body.as_bytes()))
        .map_err(|e| SendError::Permanent(format!("cannot sign: {e}")))
}

#[async_trait]
impl Sender for WebhookSender {
    fn kind(&self) -> OutboxKind {
        OutboxKind::Webhook
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let Payload::Webhook(delivery) = &message.payload else {
            return Err(SendError::Permanent(format!(
                "not a webhook: kind {}",
                message.payload.kind_key()
            )));
        };
        let target = self
            .portal
            .webhook_target(delivery)
            .await
            .map_err(|e| match e {
                WebhookTargetError::Store(e) => {
                    SendError::Transient(format!("storage unavailable: {e}"))
                }
                other => SendError::Permanent(other.to_string()),
            })?;
        let id = message.id.to_string();
        let timestamp = self.clock.now().timestamp();
        let body = delivery.event.body();
        let signature = sign(&target.key, &id, timestamp, &body)?;
        let response = self
            .client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Transient(format!("endpoint answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference tests: the same secret,
    /// id, timestamp and body give the same signature.
    #[test]
    fn signatures_match_the_specifications_reference_vector() {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
