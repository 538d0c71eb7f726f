//! The development mailbox: every mail becomes one `.eml` file in a directory, and one log line
//! names its recipient, subject and the code or link it carries, so a newcomer can register
//! without any SMTP server.
//!
//! **For development only.** The log line deliberately contains the verification code or the
//! invitation / password-reset link, i.e. a secret that grants access to an account; the files
//! hold the whole mail. Never use this adapter where real people receive mail.

use crate::render::{MailAction, RenderedMail};
use crate::sender::{MailSender, SendError};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

/// Writes each mail to `{dir}/{outbox id}-{kind}.eml` (a retried mail overwrites its own file)
/// and logs a one-line summary at `info` (target `portal::dev_mail`).
#[derive(Debug, Clone)]
pub struct MailDirectory {
    dir: PathBuf,
}

impl MailDirectory {
    /// A mailbox in `dir`, created if missing.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a mail is (or would be) written.
    #[must_use]
    pub fn path_of(&self, mail: &RenderedMail) -> PathBuf {
        self.dir
            .join(format!("{}-{}.eml", mail.outbox_id(), mail.kind()))
    }

    /// The `.eml` files in the directory, oldest outbox id first (ids are time-ordered).
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl MailSender for MailDirectory {
    async fn send(&self, mail: &RenderedMail) -> Result<(), SendError> {
        let path = self.path_of(mail);
        // Write beside, then rename: a reader never sees half a mail.
        let tmp = self.dir.join(format!(".{}.tmp", mail.outbox_id()));
        let io = |e: std::io::Error| SendError::Transient(format!("mail directory: {}", e.kind()));
        tokio::fs::write(&tmp, mail.formatted()).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        let action = match mail.action() {
            Some(MailAction::Code(c)) => format!(" code {}", c.expose()),
            Some(MailAction::Link(l)) => format!(" link {}", l.expose()),
            None => String::new(),
        };
        tracing::info!(
            target: "portal::dev_mail",
            "mail to {} \"{}\"{action} ({})",
            mail.to(),
            mail.subject(),
            path.display()
        );
        Ok(())
    }
}
