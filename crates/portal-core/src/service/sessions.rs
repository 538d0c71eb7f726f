//! A user's own sessions: list them and end one or all others.

use super::auth::Principal;
use super::{Planned, Portal, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::error::InfraError;
use crate::ids::SessionId;
use crate::ports::{Commit, Write};
use crate::session::Session;

/// Why a session action failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such session of this user.
    #[error("not found")]
    NotFound,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(SessionError);

impl Portal {
    /// The principal's live sessions and remembered devices, newest first (pending logins are not
    /// listed).
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn my_sessions(&self, principal: &Principal) -> Result<Vec<Session>, SessionError> {
        let now = self.now();
        let mut sessions: Vec<Session> = self
            .deps
            .queries
            .sessions_of_user(principal.user().id())
            .await?
            .into_iter()
            .filter(|s| s.is_alive_at(now))
            .filter(|s| !matches!(s.kind(), crate::session::SessionKind::MfaPending { .. }))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record().created_at));
        Ok(sessions)
    }

    /// Ends one of the principal's sessions (the current one too, like a logout).
    ///
    /// # Errors
    /// Not one of the principal's sessions; infrastructure failures.
    pub async fn end_my_session(
        &self,
        principal: &Principal,
        id: SessionId,
    ) -> Result<(), SessionError> {
        self.transact(|| async {
            let now = self.now();
            let owned = self
                .deps
                .queries
                .sessions_of_user(principal.user().id())
                .await?
                .iter()
                .any(|s| s.id() == id);
            if !owned {
                return Err(SessionError::NotFound);
            }
            let mut commit = Commit::new();
            commit
                .write(Write::DeleteSession(id))
                .audit(self.audit_record(
                    now,
                    principal.user().customer_id(),
                    ActorRef::user(principal.user().id()),
                    Some(principal.user().id()),
                    AuditCategory::SessionsEnded,
                    format!("scope=one; session={id}"),
                ));
            Ok(Planned::new(commit, ()))
        })
        .await
    }

    /// Ends every session of the principal except the current one ("sign out everywhere else").
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn end_my_other_sessions(&self, principal: &Principal) -> Result<(), SessionError> {
        self.transact(|| async {
            let now = self.now();
            let mut commit = Commit::new();
            commit
                .write(Write::DeleteSessionsOfUser {
                    user: principal.user().id(),
                    except: Some(principal.session().id()),
                })
                .audit(self.audit_record(
                    now,
                    principal.user().customer_id(),
                    ActorRef::user(principal.user().id()),
                    Some(principal.user().id()),
                    AuditCategory::SessionsEnded,
                    "scope=others",
                ));
            Ok(Planned::new(commit, ()))
        })
        .await
    }
}
