//! The server secret and the keys derived from it.
//!
//! One 32-byte secret per installation, from `PORTAL_SECRET_KEY` (base64) or a key file. On
//! SQLite the file is generated on first start next to the database (`portal.db` →
//! `portal.secret`, mode 0600) and reused afterwards; on Postgres, where several processes must
//! agree, it is never generated: every process gets the same `PORTAL_SECRET_KEY` (or the same
//! existing key file).
//!
//! The secret itself is used for nothing but derivation. Each purpose gets its own key,
//! `HMAC-SHA256(secret, label)`, so a key that leaks from one component (say, a cookie key
//! logged by a proxy) reveals nothing about the others:
//!
//! | key | label | used for |
//! | --- | --- | --- |
//! | MFA sealing key | `portal/v1/mfa-seal` | encrypting TOTP seeds at rest ([`MfaKey`]) |
//! | cookie key | `portal/v1/cookie-csrf` | signing cookies and CSRF tokens (HTTP adapter) |
//!
//! Losing the secret makes the sealed TOTP seeds and OIDC signing keys unreadable (users must
//! set up their authenticator again) and ends every session; keep it with the database backups.
//!
//! Changing it: start with the new secret as `PORTAL_SECRET_KEY` (or key file) and the old one
//! in `PORTAL_OLD_SECRET_KEYS` ([`old_secrets`]). The new secret seals from then on, the old one
//! still opens what it sealed (each sealed value names its key's id), until
//! `portal secret rotate` has re-sealed everything; then the old one can be dropped. The
//! database records the ids of the keys it needs ([`MfaKey::id`], a keyed hash, never the
//! secret), so a start or a restore with the wrong secret is refused with a clear message.
//!
//! ```
//! use portal_server::secrets::ServerSecret;
//!
//! let secret = ServerSecret::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
//! assert_ne!(secret.cookie_key(), [0u8; 32]);
//! let _mfa = secret.mfa_key();
//! ```

use crate::config::{OldSecrets, SecretSource};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use portal_core::secretbox::MfaKey;
use sha2::Sha256;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Label of the MFA sealing key.
pub const MFA_KEY_LABEL: &[u8] = b"portal/v1/mfa-seal";
/// Label of the cookie and CSRF key.
pub const COOKIE_KEY_LABEL: &[u8] = b"portal/v1/cookie-csrf";
/// Label of the key that names accounts in login counters (a keyed hash of the address typed).
pub const COUNTER_KEY_LABEL: &[u8] = b"portal/v1/login-counters";

/// The installation's 32-byte secret. `Debug` is redacted; the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret([redacted])")
    }
}

/// The secret could not be had. No message contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `PORTAL_SECRET_KEY` (or the key file's content) is not base64 of 32 bytes.
    #[error(
        "{0}: the secret key must be 32 bytes, base64 (generate one with `openssl rand -base64 32`)"
    )]
    Malformed(String),
    /// The key file is readable by group or others.
    #[error(
        "{}: the key file must be readable by its owner only (chmod 600 {})",
        .0.display(), .0.display()
    )]
    TooOpen(PathBuf),
    /// The key file is missing and may not be generated (Postgres).
    #[error("{}: key file not found (on Postgres the key is never generated: every server process needs the same one)", .0.display())]
    Missing(PathBuf),
    /// Reading or writing the key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How the secret was obtained (for the start-up log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// From `PORTAL_SECRET_KEY`.
    Variable,
    /// Read from an existing key file.
    FileReused(PathBuf),
    /// Generated into a new key file.
    FileCreated(PathBuf),
    /// Generated for this process only.
    Ephemeral,
}

impl ServerSecret {
    /// A secret from raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random secret.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        let s = Self(bytes);
        bytes.zeroize();
        s
    }

    /// Parses base64 of 32 bytes: standard or URL-safe alphabet, padding optional, surrounding
    /// whitespace ignored.
    ///
    /// # Errors
    /// Not base64 or not 32 bytes; the message names only `where`.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        Self::parse(text, "PORTAL_SECRET_KEY")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, SecretError> {
        let normalized: Zeroizing<String> = Zeroizing::new(
            text.trim()
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    other => other,
                })
                .collect(),
        );
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode(normalized.as_bytes())
                .map_err(|_| SecretError::Malformed(origin.to_owned()))?,
        );
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::Malformed(origin.to_owned()))?;
        Ok(Self(array))
    }

    /// The secret as padded standard base64 (the key file's content).
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    /// `HMAC-SHA256(secret, label)`: a key for one purpose.
    #[must_use]
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The key that seals TOTP seeds at rest.
    #[must_use]
    pub fn mfa_key(&self) -> MfaKey {
        let mut bytes = self.derive(MFA_KEY_LABEL);
        let key = MfaKey::from_bytes(bytes);
        bytes.zeroize();
        key
    }

    /// The key that names accounts in login counters.
    #[must_use]
    pub fn counter_key(&self) -> portal_core::throttle::CounterKey {
        portal_core::throttle::CounterKey::from_bytes(self.derive(COUNTER_KEY_LABEL))
    }

    /// The key that signs cookies and CSRF tokens.
    #[must_use]
    pub fn cookie_key(&self) -> [u8; 32] {
        self.derive(COOKIE_KEY_LABEL)
    }

    /// Obtains the secret as configured: decodes `PORTAL_SECRET_KEY`, reads the key file, or
    /// generates it (into a new file, or for this process only).
    ///
    /// # Errors
    /// See [`SecretError`].
    pub fn obtain(source: &SecretSource) -> Result<(Self, SecretOrigin), SecretError> {
        match source {
            SecretSource::Value(v) => Ok((Self::from_base64(v)?, SecretOrigin::Variable)),
            SecretSource::File { path, create } => load_or_create(path, *create),
            SecretSource::Ephemeral => Ok((Self::generate(), SecretOrigin::Ephemeral)),
        }
    }
}

/// Decodes `PORTAL_OLD_SECRET_KEYS`.
///
/// # Errors
/// An entry is not base64 of 32 bytes (the message names the variable, not the value).
pub fn old_secrets(old: &OldSecrets) -> Result<Vec<ServerSecret>, SecretError> {
    old.0
        .iter()
        .map(|v| ServerSecret::parse(v, "PORTAL_OLD_SECRET_KEYS"))
        .collect()
}

/// The sealing keys of the old secrets.
#[must_use]
pub fn old_mfa_keys(old: &[ServerSecret]) -> Vec<MfaKey> {
    old.iter().map(ServerSecret::mfa_key).collect()
}

/// Reads the key file, or (when `create`) generates it with mode 0600. Two processes starting at
/// once agree on one key: the new file is written under a temporary name and linked into place,
/// which fails for the second one, who then reads the first one's key.
///
/// # Errors
/// See [`SecretError`].
pub fn load_or_create(
    path: &Path,
    create: bool,
) -> Result<(ServerSecret, SecretOrigin), SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    match read_key_file(path) {
        Ok(secret) => return Ok((secret, SecretOrigin::FileReused(path.to_owned()))),
        Err(SecretError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && create => {}
        Err(SecretError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing(path.to_owned()));
        }
        Err(e) => return Err(e),
    }
    let secret = ServerSecret::generate();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("portal.secret"),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(secret.to_base64().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((secret, SecretOrigin::FileCreated(path.to_owned()))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process was first: use its key.
            Ok((
                read_key_file(path)?,
                SecretOrigin::FileReused(path.to_owned()),
            ))
        }
        Err(e) => Err(io(e)),
    }
}

fn read_key_file(path: &Path) -> Result<ServerSecret, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SecretError::TooOpen(path.to_owned()));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    ServerSecret::parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_secret_is_base64_of_32_bytes_in_either_alphabet() {
        let a = ServerSecret::from_base64(KEY).unwrap();
        let b =
            ServerSecret::from_base64(" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 \n").unwrap();
        assert_eq!(a.0, b.0);
        let url_safe = STANDARD
            .encode([0xfbu8; 32])
            .replace('+', "-")
            .replace('/', "_");
        assert_eq!(ServerSecret::from_base64(&url_safe).unwrap().0, [0xfb; 32]);
        for bad in ["", "not base64!", "AAEC", &STANDARD.encode([1u8; 31])] {
            let e = ServerSecret::from_base64(bad).unwrap_err();
            assert!(e.to_string().starts_with("PORTAL_SECRET_KEY"), "{e}");
        }
        assert_eq!(format!("{a:?}"), "ServerSecret([redacted])");
    }

    #[test]
    fn derived_keys_differ_by_label_and_by_secret() {
        let a = ServerSecret::from_base64(KEY).unwrap();
        let b = ServerSecret::from_bytes([7; 32]);
        assert_ne!(a.derive(MFA_KEY_LABEL), a.derive(COOKIE_KEY_LABEL));
        assert_ne!(a.derive(COUNTER_KEY_LABEL), a.derive(COOKIE_KEY_LABEL));
        assert_ne!(a.cookie_key(), b.cookie_key());
        assert_ne!(a.cookie_key(), a.0, "never the secret itself");
        assert_eq!(a.cookie_key(), a.clone().cookie_key(), "deterministic");
        assert_ne!(a.mfa_key(), b.mfa_key());
        // HMAC-SHA256 test vector (RFC 4231 case 2), to pin the construction.
        let mut mac = <Hmac<Sha256>>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(mac.finalize().into_bytes()[..4], [0x5b, 0xdc, 0xc1, 0x46]);
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/portal.secret");
        let (first, origin) = load_or_create(&path, true).unwrap();
        assert_eq!(origin, SecretOrigin::FileCreated(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        let (second, origin) = load_or_create(&path, true).unwrap();
        assert_eq!(origin, SecretOrigin::FileReused(path.clone()));
        assert_eq!(first.0, second.0);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn a_key_file_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.secret");
        load_or_create(&path, true).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path, true).unwrap_err();
        assert!(matches!(e, SecretError::TooOpen(_)), "{e:?}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_missing_file_is_not_generated_when_creation_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.secret");
        let e = load_or_create(&path, false).unwrap_err();
        assert!(matches!(e, SecretError::Missing(_)), "{e:?}");
        assert!(!path.exists());
    }

    #[test]
    fn a_corrupt_key_file_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.secret");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap()
            .write_all(b"hunter2hunter2")
            .unwrap();
        let e = load_or_create(&path, true).unwrap_err();
        assert!(matches!(e, SecretError::Malformed(_)), "{e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn old_secrets_decode_and_refuse_bad_entries_without_echoing_them() {
        let other = STANDARD.encode([9u8; 32]);
        let old = old_secrets(&OldSecrets::parse(&format!("{KEY}, {other}\n"))).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[1].0, [9; 32]);
        let keys = old_mfa_keys(&old);
        assert_eq!(keys[0], ServerSecret::from_base64(KEY).unwrap().mfa_key());
        assert!(old_secrets(&OldSecrets::parse("")).unwrap().is_empty());
        let e = old_secrets(&OldSecrets::parse(&format!("{KEY},hunter2"))).unwrap_err();
        assert!(e.to_string().starts_with("PORTAL_OLD_SECRET_KEYS"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            format!("{:?}", OldSecrets::parse(KEY)),
            "OldSecrets([1 redacted])"
        );
    }

    #[test]
    fn the_configured_source_decides() {
        let (s, o) = ServerSecret::obtain(&SecretSource::Value(KEY.into())).unwrap();
        assert_eq!(o, SecretOrigin::Variable);
        assert_eq!(s.0[1], 1);
        let (_, o) = ServerSecret::obtain(&SecretSource::Ephemeral).unwrap();
        assert_eq!(o, SecretOrigin::Ephemeral);
    }
}
