//! Housekeeping: dead rows go, a grace period after the last rule that reads them; nothing a
//! rule still needs is ever removed, and nothing is audited.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::ports::{Expired, OutboxStore as _, Queries as _};
use portal_core::service::HousekeepingReport;
use portal_core::throttle::{AccountKey, keys};
use uuid::Uuid;

const N: &str = "100000001";
const SECOND: TimeDelta = TimeDelta::seconds(1);

async fn run(w: &World) -> HousekeepingReport {
    w.portal.housekeeping(&*w.store).await.unwrap()
}

#[tokio::test]
async fn a_session_goes_exactly_one_grace_period_after_it_expired() {
    let w = World::new();
    w.registered("anna@example.com").await;
    let session = w.login("anna@example.com").await;
    assert_eq!(w.counts().sessions, 2, "registration and login");
    let idle = w.portal.config().session_policy.idle_timeout;
    let grace = w.portal.config().housekeeping.grace;
    w.advance(idle + grace - SECOND);
    assert!(
        w.portal.authenticate(session.token.expose()).await.is_err(),
        "dead long before it is purged"
    );
    let audit = w.counts().audit;
    assert_eq!(run(&w).await, HousekeepingReport::default());
    assert_eq!(w.counts().sessions, 2);
    w.advance(SECOND);
    let report = run(&w).await;
    assert_eq!(report.sessions, 2);
    assert_eq!(report.total(), 2);
    assert_eq!(w.counts().sessions, 0);
    assert_eq!(w.counts().audit, audit, "housekeeping is not audited");
    assert_eq!(run(&w).await.total(), 0, "nothing left the second time");
}

/// A run goes on batch after batch until nothing dead is left.
#[tokio::test]
async fn a_run_repeats_batches_until_nothing_is_left() {
    let mut config = portal_core::config::PortalConfig::default();
    config.housekeeping.batch_size = 1;
    let w = World::with_config(config);
    w.registered("anna@example.com").await;
    w.login("anna@example.com").await;
    w.login("anna@example.com").await;
    let c = w.portal.config();
    w.advance(c.session_policy.idle_timeout + c.housekeeping.grace);
    assert_eq!(
        run(&w).await.sessions,
        3,
        "three batches of one, and an empty one"
    );
    assert_eq!(w.counts().sessions, 0);
}

#[tokio::test]
async fn a_live_session_and_its_user_survive_housekeeping() {
    let w = World::new();
    w.registered("anna@example.com").await;
    let grace = w.portal.config().housekeeping.grace;
    w.advance(grace * 3);
    let session = w.login("anna@example.com").await;
    assert_eq!(run(&w).await.sessions, 1, "only the registration's session");
    let p = w.principal(&session).await;
    assert_eq!(p.user().email().as_str(), "anna@example.com");
}

/// An invitation accepted a minute before its link expires may be confirmed hours later, with a
/// re-sent code (the attempt lives `pending_registration_ttl`): housekeeping in between must keep
/// the expired link, which the confirmation completes — even with the shortest grace.
#[tokio::test]
async fn an_invitation_accepted_just_in_time_survives_housekeeping_until_confirmed() {
    let mut config = portal_core::config::PortalConfig::default();
    config.housekeeping.grace = TimeDelta::hours(1);
    let w = World::with_config(config);
    w.customer(N).await;
    let op = w.operator("op@example.com").await;
    let admin = w.admin("chef@example.com", N, &op).await;
    let token = w.invite(&admin, N, "ida@example.com", &[]).await;
    w.advance(w.portal.config().invitation_ttl - TimeDelta::minutes(1));
    let ticket = w.accept_invitation_ticket(&token).await;
    // The first code lapses; twenty hours later Ida asks for a new one.
    w.advance(TimeDelta::hours(20));
    let report = run(&w).await;
    assert_eq!(
        (report.action_tokens, report.challenges),
        (0, 0),
        "{report}"
    );
    let ticket = w.portal.resend_code(ticket.ticket.expose()).await.unwrap();
    let code = w.secret_for("ida@example.com");
    w.portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .expect("the re-sent code still confirms the invitation");

    // A month later the used link still answers "used"; after the retention it is gone (the
    // confirmed attempt went with the confirmation), the account stays.
    let retention = w.portal.config().housekeeping.sent_mail_retention;
    w.advance(retention - TimeDelta::hours(20) + TimeDelta::minutes(1) - SECOND);
    assert_eq!(run(&w).await.action_tokens, 0);
    assert!(matches!(
        w.portal.invitation(&token).await,
        Err(portal_core::service::InvitationError::Used)
    ));
    w.advance(SECOND);
    let report = run(&w).await;
    assert!(report.action_tokens >= 1, "{report}");
    assert!(matches!(
        w.portal.invitation(&token).await,
        Err(portal_core::service::InvitationError::NotFound)
    ));
    let ida = w.user_id("ida@example.com").await;
    assert!(w.user(ida).await.is_active());
}

/// An abandoned registration's attempt stays while its ticket could still re-send a code, and
/// goes a grace period after the ticket died.
#[tokio::test]
async fn an_abandoned_registration_attempt_goes_after_its_lifetime_and_the_grace() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap();
    let c = w.portal.config();
    let (ttl, grace) = (c.pending_registration_ttl, c.housekeeping.grace);
    w.advance(ttl - SECOND);
    assert_eq!(run(&w).await.challenges, 0);
    w.portal
        .resend_code(ticket.ticket.expose())
        .await
        .expect("the attempt is alive until its lifetime ends");
    w.advance(grace);
    assert_eq!(run(&w).await.challenges, 0, "kept through the grace");
    w.advance(SECOND);
    assert_eq!(run(&w).await.challenges, 1);
    assert_eq!(
        w.portal
            .resend_code(ticket.ticket.expose())
            .await
            .unwrap_err()
            .to_string(),
        portal_core::service::ResendError::InvalidTicket.to_string()
    );
}

#[tokio::test]
async fn login_throttles_outlive_housekeeping_until_they_would_reset_anyway() {
    let w = World::new();
    w.registered("anna@example.com").await;
    for _ in 0..3 {
        assert!(
            w.try_login("anna@example.com", "falsch falsch")
                .await
                .is_err()
        );
    }
    let account = AccountKey::of(None, &email("anna@example.com"));
    let key = keys::login_pair(&account, "127.0.0.1");
    let count = |w: &World| {
        let store = w.store.clone();
        let key = key.clone();
        async move { store.counter(&key).await.unwrap().map(|c| c.count) }
    };
    assert_eq!(count(&w).await, Some(3));
    let lp = w.portal.config().login_protection;
    let longest = lp
        .account
        .reset_after
        .max(lp.pair.reset_after)
        .max(lp.account_daily.reset_after)
        .max(lp.known_browser.reset_after)
        .max(lp.address.reset_after)
        .max(lp.second_factor.reset_after)
        .max(TimeDelta::days(1));
    let grace = w.portal.config().housekeeping.grace;
    w.advance(longest + grace - SECOND);
    run(&w).await;
    assert_eq!(count(&w).await, Some(3), "kept while a rule could read it");
    w.advance(SECOND);
    assert!(run(&w).await.counters >= 1);
    assert_eq!(count(&w).await, None);
    // And the account is not blocked by the purge's absence of a counter: the right password works.
    w.login("anna@example.com").await;
}

#[tokio::test]
async fn delivered_mail_goes_after_its_retention_and_undelivered_mail_never() {
    let w = World::new();
    w.registered("anna@example.com").await;
    w.registered("bert@example.com").await;
    let queued = w.store.outbox().len();
    assert!(queued >= 2);
    let claim = Uuid::from_u128(1);
    let now = w.now();
    let claimed = w
        .store
        .claim_outbox("mail", claim, now, now + TimeDelta::minutes(1), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), queued);
    let (first, rest) = claimed.split_first().unwrap();
    assert!(w.store.mark_sent(first.id(), claim, now).await.unwrap());
    for e in rest {
        assert!(
            w.store
                .mark_failed(e.id(), claim, "550", None)
                .await
                .unwrap()
        );
    }
    let retention = w.portal.config().housekeeping.sent_mail_retention;
    w.advance(retention - SECOND);
    assert_eq!(run(&w).await.sent_mail, 0);
    w.advance(SECOND);
    assert_eq!(run(&w).await.sent_mail, 1);
    assert!(w.store.outbox_entry(first.id()).await.unwrap().is_none());
    assert_eq!(
        w.store.dead_letters(None, 100).await.unwrap().len(),
        rest.len(),
        "dead letters wait for an operator however old"
    );
}

#[tokio::test]
async fn cutoffs_lie_past_every_rule_that_reads_the_rows() {
    let w = World::new();
    let now = w.now();
    let c = w.portal.config();
    let grace = c.housekeeping.grace;
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::Sessions, now),
        now - grace
    );
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::Challenges, now),
        now - c.pending_registration_ttl - grace,
    );
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::ActionTokens, now),
        now - c.housekeeping.sent_mail_retention,
        "links answer \"expired\" / \"used\" for 30 days"
    );
    for kind in [Expired::Challenges, Expired::ActionTokens] {
        // The hourly caps of code and reset mails count back one hour.
        assert!(w.portal.housekeeping_cutoff(kind, now) < now - TimeDelta::hours(1));
    }
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::Counters, now),
        now - TimeDelta::days(1) - grace,
        "the longest window of the defaults: a day"
    );
}

#[tokio::test]
async fn counters_are_kept_as_long_as_the_link_throttles_read_them() {
    let mut config = portal_core::config::PortalConfig::default();
    config.link_user_throttle.reset_after = TimeDelta::days(3);
    let w = World::with_config(config.clone());
    let now = w.now();
    let grace = config.housekeeping.grace;
    assert_eq!(config.longest_counter_lifetime(), TimeDelta::days(3));
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::Counters, now),
        now - TimeDelta::days(3) - grace,
        "the link throttle per user"
    );

    let mut config = portal_core::config::PortalConfig::default();
    config.link_address_throttle.reset_after = TimeDelta::days(2);
    let w = World::with_config(config.clone());
    assert_eq!(
        w.portal.housekeeping_cutoff(Expired::Counters, now),
        now - TimeDelta::days(2) - grace,
        "the link throttle per address"
    );
}

async fn purged_entries(w: &World, op: &portal_core::Actor, customer: Option<&str>) -> usize {
    let query = portal_core::service::AuditListQuery {
        categories: vec![portal_core::audit::AuditCategory::UserPurged],
        ..Default::default()
    };
    let page = match customer {
        Some(n) => w
            .portal
            .customer_audit(op, &number(n), &query, portal_core::values::Language::De)
            .await
            .unwrap(),
        None => w
            .portal
            .global_audit(op, &query, portal_core::values::Language::De)
            .await
            .unwrap(),
    };
    page.items.len()
}

/// Retention: a registration never confirmed goes `pending_registration_retention` after it
/// began, an invitation never accepted `invitation_retention` after its link expired — not a
/// second before — each removal audited (the registration in the global log, the invitation in
/// the customer's); accepted and confirmed users stay.
#[tokio::test]
async fn unconfirmed_registrations_and_unaccepted_invitations_go_at_their_retention() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer(N).await;
    let chef = w.admin("chef@example.com", N, &op).await;
    w.portal
        .register(w.register_cmd("paula@example.com"))
        .await
        .unwrap();
    w.invite(&chef, N, "ida@example.com", &[]).await;
    w.invited(&chef, N, "emil@example.com", &[]).await;
    let c = w.portal.config().clone();
    let users = w.counts().users;

    w.advance(c.housekeeping.pending_registration_retention - SECOND);
    assert_eq!(run(&w).await.pending_registrations, 0, "a second before");
    assert_eq!(w.counts().users, users);
    w.advance(SECOND);
    let report = run(&w).await;
    assert_eq!((report.pending_registrations, report.invitations), (1, 0));
    assert_eq!(w.counts().users, users - 1);
    assert_eq!(purged_entries(&w, &op, None).await, 1);

    // The invitation link lives `invitation_ttl`; the retention counts from its expiry.
    let due = c.invitation_ttl + c.housekeeping.invitation_retention
        - c.housekeeping.pending_registration_retention;
    w.advance(due - SECOND);
    assert_eq!(run(&w).await.invitations, 0, "a second before");
    w.advance(SECOND);
    let report = run(&w).await;
    assert_eq!(report.invitations, 1);
    assert_eq!(w.counts().users, users - 2, "Emil, who accepted, stays");
    assert_eq!(purged_entries(&w, &op, Some(N)).await, 1);
    assert_eq!(run(&w).await.invitations, 0, "nothing left");
    assert!(
        w.portal
            .verify_audit_chain(&op, Some(&number(N)))
            .await
            .is_ok()
    );
}

/// A re-sent invitation starts the period again from its new link's expiry.
#[tokio::test]
async fn a_resent_invitation_starts_its_retention_again() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer(N).await;
    let chef = w.admin("chef@example.com", N, &op).await;
    w.invite(&chef, N, "ida@example.com", &[]).await;
    let c = w.portal.config().clone();
    w.advance(c.invitation_ttl + c.housekeeping.invitation_retention - TimeDelta::days(1));
    let ida = w
        .portal
        .deps()
        .queries
        .user_by_email(&email("ida@example.com"))
        .await
        .unwrap()
        .unwrap();
    w.portal
        .resend_invitation(&chef, &number(N), ida.id())
        .await
        .unwrap();
    w.advance(TimeDelta::days(2));
    assert_eq!(run(&w).await.invitations, 0, "the new link counts");
    w.advance(c.invitation_ttl + c.housekeeping.invitation_retention);
    assert_eq!(run(&w).await.invitations, 1);
}

/// Change-log retention is off by default; with it, old entries go from the start of each
/// chain, the chain still verifies (from the checkpoint) and new entries append as before.
#[tokio::test]
async fn change_log_retention_keeps_the_chain_verifiable() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer(N).await;
    let chef = w.admin("chef@example.com", N, &op).await;
    w.advance(TimeDelta::days(400));
    assert_eq!(run(&w).await.audit_entries, 0, "kept forever by default");
    let mut config = w.portal.config().clone();
    config.housekeeping.audit_retention = Some(TimeDelta::days(365));
    let keeping = w.sibling(config, true);
    let before = w.counts().audit;
    let report = keeping.housekeeping(&*w.store).await.unwrap();
    assert!(report.audit_entries > 0, "{report:?}");
    assert_eq!(
        w.counts().audit,
        before - usize::try_from(report.audit_entries).unwrap()
    );
    let verified = keeping
        .verify_audit_chain(&op, Some(&number(N)))
        .await
        .unwrap();
    assert!(verified.pruned_through.is_some(), "{verified:?}");
    w.invite(&chef, N, "new@example.com", &[]).await;
    let after = keeping
        .verify_audit_chain(&op, Some(&number(N)))
        .await
        .unwrap();
    assert!(after.entries > verified.entries);
    assert!(keeping.verify_audit_chain(&op, None).await.is_ok());
    // The export continues from the checkpoint and verifies offline; a moved checkpoint does
    // not (it is in the signed head).
    let text = keeping
        .export_customer_audit(&op, &number(N))
        .await
        .unwrap();
    use portal_core::audit_export::{Keys, verify_export};
    let ok = verify_export(&text, Keys::FromHeader).unwrap();
    assert_eq!(ok.entries, after.entries + verified.pruned_through.unwrap());
    let through = verified.pruned_through.unwrap();
    let moved = text.replacen(
        &format!("\"pruned\":{{\"seq\":{through},"),
        &format!("\"pruned\":{{\"seq\":{},", through + 1),
        1,
    );
    assert_ne!(moved, text);
    assert!(verify_export(&moved, Keys::FromHeader).is_err());
}
