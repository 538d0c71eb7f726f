//! Every template renders in both languages; the delivered message is valid MIME with both
//! parts, the right headers and recipient, its own code or link, and no other secret.

use crate::support::{
    BASE_URL, FROM, SmtpServer, every_intent, mail_dispatcher, outbox_mail, parse, renderer,
    settings, start_time,
};
use adapters_memory::MemoryStore;
use adapters_smtp::{SmtpSender, message_id, subject};
use mail_parser::MimeHeaders;
use portal_core::mail::{MailIntent, OutboxMail};
use portal_core::ports::{Commit, Committer};
use portal_core::testing::ManualClock;
use portal_core::values::Language;
use portal_dispatch::DispatcherConfig;
use std::collections::HashMap;
use std::sync::Arc;

const NAME: &str = "Jürgen <Admin> & Co";

/// What a mail must show of its secret: the code, or the whole link.
fn shown_secret(intent: &MailIntent) -> Option<String> {
    match intent {
        MailIntent::VerificationCode { code, .. }
        | MailIntent::RecoveryCode { code, .. }
        | MailIntent::RecoveryChannelCode { code, .. } => Some(code.expose().to_owned()),
        MailIntent::Invitation { token, .. } => {
            Some(format!("{BASE_URL}/invitations/{}", token.expose()))
        }
        MailIntent::PasswordReset { token, .. } => {
            Some(format!("{BASE_URL}/password/reset/{}", token.expose()))
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_template_renders_in_both_languages_and_arrives_as_valid_mime() {
    let mut server = SmtpServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));

    let mut expected: HashMap<String, OutboxMail> = HashMap::new();
    let mut commit = Commit::new();
    let mut n = 0u128;
    for (round, language) in [Language::De, Language::En].into_iter().enumerate() {
        for intent in every_intent(u32::try_from(round).unwrap()) {
            n += 1;
            let mail = outbox_mail(n, &format!("user{n}@example.com"), language, intent);
            expected.insert(message_id(mail.id, "portal.example.com"), mail.clone());
            commit.mail(mail);
        }
    }
    let total = expected.len();
    assert_eq!(total, 58, "29 intents in 2 languages");
    store.commit(commit).await.unwrap();
    let every_secret: Vec<String> = expected
        .values()
        .flat_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .collect();

    let dispatcher = mail_dispatcher(
        store.clone(),
        Arc::new(SmtpSender::from_url(&server.url()).unwrap()),
        renderer(),
        clock,
        DispatcherConfig::default(),
    )
    .unwrap();
    let report = dispatcher.drain().await.unwrap();
    assert_eq!(report.sent, total, "{report:?}");

    for captured in server.messages(total).await {
        assert!(
            captured.defects.is_empty(),
            "Python's parser found defects: {:?}",
            captured.defects
        );
        let msg = parse(&captured.data);
        let id = format!("<{}>", msg.message_id().expect("Message-ID"));
        let mail = expected
            .remove(&id)
            .unwrap_or_else(|| panic!("unexpected or duplicate {id}"));
        let key = mail.intent.key();
        let what = format!("{key} ({})", mail.language);

        // Envelope and headers.
        assert_eq!(captured.mail_from, FROM, "{what}");
        assert_eq!(
            captured.rcpt_tos,
            vec![mail.to.as_str().to_owned()],
            "{what}"
        );
        let from = msg.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.address(), Some(FROM), "{what}");
        assert_eq!(from.name(), Some("Portal"), "{what}");
        let to: Vec<_> = msg.to().expect("To").iter().collect();
        assert_eq!(to.len(), 1, "{what}");
        assert_eq!(to[0].address(), Some(mail.to.as_str()), "{what}");
        assert_eq!(to[0].name(), None, "names never go into headers: {what}");
        let subj = msg.subject().expect("Subject");
        assert_eq!(
            subj,
            subject(mail.language, &mail.intent, &settings()),
            "{what}"
        );
        assert!(
            !subj.contains("Jürgen") && !subj.contains('<'),
            "{what}: {subj}"
        );
        assert_eq!(
            msg.date().expect("Date").to_timestamp(),
            mail.created_at.timestamp(),
            "{what}"
        );
        assert_eq!(msg.mime_version().as_text(), Some("1.0"), "{what}");
        assert_eq!(
            msg.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated"),
            "{what}"
        );
        assert_eq!(
            msg.header_raw("Content-Language").map(str::trim),
            Some(mail.language.code()),
            "{what}"
        );

        // Structure: multipart/alternative with a text/plain and a text/html part.
        let root = msg.root_part().content_type().expect("Content-Type");
        assert_eq!(
            (root.ctype(), root.subtype()),
            ("multipart", Some("alternative")),
            "{what}"
        );
        assert_eq!(msg.parts.len(), 3, "{what}: root + two parts");
        let text_part = msg.text_part(0).expect("text part");
        let html_part = msg.html_part(0).expect("html part");
        let t = text_part.content_type().expect("text Content-Type");
        let h = html_part.content_type().expect("html Content-Type");
        assert_eq!((t.ctype(), t.subtype()), ("text", Some("plain")), "{what}");
        assert_eq!((h.ctype(), h.subtype()), ("text", Some("html")), "{what}");
        assert_eq!(t.attribute("charset"), Some("utf-8"), "{what}");
        let text = msg.body_text(0).expect("text body").into_owned();
        let html = msg.body_html(0).expect("html body").into_owned();

        // User text: as typed in the text part, escaped in the HTML part.
        if key != "admin_approval_needed" {
            assert!(text.contains(NAME), "{what}: {text}");
            assert!(
                html.contains("Jürgen &#60;Admin&#62; &#38; Co"),
                "{what}: {html}"
            );
        }
        for raw in [
            "<Admin>",
            "<script",
            "<b>Evil",
            "<i>",
            "<GmbH>",
            "href=\"https://evil",
        ] {
            assert!(!html.contains(raw), "{what}: unescaped {raw} in {html}");
        }

        // Its own secret, and no other.
        let own = mail.intent.secret().map(|s| s.expose().to_owned());
        if let Some(shown) = shown_secret(&mail.intent) {
            assert!(text.contains(&shown), "{what}: {shown} missing in text");
            assert!(html.contains(&shown), "{what}: {shown} missing in html");
        }
        let body = String::from_utf8_lossy(&captured.data);
        for secret in &every_secret {
            if Some(secret) != own.as_ref() {
                assert!(
                    !text.contains(secret.as_str()) && !html.contains(secret.as_str()),
                    "{what} leaks another mail's secret"
                );
                assert!(
                    !body.contains(secret.as_str()),
                    "{what}: foreign secret in raw"
                );
            }
        }

        // Footer from configuration.
        for part in [&text, &html] {
            assert!(part.contains("069 - 50 007 6035"), "{what}: phone");
            assert!(part.contains("support@example.com"), "{what}: support mail");
            assert!(part.contains(FROM), "{what}: sender address");
        }
        let team = match mail.language {
            Language::De => "Ihr Example-Team",
            Language::En => "Your Example team",
        };
        assert!(text.contains(team) && html.contains(team), "{what}: team");
        let lang_attr = format!("<html lang=\"{}\">", mail.language.code());
        assert!(html.contains(&lang_attr), "{what}");
    }
    assert!(expected.is_empty(), "not delivered: {:?}", expected.keys());
    assert_eq!(
        portal_core::ports::OutboxStore::outbox_stats(&*store)
            .await
            .unwrap()
            .sent,
        total as u64
    );
}

#[tokio::test]
async fn subjects_follow_the_manual() {
    let s = settings();
    let by_key = |language: Language| -> HashMap<&'static str, String> {
        every_intent(0)
            .iter()
            .map(|i| (i.key(), subject(language, i, &s)))
            .collect()
    };
    let de = by_key(Language::De);
    assert_eq!(
        de["verification_code"],
        "Verifizieren Sie Ihre E-Mail-Adresse"
    );
    assert_eq!(de["password_reset"], "Ihr Passwort zurücksetzen");
    assert_eq!(de["invitation"], "Einladung zum Portal");
    assert_eq!(de["welcome"], "Herzlich willkommen im Portal");
    assert_eq!(de["password_changed"], "Ihr Passwort wurde geändert");
    let en = by_key(Language::En);
    assert_eq!(en["verification_code"], "Verify your email address");
    assert_eq!(en["invitation"], "Invitation to Portal");
    for (key, de_subject) in &de {
        assert_ne!(de_subject, &en[key], "{key} is translated");
    }
}
