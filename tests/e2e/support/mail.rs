//! A delivered mail, parsed as MIME (mail-parser): headers decoded, the plain-text and HTML
//! parts, and helpers that read codes and links out of it the way a person would.

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients (lower case).
    pub to: Vec<String>,
    /// `Subject`, decoded.
    pub subject: String,
    /// `Message-ID`, with angle brackets.
    pub message_id: String,
    /// `From` header address.
    pub from: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// What Python's parser found wrong (must be empty).
    pub defects: Vec<String>,
    /// The raw message.
    pub raw: Vec<u8>,
}

impl Mail {
    /// Parses a message; panics when it is not MIME with a text and an HTML part.
    pub fn parse(mail_from: &str, to: Vec<String>, raw: Vec<u8>, defects: Vec<String>) -> Self {
        let msg = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("not a MIME message:\n{}", String::from_utf8_lossy(&raw)));
        let subject = msg.subject().unwrap_or_default().to_owned();
        let message_id = msg
            .message_id()
            .map(|id| format!("<{id}>"))
            .unwrap_or_else(|| panic!("no Message-ID in \"{subject}\""));
        let from = msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        let text = msg
            .body_text(0)
            .unwrap_or_else(|| panic!("no text part in \"{subject}\""))
            .into_owned();
        let html = msg
            .body_html(0)
            .unwrap_or_else(|| panic!("no HTML part in \"{subject}\""))
            .into_owned();
        Self {
            mail_from: mail_from.to_owned(),
            to: to.into_iter().map(|t| t.to_lowercase()).collect(),
            subject,
            message_id,
            from,
            text,
            html,
            defects,
            raw,
        }
    }

    /// Whether `to` (lower case) is among the recipients.
    pub fn is_to(&self, to: &str) -> bool {
        self.to.iter().any(|t| t == to)
    }

    /// The six-digit code on a line of its own in the text part.
    pub fn code(&self) -> String {
        self.text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no six-digit code in \"{}\":\n{}", self.subject, self.text))
            .to_owned()
    }

    /// The first link in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no link starting with {prefix} in \"{}\":\n{}",
                    self.subject, self.text
                )
            })
            .trim_end_matches(['.', ',', ')'])
            .to_owned()
    }

    /// The last path segment of the first link that starts with `prefix` (a token), after
    /// checking that the HTML part links to the same address.
    pub fn token(&self, prefix: &str) -> String {
        let link = self.link(prefix);
        assert!(
            self.html.contains(&format!("href=\"{link}\"")),
            "the HTML part of \"{}\" does not link to {link}:\n{}",
            self.subject,
            self.html
        );
        link.rsplit('/').next().unwrap_or_default().to_owned()
    }
}
