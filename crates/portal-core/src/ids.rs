//! Typed identifiers. Every entity has its own id type so a `UserId` can never be passed where a
//! `CustomerId` is expected. Ids are minted through the [`IdGenerator`](crate::ports::IdGenerator)
//! port, never by calling `Uuid::new_v4()` inside the core.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID read back from storage or minted by an [`IdGenerator`](crate::ports::IdGenerator).
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| InvalidId)
            }
        }
    };
}

/// The text given is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

id_type!(
    /// Identifies a [`Customer`](crate::customer::Customer) (tenant).
    CustomerId
);
id_type!(
    /// Identifies a [`User`](crate::user::User).
    UserId
);
id_type!(
    /// Identifies a [`Session`](crate::session::Session).
    SessionId
);
id_type!(
    /// Identifies an [`EmailChallenge`](crate::challenge::EmailChallenge) (a mailed code).
    ChallengeId
);
id_type!(
    /// Identifies an [`ActionToken`](crate::token::ActionToken) (reset or invitation link).
    ActionTokenId
);
id_type!(
    /// Identifies an [`AdminRequest`](crate::admin_request::AdminRequest).
    AdminRequestId
);
id_type!(
    /// Identifies an [`AuditEntry`](crate::audit::AuditEntry).
    AuditEntryId
);
id_type!(
    /// Identifies an [`OutboxMessage`](crate::outbox::OutboxMessage).
    OutboxId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = UserId::from_uuid(Uuid::from_u128(42));
        let parsed: UserId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert_eq!("not-a-uuid".parse::<UserId>(), Err(InvalidId));
        assert_eq!("".parse::<CustomerId>(), Err(InvalidId));
    }
}
