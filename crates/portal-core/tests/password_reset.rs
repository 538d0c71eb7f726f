//! "Passwort vergessen?" (manual 2.3, R15): one answer for every address, a single-use link that
//! lives one hour, a new password per R13, every session ended, a confirmation mail.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::outbox::Payload;
use portal_core::secret::{SecretString, Token};
use portal_core::service::{
    AcceptInvitation, AuthError, InvitationError, Invite, LoginError, ResetError,
};
use portal_core::testing::{SeededRandom, process_reset_requests};
use portal_core::values::Language;

const N: &str = "100000001";
const NEW: &str = "neues pferd im stall";

fn s(x: &str) -> SecretString {
    SecretString::new(x)
}

async fn reset(w: &World, token: &str, password: &str) -> Result<(), ResetError> {
    w.portal
        .reset_password(token, &s(password), &s(password))
        .await
        .map(|_| ())
}

/// The link token of the last reset mail to `to`.
fn reset_token(w: &World, to: &str) -> String {
    let mails = w.mails_to(to);
    let last = mails.last().unwrap_or_else(|| panic!("no mail to {to}"));
    assert_eq!(last.intent.key(), "password_reset", "{to}");
    last.intent.secret().unwrap().expose().to_owned()
}

#[tokio::test]
async fn forgot_answers_the_same_for_every_address_and_mails_only_who_may_reset() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    w.member("lena@example.com", N).await;
    let lena = w.user_id("lena@example.com").await;
    w.portal
        .lock_user(&op, &number(N), lena, None)
        .await
        .unwrap();
    w.portal
        .invite_user(
            &op,
            &number(N),
            Invite {
                email: email("ida@example.com"),
                first_name: name("Ida"),
                last_name: name("Eingeladen"),
                language: Language::De,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    w.portal
        .register(w.register_cmd("paul@example.com"))
        .await
        .unwrap();
    let before = |a: &str| w.mail_kinds_to(a).len();
    let counts: Vec<usize> = [
        "anna@example.com",
        "lena@example.com",
        "ida@example.com",
        "paul@example.com",
    ]
    .iter()
    .map(|a| before(a))
    .collect();
    let total = w.store.outbox().len();
    for address in [
        "nobody@example.com",
        "not an address",
        "",
        "lena@example.com",
        "ida@example.com",
        "paul@example.com",
        "ANNA@example.com",
    ] {
        let r = w.forgot_password(address).await;
        assert!(r.is_ok(), "{address:?}: {r:?}");
    }
    assert_eq!(w.store.outbox().len(), total + 2, "two mails in all");
    let anna_mails = w.mails_to("anna@example.com");
    assert_eq!(anna_mails.len(), counts[0] + 1);
    let link = anna_mails.last().unwrap();
    assert_eq!(link.intent.key(), "password_reset");
    assert!(
        link.intent.secret().is_some_and(|t| t.expose().len() >= 22),
        "a link token"
    );
    let lena_mails = w.mails_to("lena@example.com");
    assert_eq!(lena_mails.len(), counts[1] + 1);
    let notice = lena_mails.last().unwrap();
    assert_eq!(notice.intent.key(), "password_reset_locked");
    assert!(
        notice.intent.secret().is_none(),
        "no link for a locked account"
    );
    assert_eq!(w.mail_kinds_to("ida@example.com").len(), counts[2]);
    assert_eq!(w.mail_kinds_to("paul@example.com").len(), counts[3]);
    assert!(w.mails_to("nobody@example.com").is_empty());

    let requested: Vec<_> = w
        .audit_of(Some(c.id()))
        .into_iter()
        .filter(|e| e.record.category == AuditCategory::PasswordResetRequested)
        .map(|e| (e.record.subject, e.record.details, e.record.actor.kind))
        .collect();
    assert_eq!(
        requested,
        [
            (
                Some(lena),
                "link=withheld_locked".to_owned(),
                ActorKind::Anonymous
            ),
            (
                Some(id_of(&anna)),
                "link=sent".to_owned(),
                ActorKind::Anonymous
            ),
        ]
    );
}

#[tokio::test]
async fn a_reset_link_sets_the_password_ends_every_session_and_confirms_by_mail() {
    let w = World::new();
    let c = w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let s1 = w.login("anna@example.com").await;
    let s2 = w.login("anna@example.com").await;
    w.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();

    for s in [&s1, &s2] {
        let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
        assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    }
    assert_eq!(w.store.session_count(), 0, "no session, not even a new one");
    assert_eq!(
        w.mail_kinds_to("anna@example.com").last(),
        Some(&"password_changed")
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::PasswordChanged);
    assert_eq!(last.record.subject, Some(id_of(&anna)));
    assert_eq!(last.record.details, "via=reset_link");

    let err = w.try_login("anna@example.com", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "old password: {err:?}"
    );
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]
async fn a_reset_link_works_once() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = reset(&w, &token, "noch ein neues pferd").await.unwrap_err();
    assert!(
        matches!(err, ResetError::Used | ResetError::InvalidLink),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]

async fn a_used_reset_link_answers_used() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    w.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();
    let err = reset(&w, &token, "noch ein neues pferd").await.unwrap_err();
    assert!(matches!(err, ResetError::Used), "got {err:?}");
}

#[tokio::test]
async fn a_reset_link_expires_after_exactly_one_hour() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let bert = w.member("bert@example.com", N).await;
    w.forgot_password("anna@example.com").await.unwrap();
    w.forgot_password("bert@example.com").await.unwrap();
    let anna_token = reset_token(&w, "anna@example.com");
    let bert_token = reset_token(&w, "bert@example.com");
    w.advance(TimeDelta::hours(1) - TimeDelta::seconds(1));
    reset(&w, &anna_token, NEW).await.unwrap();
    w.advance(TimeDelta::seconds(1));
    let before = w.user(id_of(&bert)).await;
    let counts = w.counts();
    let err = reset(&w, &bert_token, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::Expired), "got {err:?}");
    assert_eq!(w.user(id_of(&bert)).await, before);
    assert_eq!(w.counts(), counts);
    w.try_login("bert@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn a_new_request_voids_the_older_link() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.forgot_password("anna@example.com").await.unwrap();
    let older = reset_token(&w, "anna@example.com");
    w.forgot_password("anna@example.com").await.unwrap();
    let newer = reset_token(&w, "anna@example.com");
    assert_ne!(older, newer);
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = reset(&w, &older, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::Used), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    reset(&w, &newer, NEW).await.unwrap();
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]
async fn reset_and_invitation_tokens_do_not_open_each_others_doors() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    let counts = w.counts();
    let err = w.portal.invitation(&token).await.unwrap_err();
    assert!(matches!(err, InvitationError::NotFound), "got {err:?}");
    let err = w
        .portal
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: s(NEW),
                password_confirmation: s(NEW),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, InvitationError::NotFound), "got {err:?}");
    assert_eq!(w.counts(), counts);

    w.portal
        .invite_user(
            &op,
            &number(N),
            Invite {
                email: email("ida@example.com"),
                first_name: name("Ida"),
                last_name: name("Eingeladen"),
                language: Language::De,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    let invitation = w.secret_for("ida@example.com");
    let counts = w.counts();
    let err = reset(&w, &invitation, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::InvalidLink), "got {err:?}");
    assert_eq!(w.counts(), counts);
    // Both still work for what they are.
    reset(&w, &token, NEW).await.unwrap();
    w.portal.invitation(&invitation).await.unwrap();
}

#[tokio::test]
async fn malformed_and_unknown_links_are_invalid() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let counts = w.counts();
    let stranger = Token::generate(&SeededRandom::new(1234));
    for token in ["", "garbage", "a b c", stranger.expose()] {
        let err = reset(&w, token, NEW).await.unwrap_err();
        assert!(
            matches!(err, ResetError::InvalidLink),
            "{token:?}: got {err:?}"
        );
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn at_most_five_reset_mails_an_hour() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.member("lena@example.com", N).await;
    let lena = w.user_id("lena@example.com").await;
    w.portal
        .lock_user(&op, &number(N), lena, None)
        .await
        .unwrap();
    for address in ["anna@example.com", "lena@example.com"] {
        let mails = w.mails_to(address).len();
        for _ in 0..5 {
            w.advance(TimeDelta::minutes(1));
            w.forgot_password(address).await.unwrap();
        }
        assert_eq!(w.mails_to(address).len(), mails + 5, "{address}");
        let counts = w.counts();
        w.advance(TimeDelta::minutes(1));
        w.forgot_password(address).await.unwrap();
        assert_eq!(
            w.counts(),
            counts,
            "{address}: the sixth sends and writes nothing"
        );
    }
    // An hour after the first request, one more is allowed.
    w.advance(TimeDelta::minutes(49));
    let mails = w.mails_to("anna@example.com").len();
    w.forgot_password("anna@example.com").await.unwrap();
    assert_eq!(w.mails_to("anna@example.com").len(), mails + 1);
    assert_eq!(
        w.mail_kinds_to("anna@example.com").last(),
        Some(&"password_reset")
    );
}

#[tokio::test]
async fn a_weak_new_password_is_refused_and_nothing_changes() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let session = w.login("anna@example.com").await;
    w.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    for (password, confirmation) in [
        ("password1", "password1"),
        ("kurz", "kurz"),
        ("Anna Schmidt", "Anna Schmidt"),
        (NEW, "ein anderes pferd"),
    ] {
        let err = w
            .portal
            .reset_password(&token, &s(password), &s(confirmation))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ResetError::Password(_)),
            "{password:?}: got {err:?}"
        );
    }
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    w.principal(&session).await; // still logged in
    reset(&w, &token, NEW).await.unwrap(); // the link still works
}

/// Every write a portal makes, as (what, how many writes, audit records, outbox kinds), in order.
struct Recorder {
    store: std::sync::Arc<adapters_memory::MemoryStore>,
    calls: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl portal_core::ports::Committer for Recorder {
    async fn commit(
        &self,
        commit: portal_core::ports::Commit,
    ) -> Result<(), portal_core::ports::StoreError> {
        let kinds: Vec<_> = commit
            .outbox
            .iter()
            .map(|m| m.payload.kind_key().to_owned())
            .collect();
        self.calls.lock().unwrap().push(format!(
            "commit writes={} audit={} outbox={kinds:?}",
            commit.writes.len(),
            commit.audit.len()
        ));
        self.store.commit(commit).await
    }

    async fn touch_session(
        &self,
        id: portal_core::ids::SessionId,
        last_seen_at: chrono::DateTime<chrono::Utc>,
        idle_expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), portal_core::ports::StoreError> {
        self.calls.lock().unwrap().push("touch_session".into());
        self.store
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
        reset_after: TimeDelta,
    ) -> Result<portal_core::ports::Counter, portal_core::ports::StoreError> {
        self.calls.lock().unwrap().push("bump_counter".into());
        self.store.bump_counter(key, now, reset_after).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), portal_core::ports::StoreError> {
        self.calls.lock().unwrap().push("reset_counter".into());
        self.store.reset_counter(key).await
    }

    async fn purge_expired(
        &self,
        kind: portal_core::ports::Expired,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, portal_core::ports::StoreError> {
        self.calls.lock().unwrap().push("purge_expired".into());
        self.store.purge_expired(kind, cutoff, limit).await
    }
}

/// A portal over the world's store and clock whose writes `recorder` sees.
fn recorded(w: &World, recorder: std::sync::Arc<Recorder>) -> portal_core::Portal {
    let mut deps = w.portal.deps().clone();
    deps.committer = recorder;
    portal_core::Portal::new(deps, w.portal.config().clone(), w.portal.catalog().clone()).unwrap()
}

/// The password-reset requests in the outbox, as (id, address), oldest first.
fn requests(w: &World) -> Vec<(portal_core::ids::OutboxId, Option<String>)> {
    w.store
        .messages()
        .into_iter()
        .filter_map(|m| match m.payload {
            Payload::PasswordResetRequest(r) => Some((m.id, r.email.map(|e| e.to_string()))),
            _ => None,
        })
        .collect()
}

/// Timing (R14, R15): the request writes the same for every well-formed address — known, unknown,
/// locked, invited (cannot log in) or over its hourly cap of links: its counter, named by a keyed
/// hash, then one commit holding only the request for the outbox. Nothing about the account is
/// read or written before the answer; the lookup happens when the request is processed.
#[tokio::test]
async fn forgot_makes_identical_writes_for_known_unknown_locked_and_capped_addresses() {
    use portal_core::throttle::{AccountKey, keys};
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.member("lena@example.com", N).await;
    w.member("bert@example.com", N).await;
    let lena = w.user_id("lena@example.com").await;
    w.portal
        .lock_user(&op, &number(N), lena, None)
        .await
        .unwrap();
    w.invite(&op, N, "ida@example.com", &[]).await;
    // Bert used up his links in the last hour (in the previous hour of the request counter).
    w.clock.set(w.now() + TimeDelta::minutes(54));
    for _ in 0..5 {
        w.forgot_password("bert@example.com").await.unwrap();
        w.advance(TimeDelta::seconds(30));
    }
    w.clock.set(w.now() + TimeDelta::minutes(5));
    assert_eq!(w.now().timestamp() % 3_600 / 60, 1, "in the next hour");

    let recorder = std::sync::Arc::new(Recorder {
        store: w.store.clone(),
        calls: std::sync::Mutex::default(),
    });
    let portal = recorded(&w, recorder.clone());
    let addresses = [
        "anna@example.com",
        "nobody@example.com",
        "lena@example.com",
        "ida@example.com",
        "bert@example.com",
    ];
    let hour = w.now().timestamp().div_euclid(3_600);
    let (audit, mails) = (w.store.audit_len(), w.store.outbox().len());
    for address in addresses {
        recorder.calls.lock().unwrap().clear();
        portal.forgot_password(address).await.unwrap();
        assert_eq!(
            *recorder.calls.lock().unwrap(),
            [
                "bump_counter".to_owned(),
                r#"commit writes=0 audit=0 outbox=["password_reset_request"]"#.to_owned()
            ],
            "{address}"
        );
        let key = keys::reset_requests(&AccountKey::of(None, &email(address)), hour);
        assert!(!key.contains(address.split('@').next().unwrap()), "{key}");
        use portal_core::ports::Queries as _;
        assert_eq!(
            w.store.counter(&key).await.unwrap().map(|c| c.count),
            Some(1),
            "{address}"
        );
    }
    assert_eq!(
        (w.store.audit_len(), w.store.outbox().len()),
        (audit, mails)
    );
    let queued = requests(&w);
    assert_eq!(
        queued[5..]
            .iter()
            .map(|(_, a)| a.clone().unwrap())
            .collect::<Vec<_>>(),
        addresses,
        "one request each, after Bert's five processed ones"
    );

    // Behind the answer: a link for Anna, a notice for Lena, nothing for the rest.
    assert_eq!(process_reset_requests(&w.portal, &*w.store).await, 5);
    assert_eq!(
        mails_since(&w, mails),
        [
            ("anna@example.com".to_owned(), "password_reset"),
            ("lena@example.com".to_owned(), "password_reset_locked"),
        ]
    );
    assert_eq!(w.store.audit_len(), audit + 2);
}

/// Over the hourly cap, a request is not even queued: the counter alone, for every address alike.
#[tokio::test]
async fn requests_beyond_the_hourly_cap_are_counted_but_not_queued() {
    let w = World::new();
    w.registered("anna@example.com").await;
    for address in ["anna@example.com", "nobody@example.com"] {
        for _ in 0..6 {
            w.forgot_password(address).await.unwrap();
        }
    }
    use portal_core::ports::Queries as _;
    use portal_core::throttle::{AccountKey, keys};
    let hour = w.now().timestamp().div_euclid(3_600);
    for address in ["anna@example.com", "nobody@example.com"] {
        let key = keys::reset_requests(&AccountKey::of(None, &email(address)), hour);
        let count = w.store.counter(&key).await.unwrap().map(|c| c.count);
        assert_eq!(count, Some(6), "{address}");
    }
    assert_eq!(requests(&w).len(), 10, "five requests of each address");
    assert!(
        requests(&w).iter().all(|(_, e)| e.is_none()),
        "all processed"
    );
}

/// A process that dies between the request and its processing loses nothing: the request stays
/// in the outbox, and once the dead dispatcher's lease ends the next one processes it.
#[tokio::test]
async fn a_request_survives_a_crash_before_it_is_processed() {
    use portal_core::ports::OutboxStore as _;
    let w = World::new();
    w.registered("anna@example.com").await;
    let mails = w.mails_to("anna@example.com").len();
    w.portal.forgot_password("anna@example.com").await.unwrap();
    // A dispatcher claims it and dies.
    let now = w.now();
    let claimed = w
        .store
        .claim_outbox(
            "password_reset_request",
            uuid::Uuid::from_u128(99),
            now,
            now + TimeDelta::minutes(5),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        process_reset_requests(&w.portal, &*w.store).await,
        0,
        "leased"
    );
    assert_eq!(w.mails_to("anna@example.com").len(), mails);
    w.advance(TimeDelta::minutes(5));
    assert_eq!(process_reset_requests(&w.portal, &*w.store).await, 1);
    assert_eq!(
        w.mail_kinds_to("anna@example.com")[mails..],
        ["password_reset"]
    );
}

/// A process that dies after the link's commit but before the acknowledgement processes the
/// request again after the lease: at least once, but the link goes out only once.
#[tokio::test]
async fn a_request_processed_twice_mails_one_link() {
    use portal_core::outbox::Sender as _;
    use portal_core::ports::OutboxStore as _;
    let w = World::new();
    w.registered("anna@example.com").await;
    let mails = w.mails_to("anna@example.com").len();
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let now = w.now();
    let claimed = w
        .store
        .claim_outbox(
            "password_reset_request",
            uuid::Uuid::from_u128(99),
            now,
            now + TimeDelta::minutes(5),
            10,
        )
        .await
        .unwrap();
    let sender = portal_core::service::PasswordResetRequests(&w.portal);
    sender.send(&claimed[0].message).await.unwrap();
    // … and the process dies before `mark_sent`.
    let audit = w.store.audit_len();
    w.advance(TimeDelta::minutes(5));
    assert_eq!(process_reset_requests(&w.portal, &*w.store).await, 1);
    assert_eq!(
        w.mail_kinds_to("anna@example.com")[mails..],
        ["password_reset"]
    );
    assert_eq!(w.store.audit_len(), audit, "no second audit entry");
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();
}

/// Storage failing while a request is processed: nothing is committed, the request waits for
/// its retry (its error names no address), and the retry sends the link.
#[tokio::test]
async fn an_infrastructure_failure_while_processing_is_retried() {
    use portal_core::ports::{MockCommitter, OutboxStore as _, StoreError};
    let w = World::new();
    w.registered("anna@example.com").await;
    let mails = w.mails_to("anna@example.com").len();
    let audit = w.store.audit_len();
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let mut failing = MockCommitter::new();
    failing
        .expect_commit()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("connection reset".into())));
    let mut deps = w.portal.deps().clone();
    deps.committer = std::sync::Arc::new(failing);
    let broken =
        portal_core::Portal::new(deps, w.portal.config().clone(), w.portal.catalog().clone())
            .unwrap();
    assert_eq!(process_reset_requests(&broken, &*w.store).await, 0);
    assert_eq!(w.mails_to("anna@example.com").len(), mails);
    assert_eq!(w.store.audit_len(), audit);
    let (id, _) = requests(&w)[0].clone();
    let entry = w.store.outbox_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.status, portal_core::outbox::OutboxStatus::Pending);
    assert_eq!(entry.attempts, 1);
    let error = entry.last_error.unwrap();
    assert!(error.starts_with("transient"), "{error}");
    assert!(!error.contains("anna"), "{error}");
    assert_eq!(
        process_reset_requests(&w.portal, &*w.store).await,
        0,
        "not before its retry time"
    );
    w.advance(TimeDelta::seconds(30));
    assert_eq!(process_reset_requests(&w.portal, &*w.store).await, 1);
    assert_eq!(
        w.mail_kinds_to("anna@example.com")[mails..],
        ["password_reset"]
    );
}

/// A processed request is kept (delivered messages stay 30 days) without its address.
#[tokio::test]
async fn a_processed_request_no_longer_holds_the_address() {
    use portal_core::ports::OutboxStore as _;
    let w = World::new();
    w.registered("anna@example.com").await;
    for address in ["anna@example.com", "nobody@example.com"] {
        w.forgot_password(address).await.unwrap();
    }
    let queued = requests(&w);
    assert_eq!(queued.len(), 2);
    for (id, address) in queued {
        assert_eq!(address, None);
        let entry = w.store.outbox_entry(id).await.unwrap().unwrap();
        assert_eq!(entry.status, portal_core::outbox::OutboxStatus::Sent);
        let json = entry.message.payload.to_json();
        assert!(!json.contains("example.com"), "{json}");
        assert!(!entry.message.payload.recipient().contains("example.com"));
    }
}
