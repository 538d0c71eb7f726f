//! Property tests of the login-protection rules (R14, R16, R18):
//!
//! - a TOTP step is accepted at most once, whatever the order, offsets and timing of submissions,
//!   and also when the same code is submitted concurrently from several logins;
//! - a remembered device never skips the password;
//! - after a password change or reset, no other session or remembered device works;
//! - a pending second step reaches nothing but the second step: no entry point that takes a
//!   token (session, device, reset link, invitation, registration ticket, logout) accepts it;
//! - throttling never blocks the right password forever, per account and per client address.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::ports::Clock;
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, CodeError, InvitationError, MfaError, ResendError, ResetError, VerifyError,
};
use portal_core::service::{CompleteMfa, Login, LoginError, LoginOutcome, SecondFactor};
use portal_core::session::ClientInfo;
use portal_core::throttle::ThrottlePolicy;
use portal_core::totp::{self, TotpSecret};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A runtime whose tasks really run in parallel (for the concurrency property).
fn parallel_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
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
                w.forgot_password("anna@example.com").await.unwrap();
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

    /// A pending second step is no session and no other kind of token: at any time of its life,
    /// every entry point that takes a token refuses it and changes nothing, and it still
    /// finishes the login with the second factor (until its five minutes are up).
    #[test]
    fn a_pending_second_step_reaches_nothing_but_the_second_step(wait in 0i64..400) {
        rt().block_on(async {
            let w = World::new();
            let secret = with_totp(&w, "anna@example.com").await;
            w.advance(TimeDelta::seconds(30));
            let Ok(LoginOutcome::MfaRequired(pending)) = login(&w, PASSWORD, None).await else {
                panic!("no second step");
            };
            let t = pending.token.expose().to_owned();
            w.advance(TimeDelta::seconds(wait));
            let before = w.counts();
            prop_assert!(w.portal.authenticate(&t).await.is_err(), "as a session");
            let r = login(&w, PASSWORD, Some(&t)).await;
            prop_assert!(
                matches!(r, Ok(LoginOutcome::MfaRequired(_))),
                "as a remembered device: {:?}", r
            );
            let r = w.portal.reset_password(&t, &"ein ganz neues passwort".into(), &"ein ganz neues passwort".into()).await;
            prop_assert!(matches!(r, Err(ResetError::InvalidLink)), "as a reset link: {:?}", r);
            let r = w.portal.invitation(&t).await;
            prop_assert!(matches!(r, Err(InvitationError::NotFound)), "as an invitation: {:?}", r);
            let r = w.portal.accept_invitation(&t, AcceptInvitation {
                password: "ein ganz neues passwort".into(),
                password_confirmation: "ein ganz neues passwort".into(),
            }).await;
            prop_assert!(matches!(r, Err(InvitationError::NotFound)), "accepting as an invitation: {:?}", r);
            let r = w.portal.verify_registration(&t, "123456", ClientInfo::default()).await;
            prop_assert!(matches!(r, Err(VerifyError::InvalidTicket)), "as a registration ticket: {:?}", r);
            let r = w.portal.resend_code(&t).await;
            prop_assert!(matches!(r, Err(ResendError::InvalidTicket)), "as a ticket to resend: {:?}", r);
            prop_assert!(w.portal.logout(&t).await.is_ok(), "logout answers the same for every token");
            let after = w.counts();
            prop_assert_eq!(after.audit, before.audit, "no audit entry");
            prop_assert_eq!(after.mails, before.mails, "no mail");
            prop_assert_eq!(after.users, before.users, "no account");
            prop_assert_eq!(
                after.sessions, before.sessions + 1,
                "only the login with the 'device' started a (pending) login"
            );
            // Nothing consumed or ended it: the second step still finishes it while it lives.
            let r = w.portal.complete_mfa(CompleteMfa {
                token: t.clone(),
                factor: SecondFactor::Totp(totp::code_at(&secret, w.clock.now())),
                remember_device: false,
                client: ClientInfo::default(),
            }).await;
            if wait < 300 {
                let login = r.unwrap();
                prop_assert!(w.portal.authenticate(login.session.token.expose()).await.is_ok());
            } else {
                prop_assert!(matches!(r, Err(MfaError::NoPendingLogin)), "expired: {:?}", r.err());
            }
            Ok(())
        })?;
    }

    /// Any sequence of failures with any gaps — against the account, from one client address
    /// spraying many addresses (up to its doubling waits and its one-hour block), or both: after
    /// the longest block of either policy has passed since the last failure, the right password
    /// works from that same client address.
    #[test]
    fn throttling_never_blocks_the_right_password_forever(
        gaps in prop::collection::vec((0i64..600, any::<bool>()), 0..40),
        spray in 0usize..=420,
        wait_out in any::<bool>(),
    ) {
        rt().block_on(async {
            let w = World::new();
            w.registered("anna@example.com").await;
            let from = |ip: bool| ClientInfo::new(ip.then_some("10.9.9.9"), None);
            let mut address_blocked = false;
            let mut longest_wait = TimeDelta::zero();
            for i in 0..spray {
                let r = w.portal.login(Login {
                    email: format!("u{i}@example.com"),
                    password: SecretString::new("ganz falsches passwort"),
                    client: from(true),
                }).await;
                if let Err(LoginError::Throttled { retry_at }) = r {
                    address_blocked = true;
                    longest_wait = longest_wait.max(retry_at - w.clock.now());
                    if wait_out {
                        w.clock.set(retry_at);
                    }
                }
            }
            prop_assert!(
                spray <= ThrottlePolicy::ADDRESS.free_failures as usize + 1 || address_blocked,
                "{} failures from one client address were never throttled", spray
            );
            if wait_out && spray >= 400 {
                // 31 failures, then every second attempt counted: past 200, the one-hour block.
                prop_assert_eq!(longest_wait, ThrottlePolicy::ADDRESS.lockout, "the spray reached the block");
            }
            for (gap, same_client) in gaps {
                w.advance(TimeDelta::seconds(gap));
                let _ = w.portal.login(Login {
                    email: "anna@example.com".into(),
                    password: SecretString::new("ganz falsches passwort"),
                    client: from(same_client),
                }).await;
            }
            w.advance(ThrottlePolicy::ACCOUNT.longest_block().max(ThrottlePolicy::ADDRESS.longest_block()));
            let r = w.portal.login(Login {
                email: "anna@example.com".into(),
                password: SecretString::new(PASSWORD),
                client: from(true),
            }).await;
            prop_assert!(matches!(r, Ok(LoginOutcome::Authenticated(_))), "got {:?}", r.err());
            Ok(())
        })?;
    }

    /// The same valid code submitted at the same moment from several pending logins, on a
    /// multi-threaded runtime: exactly one submission wins, round after round, whatever the
    /// number of racers and the step offset (−1, 0, +1) of the code.
    #[test]
    fn a_totp_step_is_accepted_exactly_once_under_concurrent_submissions(
        rounds in prop::collection::vec((2usize..=8, -1i64..=1, 0i64..30), 1..=3)
    ) {
        parallel_rt().block_on(async {
            let w = Arc::new(World::new());
            let secret = with_totp(&w, "anna@example.com").await;
            for (racers, offset, wait) in rounds {
                // Later steps than any accepted before, and past any second-factor delay that
                // the previous round's losers caused.
                w.advance(TimeDelta::minutes(16) + TimeDelta::seconds(wait));
                let mut pendings = Vec::new();
                for _ in 0..racers {
                    let Ok(LoginOutcome::MfaRequired(p)) = login(&w, PASSWORD, None).await else {
                        panic!("no second step");
                    };
                    pendings.push(p);
                }
                let code = totp::code_at(&secret, w.clock.now() + TimeDelta::seconds(30 * offset));
                let barrier = Arc::new(tokio::sync::Barrier::new(racers));
                let tasks: Vec<_> = pendings
                    .into_iter()
                    .map(|p| {
                        let (w, code, barrier) = (w.clone(), code.clone(), barrier.clone());
                        tokio::spawn(async move {
                            barrier.wait().await;
                            w.portal.complete_mfa(CompleteMfa {
                                token: p.token.expose().to_owned(),
                                factor: SecondFactor::Totp(code),
                                remember_device: false,
                                client: ClientInfo::default(),
                            }).await
                        })
                    })
                    .collect();
                let mut wins = 0;
                for t in tasks {
                    match t.await.unwrap() {
                        Ok(_) => wins += 1,
                        // A replayed code; or, once the losers' failures pile up, the delay.
                        Err(MfaError::Code(CodeError::Used) | MfaError::Throttled { .. }) => {}
                        Err(e) => prop_assert!(false, "unexpected {:?}", e),
                    }
                }
                prop_assert_eq!(wins, 1, "{} racers, offset {}", racers, offset);
            }
            Ok(())
        })?;
    }
}
