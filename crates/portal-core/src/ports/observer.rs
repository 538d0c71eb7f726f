//! What the core reports for operators to count (metrics): how each login attempt ended. Only
//! the core knows it — the HTTP layer sees `InvalidCredentials` alike for a wrong password and
//! an account that may not log in, and nothing of a throttle's reason.

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginObservation {
    /// Signed in with the password: alone, with a remembered device, or past the second step
    /// (whichever factor, a passkey too).
    Success,
    /// Wrong e-mail or password, or the right password of an account that may not log in
    /// (locked, unfinished).
    WrongPassword,
    /// Refused by a throttle before the password was checked.
    Throttled,
    /// The password was right; the second factor is asked for (the second step follows).
    SecondFactorRequired,
    /// The second step failed: wrong, expired or used-up code, no pending login, throttled.
    SecondFactorFailed,
    /// Signed in with a passkey alone (no password).
    PasskeySuccess,
    /// A sign-in with a passkey alone was refused: an unknown or another account's credential,
    /// a wrong origin or relying party, a challenge unknown, used or expired, a replayed answer,
    /// no user verification, a locked account. (Throttled ones are [`Self::Throttled`].)
    PasskeyRefused,
}

impl LoginObservation {
    /// Every outcome.
    pub const ALL: [Self; 7] = [
        Self::Success,
        Self::WrongPassword,
        Self::Throttled,
        Self::SecondFactorRequired,
        Self::SecondFactorFailed,
        Self::PasskeySuccess,
        Self::PasskeyRefused,
    ];

    /// Stable key (a metric label).
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::WrongPassword => "wrong_password",
            Self::Throttled => "throttled",
            Self::SecondFactorRequired => "second_factor_required",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::PasskeySuccess => "passkey_success",
            Self::PasskeyRefused => "passkey_refused",
        }
    }
}

/// Receives what the core reports as it happens. Every method has a no-op default, so an
/// observer implements only what it counts.
///
/// An implementation MUST return quickly and MUST NOT fail or block: it is called on the
/// request path, after the outcome is decided (a failing observer cannot change an outcome).
pub trait Observer: Send + Sync {
    /// A login attempt (first or second step) ended so.
    fn login(&self, outcome: LoginObservation) {
        let _ = outcome;
    }
}

/// The observer that reports nowhere (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
