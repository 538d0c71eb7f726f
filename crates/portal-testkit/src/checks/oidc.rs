//! The OpenID Connect provider's rows: clients, grants, codes and tokens (single use decided by
//! the store), consents, signing keys, and the `amr` of a session.

use super::{is_conflict, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::oidc::{AccessTokenFormat, Client, Grant, OidcToken, OidcTokenKind, SigningKey};
use portal_core::ports::{Commit, Expired, Write};
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_oidc {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; oidc;
            oidc_clients_grants_tokens_and_keys_round_trip,
            an_oidc_token_is_used_at_most_once,
        );
    };
}

fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: "App".into(),
        secret_hash: Some(token_hash()),
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: Some("https://app.example/bcl".into()),
        public: false,
        first_party: true,
        required_permission: Some("documents".into()),
        require_second_factor: false,
        access_tokens: AccessTokenFormat::Jwt,
        disabled: false,
        created_at: t0(),
        version: 1,
    }
}

fn grant(
    client: &str,
    user: portal_core::ids::UserId,
    session: portal_core::ids::SessionId,
) -> Grant {
    Grant {
        id: new_uuid(),
        client_id: client.into(),
        user_id: user,
        session_id: session,
        scopes: vec!["openid".into(), "portal".into()],
        nonce: Some("n".into()),
        auth_time: t0(),
        amr: vec!["pwd".into(), "otp".into()],
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: Some("c".repeat(43)),
        created_at: t0(),
        revoked_at: None,
        version: 1,
    }
}

/// Clients, grants, tokens, consents and keys read back as written; versioned updates apply
/// once; a session's `amr` round-trips; expired tokens are purged.
pub async fn oidc_clients_grants_tokens_and_keys_round_trip<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000095").await;
    let u = employee(c.id(), "oidc@example.com", "Olga", "Idc");
    let mut s = session(u.id(), token_hash(), t0());
    s.set_methods(vec!["pwd".into(), "otp".into()]);
    user_with_session(&*store, &u, &s).await;
    let stored = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(stored[0].methods(), ["pwd", "otp"], "amr round-trips");

    let app = client("app-1");
    let g = grant("app-1", u.id(), s.id());
    let t = OidcToken {
        hash: token_hash(),
        kind: OidcTokenKind::Refresh,
        grant_id: g.id,
        created_at: t0(),
        expires_at: t0() + chrono::TimeDelta::minutes(5),
        used_at: None,
    };
    let key = SigningKey {
        kid: "k1".into(),
        created_at: t0(),
        retired_at: None,
        sealed_private_key: "v1.sealed".into(),
        public_jwk: "{}".into(),
        version: 1,
    };
    commit_ok(
        &*store,
        writes([
            Write::InsertOidcClient(app.clone()),
            Write::InsertOidcGrant(g.clone()),
            Write::InsertOidcToken(t.clone()),
            Write::InsertSigningKey(key.clone()),
            Write::UpsertOidcConsent {
                user: u.id(),
                client_id: "app-1".into(),
                scopes: vec!["openid".into()],
            },
        ]),
    )
    .await;
    assert_eq!(store.oidc_client("app-1").await.unwrap(), Some(app.clone()));
    assert_eq!(store.oidc_clients().await.unwrap(), vec![app.clone()]);
    assert_eq!(store.oidc_grant(g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(
        store.oidc_grants_of_user(u.id()).await.unwrap(),
        vec![g.clone()]
    );
    assert_eq!(
        store.oidc_grants_of_session(s.id()).await.unwrap(),
        vec![g.clone()]
    );
    assert_eq!(store.oidc_token(&t.hash).await.unwrap(), Some(t.clone()));
    assert_eq!(store.signing_keys().await.unwrap(), vec![key.clone()]);
    assert_eq!(
        store.oidc_consent(u.id(), "app-1").await.unwrap(),
        Some(vec!["openid".to_owned()])
    );
    // A taken client id fails the whole commit.
    let dup = store
        .commit(writes([Write::InsertOidcClient(client("app-1"))]))
        .await;
    assert!(dup.is_err(), "duplicate client id");

    let mut changed = app.clone();
    changed.disabled = true;
    commit_ok(&*store, writes([Write::UpdateOidcClient(changed.clone())])).await;
    let stale = store
        .commit(writes([Write::UpdateOidcClient(changed)]))
        .await;
    assert!(stale.as_ref().is_err_and(is_conflict), "{stale:?}");
    let back = store.oidc_client("app-1").await.unwrap().unwrap();
    assert!(back.disabled);
    assert_eq!(back.version, 2);

    let mut revoked = g.clone();
    revoked.revoked_at = Some(t0());
    commit_ok(&*store, writes([Write::UpdateOidcGrant(revoked)])).await;
    let back = store.oidc_grant(g.id).await.unwrap().unwrap();
    assert_eq!(back.revoked_at, Some(t0()));

    let mut retired = key.clone();
    retired.retired_at = Some(t0());
    commit_ok(&*store, writes([Write::UpdateSigningKey(retired)])).await;
    assert_eq!(
        store.signing_keys().await.unwrap()[0].retired_at,
        Some(t0())
    );

    commit_ok(
        &*store,
        writes([Write::UpsertOidcConsent {
            user: u.id(),
            client_id: "app-1".into(),
            scopes: vec!["openid".into(), "email".into()],
        }]),
    )
    .await;
    assert_eq!(
        store.oidc_consent(u.id(), "app-1").await.unwrap(),
        Some(vec!["openid".to_owned(), "email".to_owned()])
    );

    let n = store
        .purge_expired(
            Expired::OidcTokens,
            t0() + chrono::TimeDelta::minutes(5),
            100,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.oidc_token(&t.hash).await.unwrap(), None);
}

/// Of two uses of one code or token, exactly one succeeds; a failed use changes nothing else
/// in its commit.
pub async fn an_oidc_token_is_used_at_most_once<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000096").await;
    let u = employee(c.id(), "once@example.com", "Otto", "Once");
    let s = session(u.id(), token_hash(), t0());
    let g = grant("app-2", u.id(), s.id());
    let code = OidcToken {
        hash: token_hash(),
        kind: OidcTokenKind::Code,
        grant_id: g.id,
        created_at: t0(),
        expires_at: t0() + chrono::TimeDelta::minutes(1),
        used_at: None,
    };
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(s),
            Write::InsertOidcClient(client("app-2")),
            Write::InsertOidcGrant(g.clone()),
            Write::InsertOidcToken(code.clone()),
        ]),
    )
    .await;
    let access = |n: u8| OidcToken {
        hash: token_hash(),
        kind: OidcTokenKind::Access,
        grant_id: g.id,
        created_at: t0(),
        expires_at: t0() + chrono::TimeDelta::minutes(i64::from(n)),
        used_at: None,
    };
    let first_access = access(5);
    let mut first = Commit::new();
    first
        .write(Write::UseOidcToken {
            hash: code.hash,
            at: t0(),
        })
        .write(Write::InsertOidcToken(first_access.clone()));
    let second_access = access(6);
    let mut second = Commit::new();
    second
        .write(Write::UseOidcToken {
            hash: code.hash,
            at: t0(),
        })
        .write(Write::InsertOidcToken(second_access.clone()));
    let (a, b) = tokio::join!(store.commit(first), store.commit(second));
    assert!(a.is_ok() != b.is_ok(), "exactly one use wins: {a:?} {b:?}");
    let loser = if a.is_ok() {
        &second_access
    } else {
        &first_access
    };
    assert_eq!(
        store.oidc_token(&loser.hash).await.unwrap(),
        None,
        "nothing of the losing commit"
    );
    let used = store.oidc_token(&code.hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(t0()));
    let unknown = store
        .commit(writes([Write::UseOidcToken {
            hash: token_hash(),
            at: t0(),
        }]))
        .await;
    assert!(unknown.as_ref().is_err_and(is_conflict));
}
