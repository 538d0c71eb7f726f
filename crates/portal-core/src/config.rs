//! Settings of an installation, with the defaults a newcomer gets.

use crate::challenge::CodePolicy;
use crate::customer::Affiliation;
use crate::password::PasswordPolicy;
use crate::session::SessionPolicy;
use crate::throttle::LoginProtection;
use chrono::TimeDelta;

/// Everything configurable about the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// Password rules (R13).
    pub password_policy: PasswordPolicy,
    /// Mailed codes (R7).
    pub code_policy: CodePolicy,
    /// Session lifetimes.
    pub session_policy: SessionPolicy,
    /// Reset links live this long (default 1 h, at most 24 h).
    pub reset_link_ttl: TimeDelta,
    /// Reset mails per account and hour; further requests answer the same but send nothing.
    pub reset_requests_per_hour: u32,
    /// Invitation links live this long (default 7 days).
    pub invitation_ttl: TimeDelta,
    /// A registration attempt (and every other mailed-code attempt: an accepted invitation, an
    /// e-mail change) is dead this long after it started, however often its code was re-sent:
    /// its ticket then answers "invalid". Default 24 h; between the code lifetime and 30 days.
    pub pending_registration_ttl: TimeDelta,
    /// Rows per list page when the client does not say (the manual's "10 Einträge anzeigen").
    pub default_page_size: u32,
    /// Largest page a client may ask for.
    pub max_page_size: u32,
    /// Page numbers are accepted while they skip at most this many rows; deeper pages use cursors.
    pub max_page_offset: u32,
    /// Longest password accepted at login, in bytes (longer ones fail without hashing).
    pub max_password_bytes: usize,
    /// The product affiliations users choose from.
    pub affiliations: Vec<Affiliation>,
    /// Permissions a new customer gives joining users unless set otherwise (the manual pre-checks
    /// "Meine Supportanfragen"). Keys not in the catalog are ignored.
    pub default_joiner_permissions: Vec<String>,
    /// Throttling of logins and second-factor codes (R14).
    pub login_protection: LoginProtection,
    /// The server key that seals TOTP secrets at rest. Without it, authenticator apps cannot be
    /// set up (the server generates and keeps one; embedders supply their own).
    pub mfa_key: Option<crate::secretbox::MfaKey>,
    /// Keys of earlier server secrets: they still open what they sealed (never seal), until
    /// [`Portal::reseal_secrets`](crate::service::Portal::reseal_secrets) has re-sealed it all
    /// under `mfa_key`. Empty unless the server secret is being changed.
    pub mfa_previous_keys: Vec<crate::secretbox::MfaKey>,
    /// The OpenID Connect issuer: the server's public URL without a trailing slash (`iss` of
    /// every token, and of the logout tokens the core queues).
    pub oidc_issuer: String,
    /// The key that names accounts in login counters (keyed hash of the address typed, so no
    /// counter row holds an address in clear). Servers derive it from their secret; without it a
    /// fixed public key is used.
    pub counter_key: Option<crate::throttle::CounterKey>,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// Sensitive changes (password, e-mail, second factors) need a credential proven within
    /// this window (step-up; default 15 min).
    pub step_up_window: TimeDelta,
    /// How long the second step of a login may take (default 5 min).
    pub mfa_login_ttl: TimeDelta,
    /// Wrong second-factor codes allowed per login attempt.
    pub mfa_login_attempts: u32,
    /// "Mich auf diesem Gerät für 30 Tage merken" (R18).
    pub remember_device_ttl: TimeDelta,
    /// SMS and voice codes live this long (at most 10 minutes, R19).
    pub phone_code_ttl: TimeDelta,
    /// An authenticator app must be confirmed within this long after setup started.
    pub totp_enrolment_ttl: TimeDelta,
    /// Housekeeping (expired sessions, codes, links and counters, old delivered mail).
    pub housekeeping: HousekeepingPolicy,
    /// Daily budgets of messages to administrators and of invitations.
    pub mail_budgets: crate::throttle::MailBudgets,
    /// Throttle of failed attempts to link to a customer, per user.
    pub link_user_throttle: crate::throttle::ThrottlePolicy,
    /// Throttle of failed attempts to link to a customer, per client address.
    pub link_address_throttle: crate::throttle::ThrottlePolicy,
    /// Throttle of failed attempts to link with an old account, per old username.
    pub link_legacy_name_throttle: crate::throttle::ThrottlePolicy,
    /// The hash an old password is verified against when no old account has the username typed
    /// (or it was linked already), so unknown and known names cost alike (R8, like R14 for
    /// logins). Choose one with the algorithm and cost of the imported hashes (`portal legacy
    /// import` lists them); default bcrypt cost 10, [`LegacyHash::default_dummy`](crate::legacy_hash::LegacyHash::default_dummy).
    pub legacy_dummy_hash: crate::legacy_hash::LegacyHash,
    /// R22 for operators: every operator must have a second factor (led to set one up right
    /// after signing in, nothing else reachable until done). On by default, and `portal serve`
    /// offers no setting to turn it off; only a host application embedding the core may switch
    /// it off (e.g. for its own tests). Customers' policies apply regardless.
    pub operators_need_second_factor: bool,
}

/// What [`Portal::housekeeping`](crate::service::Portal::housekeeping) removes, and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingPolicy {
    /// A row is removed only once it has been dead this long beyond every rule that reads it
    /// (default 1 day, between 1 hour and 365 days): an expired session, say, stays listed for
    /// a day after it ended.
    pub grace: TimeDelta,
    /// Delivered mails are removed this long after they were sent (default 30 days, between 1
    /// day and 10 years). Pending and dead-lettered mails are never removed.
    pub sent_mail_retention: TimeDelta,
    /// Rows deleted per statement (default 500, between 1 and 10,000): each batch is its own
    /// short transaction.
    pub batch_size: u32,
    /// How long change-log entries are kept: `None` (the default) keeps them forever; else
    /// entries older than this are removed from the start of each chain (at least 1 day). A
    /// checkpoint keeps what remains verifiable (docs/storage.md, "Retention").
    pub audit_retention: Option<TimeDelta>,
    /// Registrations whose mailed code was never confirmed are removed (audited) this long after
    /// they began (default 7 days, between 1 day and 10 years; their code dies after
    /// `pending_registration_ttl` anyway).
    pub pending_registration_retention: TimeDelta,
    /// Invited users who never accepted are removed (audited) once they were invited and their
    /// last invitation link expired this long ago (default 30 days, between 1 day and
    /// `sent_mail_retention`: expired links are kept that long, so a re-sent invitation is
    /// always seen).
    pub invitation_retention: TimeDelta,
}

impl Default for HousekeepingPolicy {
    fn default() -> Self {
        Self {
            grace: TimeDelta::days(1),
            sent_mail_retention: TimeDelta::days(30),
            batch_size: 500,
            audit_retention: None,
            pending_registration_retention: TimeDelta::days(7),
            invitation_retention: TimeDelta::days(30),
        }
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            password_policy: PasswordPolicy::default(),
            code_policy: CodePolicy::default(),
            session_policy: SessionPolicy::default(),
            reset_link_ttl: TimeDelta::hours(1),
            reset_requests_per_hour: 5,
            invitation_ttl: TimeDelta::days(7),
            pending_registration_ttl: TimeDelta::hours(24),
            default_page_size: 10,
            max_page_size: 100,
            max_page_offset: 1_000,
            max_password_bytes: 1_024,
            affiliations: Affiliation::defaults(),
            default_joiner_permissions: vec!["support_requests".to_owned()],
            login_protection: LoginProtection::default(),
            mfa_key: None,
            mfa_previous_keys: Vec::new(),
            oidc_issuer: "http://localhost:8080".to_owned(),
            counter_key: None,
            totp_issuer: "Portal".to_owned(),
            step_up_window: TimeDelta::minutes(15),
            mfa_login_ttl: TimeDelta::minutes(5),
            mfa_login_attempts: 5,
            remember_device_ttl: TimeDelta::days(30),
            phone_code_ttl: TimeDelta::minutes(10),
            totp_enrolment_ttl: TimeDelta::minutes(15),
            housekeeping: HousekeepingPolicy::default(),
            mail_budgets: crate::throttle::MailBudgets::default(),
            link_user_throttle: crate::throttle::ThrottlePolicy::LINK_USER,
            link_address_throttle: crate::throttle::ThrottlePolicy::LINK_ADDRESS,
            link_legacy_name_throttle: crate::throttle::ThrottlePolicy::LINK_LEGACY_NAME,
            legacy_dummy_hash: crate::legacy_hash::LegacyHash::default_dummy(),
            operators_need_second_factor: true,
        }
    }
}

/// A setting outside its safe range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl PortalConfig {
    /// The longest time any throttle counter is read after its last bump: the largest
    /// `reset_after` of the login protection (login counters, second factor, phone and recovery
    /// code budgets), the link throttles and the daily mail budgets. Housekeeping keeps counters
    /// at least this long (plus its grace).
    #[must_use]
    pub fn longest_counter_lifetime(&self) -> TimeDelta {
        let lp = &self.login_protection;
        let b = &self.mail_budgets;
        let mail = [
            b.contact_per_sender,
            b.contact_per_recipient,
            b.invitations_per_sender,
            b.invitations_per_recipient,
            b.data_exports_per_person,
            b.data_exports_per_sender,
        ]
        .map(|limit| crate::throttle::MailBudgets::daily(limit).reset_after());
        [
            lp.account.reset_after,
            lp.pair.reset_after,
            lp.account_daily.reset_after,
            lp.known_browser.reset_after,
            lp.address.reset_after,
            lp.second_factor.reset_after,
            lp.phone_codes().reset_after(),
            lp.recovery_sends().reset_after(),
            self.link_user_throttle.reset_after,
            self.link_address_throttle.reset_after,
            self.link_legacy_name_throttle.reset_after,
        ]
        .into_iter()
        .chain(mail)
        .max()
        .unwrap_or(TimeDelta::zero())
    }

    /// Checks that every setting is in its safe range.
    ///
    /// # Errors
    /// The first setting that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_owned()));
        let p = &self.password_policy;
        if p.min_chars < 8 {
            return err("password_policy.min_chars must be at least 8");
        }
        if p.max_chars < 64 || p.max_chars < p.min_chars {
            return err("password_policy.max_chars must be at least 64 and at least min_chars");
        }
        if self.max_password_bytes < p.max_chars * 4 {
            return err("max_password_bytes must hold max_chars of 4-byte characters");
        }
        let c = &self.code_policy;
        if c.ttl <= TimeDelta::zero() || c.ttl > TimeDelta::minutes(15) {
            return err("code_policy.ttl must be between 0 and 15 minutes");
        }
        if c.max_attempts == 0 || c.max_attempts > 10 {
            return err("code_policy.max_attempts must be 1..=10");
        }
        if c.max_sends == 0 {
            return err("code_policy.max_sends must be at least 1");
        }
        let s = &self.session_policy;
        if s.idle_timeout <= TimeDelta::zero() || s.absolute_timeout < s.idle_timeout {
            return err("session idle timeout must be positive and not above the absolute one");
        }
        if self.reset_link_ttl <= TimeDelta::zero() || self.reset_link_ttl > TimeDelta::hours(24) {
            return err("reset_link_ttl must be between 0 and 24 hours");
        }
        if self.invitation_ttl <= TimeDelta::zero() || self.invitation_ttl > TimeDelta::days(30) {
            return err("invitation_ttl must be between 0 and 30 days");
        }
        if self.pending_registration_ttl < c.ttl
            || self.pending_registration_ttl > TimeDelta::days(30)
        {
            return err("pending_registration_ttl must be between code_policy.ttl and 30 days");
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return err("default_page_size must be between 1 and max_page_size");
        }
        if self.affiliations.is_empty() {
            return err("at least one affiliation is needed");
        }
        if self.phone_code_ttl <= TimeDelta::zero() || self.phone_code_ttl > TimeDelta::minutes(10)
        {
            return err("phone_code_ttl must be between 0 and 10 minutes");
        }
        if self.mfa_login_ttl <= TimeDelta::zero() || self.mfa_login_ttl > TimeDelta::minutes(15) {
            return err("mfa_login_ttl must be between 0 and 15 minutes");
        }
        if self.remember_device_ttl <= TimeDelta::zero()
            || self.remember_device_ttl > TimeDelta::days(30)
        {
            return err("remember_device_ttl must be between 0 and 30 days");
        }
        if self.step_up_window <= TimeDelta::zero() || self.step_up_window > TimeDelta::hours(1) {
            return err("step_up_window must be between 0 and 1 hour");
        }
        if self.totp_enrolment_ttl <= TimeDelta::zero()
            || self.totp_enrolment_ttl > TimeDelta::hours(1)
        {
            return err("totp_enrolment_ttl must be between 0 and 1 hour");
        }
        if self.mfa_login_attempts == 0 {
            return err("mfa_login_attempts must be at least 1");
        }
        if self.totp_issuer.trim().is_empty() || self.totp_issuer.contains(':') {
            return err("totp_issuer must be non-empty and contain no ':'");
        }
        let h = &self.housekeeping;
        if h.grace < TimeDelta::hours(1) || h.grace > TimeDelta::days(365) {
            return err("housekeeping.grace must be between 1 hour and 365 days");
        }
        if h.sent_mail_retention < TimeDelta::days(1)
            || h.sent_mail_retention > TimeDelta::days(3_650)
        {
            return err("housekeeping.sent_mail_retention must be between 1 day and 10 years");
        }
        if h.batch_size == 0 || h.batch_size > 10_000 {
            return err("housekeeping.batch_size must be between 1 and 10,000");
        }
        let ten_years = TimeDelta::days(3_650);
        if self
            .housekeeping
            .audit_retention
            .is_some_and(|r| r < TimeDelta::days(1))
        {
            return err("housekeeping.audit_retention must be at least 1 day (or none: forever)");
        }
        if h.pending_registration_retention < TimeDelta::days(1)
            || h.pending_registration_retention > ten_years
        {
            return err(
                "housekeeping.pending_registration_retention must be between 1 day and 10 years",
            );
        }
        if h.invitation_retention < TimeDelta::days(1)
            || h.invitation_retention > h.sent_mail_retention
        {
            return err(
                "housekeeping.invitation_retention must be between 1 day and sent_mail_retention",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(PortalConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unsafe_values_are_refused() {
        let d = PortalConfig::default;
        let cases = [
            PortalConfig {
                reset_link_ttl: TimeDelta::hours(25),
                ..d()
            },
            PortalConfig {
                password_policy: PasswordPolicy {
                    min_chars: 6,
                    max_chars: 128,
                },
                ..d()
            },
            PortalConfig {
                code_policy: CodePolicy {
                    ttl: TimeDelta::minutes(16),
                    ..CodePolicy::default()
                },
                ..d()
            },
            PortalConfig {
                phone_code_ttl: TimeDelta::minutes(11),
                ..d()
            },
            PortalConfig {
                pending_registration_ttl: TimeDelta::minutes(14),
                ..d()
            },
            PortalConfig {
                remember_device_ttl: TimeDelta::days(31),
                ..d()
            },
            PortalConfig {
                totp_issuer: "a:b".into(),
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    grace: TimeDelta::minutes(59),
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    sent_mail_retention: TimeDelta::hours(23),
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    batch_size: 0,
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    audit_retention: Some(TimeDelta::hours(23)),
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    pending_registration_retention: TimeDelta::hours(23),
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
            PortalConfig {
                housekeeping: HousekeepingPolicy {
                    invitation_retention: TimeDelta::days(31),
                    ..HousekeepingPolicy::default()
                },
                ..d()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
