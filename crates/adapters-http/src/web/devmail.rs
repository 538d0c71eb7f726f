//! `/dev/mailbox`, development mode only ([`crate::HttpConfig::with_dev_mailbox`]): the `.eml`
//! files of the development mailbox, newest first, with subject, recipient and the text part,
//! so that codes and links can be read (and followed) in the browser without an SMTP server.
//! Without the setting the route does not exist (404).
//!
//! The parser reads what the mail adapter writes (RFC 5322 with MIME parts, quoted-printable or
//! base64 bodies, RFC 2047 encoded headers); it is deliberately small and never fails: what it
//! cannot decode it shows as it is.

use super::ctx::Ctx;
use super::error::PageError;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};
use std::path::Path;

/// Most mails shown.
const SHOWN: usize = 50;

/// What the page shows of one mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mail {
    pub(crate) file: String,
    pub(crate) subject: String,
    pub(crate) to: String,
    pub(crate) date: String,
    pub(crate) text: String,
}

/// `GET /dev/mailbox`.
pub(crate) async fn mailbox(ctx: Ctx) -> Result<Response, PageError> {
    let Some(dir) = ctx.config().dev_mailbox().map(Path::to_path_buf) else {
        return Err(PageError::not_found());
    };
    let mails = read_dir(&dir).await;
    let public = ctx.config().public_url().to_owned();
    let title = ctx.t("mailbox-title");
    Ok(ctx.page(
        &title,
        html! {
            h1 { (title) }
            p.alert.warn { (ctx.t("mailbox-intro")) }
            @if mails.is_empty() {
                p { (ctx.t("mailbox-empty")) }
            }
            @for m in &mails {
                article.card.mail {
                    h2 { (m.subject) }
                    dl.facts {
                        dt { (ctx.t("mailbox-to")) } dd.to { (m.to) }
                        dt { (ctx.t("date")) } dd { (m.date) }
                        dt { (ctx.t("mailbox-file")) } dd { code { (m.file) } }
                    }
                    pre.mail-text { (linkified(&m.text, &public)) }
                }
            }
        },
    ))
}

/// The text with the portal's own links clickable (others stay text).
fn linkified(text: &str, public_url: &str) -> Markup {
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(public_url) {
        parts.push((false, &rest[..i]));
        let link = &rest[i..];
        let end = link
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ')'))
            .unwrap_or(link.len());
        parts.push((true, &link[..end]));
        rest = &link[end..];
    }
    parts.push((false, rest));
    html! {
        @for (is_link, s) in parts {
            @if is_link { a href=(s) { (s) } } @else { (s) }
        }
    }
}

async fn read_dir(dir: &Path) -> Vec<Mail> {
    let mut names = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "eml") {
                names.push(path);
            }
        }
    }
    // File names start with the outbox id, which is time-ordered: newest last, shown first.
    names.sort();
    names.reverse();
    let mut mails = Vec::new();
    for path in names.into_iter().take(SHOWN) {
        if let Ok(bytes) = tokio::fs::read(&path).await {
            let mut m = parse(&String::from_utf8_lossy(&bytes));
            m.file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            mails.push(m);
        }
    }
    mails
}

/// Headers (unfolded, names lower-cased) and body of a message or part.
fn split(message: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = message
        .split_once("\r\n\r\n")
        .or_else(|| message.split_once("\n\n"))
        .unwrap_or((message, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A parameter of a header value (`boundary="…"`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Parses a whole message.
pub(crate) fn parse(message: &str) -> Mail {
    let (headers, _) = split(message);
    Mail {
        file: String::new(),
        subject: decode_words(header(&headers, "subject")),
        to: decode_words(header(&headers, "to")),
        date: header(&headers, "date").to_owned(),
        text: text_part(message).unwrap_or_default(),
    }
}

/// The first `text/plain` part, decoded.
fn text_part(entity: &str) -> Option<String> {
    let (headers, body) = split(entity);
    let ctype = header(&headers, "content-type");
    let media = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let boundary = param(ctype, "boundary")?;
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|p| !p.starts_with("--"))
            .find_map(|part| text_part(part.trim_start_matches(['\r', '\n'])));
    }
    if media.is_empty() || media == "text/plain" {
        let encoding = header(&headers, "content-transfer-encoding").to_ascii_lowercase();
        return Some(decode_body(body, &encoding));
    }
    None
}

fn decode_body(body: &str, encoding: &str) -> String {
    match encoding {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_owned())
        }
        "quoted-printable" => quoted_printable(body, false),
        _ => body.to_owned(),
    }
    .replace("\r\n", "\n")
}

/// Quoted-printable (RFC 2045), or the `Q` encoding of headers (`_` is a space) when `header`.
fn quoted_printable(s: &str, header: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => {
                i += 3;
                continue;
            }
            b'=' if bytes.get(i + 1) == Some(&b'\n') => {
                i += 2;
                continue;
            }
            b'=' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'='),
                }
            }
            b'_' if header => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); whitespace between two
/// encoded words is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let after = &rest[start + 2..];
        let word = after.split_once('?').and_then(|(_charset, r)| {
            let (enc, r) = r.split_once('?')?;
            let (text, tail) = r.split_once("?=")?;
            let decoded = match enc.to_ascii_lowercase().as_str() {
                "b" => String::from_utf8_lossy(&STANDARD.decode(text).ok()?).into_owned(),
                "q" => quoted_printable(text, true),
                _ => return None,
            };
            Some((decoded, tail))
        });
        match word {
            Some((decoded, tail)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = tail;
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_headers_are_decoded() {
        assert_eq!(
            decode_words("=?utf-8?b?UGFzc3dvcnQgZ2XDpG5kZXJ0?="),
            "Passwort geändert"
        );
        assert_eq!(
            decode_words("=?utf-8?q?Passwort_ge=C3=A4ndert?= !"),
            "Passwort geändert !"
        );
        assert_eq!(decode_words("=?utf-8?b?QQ==?= =?utf-8?b?Qg==?="), "AB");
        assert_eq!(decode_words("plain =? text"), "plain =? text");
    }

    #[test]
    fn the_text_part_of_a_multipart_mail_is_found_and_decoded() {
        let eml = "Subject: =?utf-8?b?VmVyaWZpemllcmVu?=\r\nTo: a@example.com\r\n\
            Content-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\r\n\
            --XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            Ihr Code: 123456 =C3=A4=\r\nb\r\n\
            --XyZ\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--XyZ--\r\n";
        let m = parse(eml);
        assert_eq!(m.subject, "Verifizieren");
        assert_eq!(m.to, "a@example.com");
        assert_eq!(m.text.trim(), "Ihr Code: 123456 äb");
        let b64 = "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGFsbG8=\n";
        assert_eq!(parse(b64).text, "Hallo");
    }

    #[test]
    fn only_the_portals_links_become_links() {
        let m = linkified(
            "Link: https://p.example/invitations/abc\nOther: https://evil.example/x",
            "https://p.example",
        )
        .into_string();
        assert!(
            m.contains("<a href=\"https://p.example/invitations/abc\">"),
            "{m}"
        );
        assert!(!m.contains("href=\"https://evil"), "{m}");
    }
}
