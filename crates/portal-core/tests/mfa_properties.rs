//! Property tests of the login-protection rules (R14, R16, R18):
//!
//! - a TOTP step is accepted at most once, whatever the order, offsets and timing of submissions;
//! - a remembered device never skips the password;
//! - after a password change or reset, no other session or remembered device works;
//! - a pending second step never authenticates anything;
//! - throttling never blocks the right password forever.

mod support;

use chrono::TimeDelta;
use portal_core::ports::Clock;
use portal_core::secret::SecretString;
use portal_core::service::{CompleteMfa, Login, LoginError, LoginOutcome, SecondFactor};
use portal_core::session::ClientInfo;
use portal_core::throttle::ThrottlePolicy;
use portal_core::totp::{self, TotpSecret};
use proptest::prelude::*;
use std::collections::BTreeSet;
use support::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn with_totp(w: &World, address: &str) -> TotpSecret {
    let (_, session) = w.registered(address).await;
    let p = w.principal(&session).await;
    let e = w.portal.start_totp_enrolment(&p).await.unwrap();
    let secret = TotpSecret::from_base32(e.secret_base32()).unwrap();
    w.portal
        .confirm_totp(&p, &totp::code_at(&secret, w.clock.now()))
        .await
        .unwrap();
    secret
}

async fn login(
    w: &World,
    password: &str,
    device: Option<&str>,
) -> Result<LoginOutcome, LoginError> {
    let cmd = Login {
        email: "anna@example.com".into(),
        password: SecretString::new(password),
        client: ClientInfo::default(),
    };
    match device {
        Some(d) => w.portal.login_with_device(cmd, d).await,
        None => w.portal.login(cmd).await,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Submissions at random times with codes of random nearby steps: every accepted step is
    /// later than every step accepted before it, so none is accepted twice.
    #[test]
    fn a_totp_step_is_accepted_at_most_once(
        moves in prop::collection::vec((0i64..50, -2i64..=2), 1..25)
    ) {
        rt().block_on(async {
            let w = World::new();
            let secret = with_totp(&w, "anna@example.com").await;
            let enrolled_step = totp::time_step(w.clock.now());
            let mut accepted: Vec<u64> = vec![enrolled_step];
            for (wait, offset) in moves {
                w.advance(TimeDelta::seconds(wait));
                let Ok(LoginOutcome::MfaRequired(pending)) = login(&w, PASSWORD, None).await else {
                    // Throttled by earlier failures: wait it out.
                    w.advance(TimeDelta::minutes(15));
                    continue;
                };
                let at = w.clock.now() + TimeDelta::seconds(30 * offset);
                let code = totp::code_at(&secret, at);
                let r = w.portal.complete_mfa(CompleteMfa {
                    token: pending.token.expose().to_owned(),
                    factor: SecondFactor::Totp(code),
                    remember_device: false,
                    client: ClientInfo::default(),
                }).await;
                if r.is_ok() {
                    let step = totp::time_step(at);
                    prop_assert!(accepted.iter().all(|s| *s < step), "step {} after {:?}", step, accepted);
                    prop_assert!(offset.abs() <= 1, "a code two steps away was accepted");
                    accepted.push(step);
                }
            }
            let unique: BTreeSet<_> = accepted.iter().collect();
            prop_assert_eq!(unique.len(), accepted.len());
            Ok(())
        })?;
    }

    /// Whatever mix of device tokens and passwords is tried, a session is only ever issued for
    /// the right password.
    #[test]
    fn a_remembered_device_never_skips_the_password(
        tries in prop::collection::vec((any::<bool>(), any::<bool>()), 1..12)
    ) {
        rt().block_on(async {
            let w = World::new();
            let secret = with_totp(&w, "anna@example.com").await;
            w.advance(TimeDelta::seconds(30));
            let Ok(LoginOutcome::MfaRequired(pending)) = login(&w, PASSWORD, None).await else {
                panic!("no second step");
            };
            let device = w.portal.complete_mfa(CompleteMfa {
                token: pending.token.expose().to_owned(),
                factor: SecondFactor::Totp(totp::code_at(&secret, w.clock.now())),
                remember_device: true,
                client: ClientInfo::default(),
            }).await.unwrap().remembered_device.unwrap();
            for (use_device, right_password) in tries {
                w.advance(TimeDelta::minutes(6));
                let password = if right_password { PASSWORD } else { "ganz falsches passwort" };
                let r = login(&w, password, use_device.then(|| device.token.expose())).await;
                match r {
                    Ok(LoginOutcome::Authenticated(_)) => {
                        prop_assert!(right_password && use_device, "authenticated without password or device");
                    }
                    Ok(LoginOutcome::MfaRequired(_)) => prop_assert!(right_password),
                    Err(e) => prop_assert!(
                        !right_password || matches!(e, LoginError::Throttled { .. }),
                        "the right password was refused: {:?}", e
                    ),
                }
            }
            Ok(())
        })?;
    }

    /// After a password change (or a reset), none of the other sessions and devices works.
    #[test]
    fn after_a_password_change_or_reset_no_other_session_or_device_works(
        others in 1usize..5, devices in 0usize..3, reset in any::<bool>()
    ) {
        rt().block_on(async {
            let w = World::new();
            let secret = with_totp(&w, "anna@example.com").await;
            let mut tokens = Vec::new();
            let mut device_tokens = Vec::new();
            for i in 0..others + devices {
                w.advance(TimeDelta::seconds(30));
                let Ok(LoginOutcome::MfaRequired(pending)) = login(&w, PASSWORD, None).await else {
                    panic!("no second step");
                };
                let l = w.portal.complete_mfa(CompleteMfa {
                    token: pending.token.expose().to_owned(),
                    factor: SecondFactor::Totp(totp::code_at(&secret, w.clock.now())),
                    remember_device: i >= others,
                    client: ClientInfo::default(),
                }).await.unwrap();
                tokens.push(l.session.token.expose().to_owned());
                if let Some(d) = l.remembered_device {
                    device_tokens.push(d.token.expose().to_owned());
                }
            }
            let new_password = "ein ganz neues passwort";
            if reset {
                w.portal.forgot_password("anna@example.com").await.unwrap();
                let link = w.secret_for("anna@example.com");
                w.portal.reset_password(&link, &new_password.into(), &new_password.into()).await.unwrap();
            } else {
                let p = w.portal.authenticate(&tokens[0]).await.unwrap();
                let keep = w.portal.change_password(&p, &PASSWORD.into(), &new_password.into(), &new_password.into(), ClientInfo::default()).await.unwrap();
                prop_assert!(w.portal.authenticate(keep.token.expose()).await.is_ok());
            }
            for t in &tokens {
                prop_assert!(w.portal.authenticate(t).await.is_err(), "an old session survived");
            }
            for d in &device_tokens {
                let r = login(&w, new_password, Some(d)).await.unwrap();
                prop_assert!(matches!(r, LoginOutcome::MfaRequired(_)), "an old device still skips the second factor");
            }
            Ok(())
        })?;
    }

    /// A pending second step is no session: it authenticates nothing, at any time of its life.
    #[test]
    fn a_pending_second_step_never_authenticates(wait in 0i64..400) {
        rt().block_on(async {
            let w = World::new();
            with_totp(&w, "anna@example.com").await;
            let Ok(LoginOutcome::MfaRequired(pending)) = login(&w, PASSWORD, None).await else {
                panic!("no second step");
            };
            w.advance(TimeDelta::seconds(wait));
            prop_assert!(w.portal.authenticate(pending.token.expose()).await.is_err());
            let p = w.portal.my_sessions(&w.principal(&w.login_plain().await).await).await;
            prop_assert!(p.is_ok());
            Ok(())
        })?;
    }

    /// Any sequence of failures with any gaps: after the longest block has passed since the last
    /// failure, the right password works.
    #[test]
    fn throttling_never_blocks_the_right_password_forever(
        gaps in prop::collection::vec(0i64..600, 0..40)
    ) {
        rt().block_on(async {
            let w = World::new();
            w.registered("anna@example.com").await;
            for gap in gaps {
                w.advance(TimeDelta::seconds(gap));
                let _ = login(&w, "ganz falsches passwort", None).await;
            }
            w.advance(ThrottlePolicy::ACCOUNT.longest_block());
            let r = login(&w, PASSWORD, None).await;
            prop_assert!(matches!(r, Ok(LoginOutcome::Authenticated(_))), "got {:?}", r.err());
            Ok(())
        })?;
    }
}

impl World {
    /// A second, plain user (no MFA), logged in.
    async fn login_plain(&self) -> portal_core::service::IssuedSession {
        self.registered("plain@example.com").await.1
    }
}
