//! The gateway's settings (`PORTAL_SMS_*`), read through a lookup function and checked before
//! the server starts: a refused setting names its variable, never a secret value.

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use std::fmt;
use std::time::Duration;

/// Every variable the gateway reads, with a one-line meaning.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "PORTAL_SMS_URL",
        "phone gateway: the endpoint every SMS code is posted to (https://); unset means none",
    ),
    (
        "PORTAL_SMS_AUTH_HEADER",
        "phone gateway: one header `Name: value` sent with every request (a secret)",
    ),
    (
        "PORTAL_SMS_CONTENT_TYPE",
        "phone gateway: json or form, the body's type (values are escaped for it)",
    ),
    (
        "PORTAL_SMS_BODY_TEMPLATE",
        "phone gateway: the request body, a template over to, text, code, sender, …",
    ),
    (
        "PORTAL_SMS_SENDER",
        "phone gateway: sender name or number, offered to the template as `sender`",
    ),
    (
        "PORTAL_SMS_SUCCESS_STATUS",
        "phone gateway: HTTP statuses that mean accepted, such as 2xx or 200,201 (default 2xx)",
    ),
    (
        "PORTAL_SMS_SUCCESS_JSON",
        "phone gateway: `/json/pointer=value` the accepted answer must also hold",
    ),
    (
        "PORTAL_SMS_SUCCESS_BODY",
        "phone gateway: text the accepted answer's body must also contain",
    ),
    (
        "PORTAL_SMS_TIMEOUT",
        "phone gateway: seconds one request may take in all (default 10)",
    ),
    (
        "PORTAL_SMS_CONNECT_TIMEOUT",
        "phone gateway: seconds to connect (default 5, at most the request's)",
    ),
];

/// The default of `PORTAL_SMS_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of `PORTAL_SMS_CONNECT_TIMEOUT`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `PORTAL_SMS_TIMEOUT` accepted: a minute, the outbox dispatcher's default bound on
/// one send.
pub const MAX_TIMEOUT_SECONDS: u64 = 60;

/// A gateway setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct GatewayConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong (never the value of a secret).
    pub reason: String,
}

fn refuse(var: &'static str, reason: impl Into<String>) -> GatewayConfigError {
    GatewayConfigError {
        var,
        reason: reason.into(),
    }
}

/// How the body is encoded, and so how every value the template prints is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: every value prints as a JSON literal (a string with its quotes), so
    /// the template writes `{"to": {{ to }}}`.
    Json,
    /// `application/x-www-form-urlencoded`: every value prints form-encoded, so the template
    /// writes `To={{ to }}&Body={{ text }}`.
    Form,
}

impl BodyFormat {
    /// The `Content-Type` header.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" | "application/json" => Some(Self::Json),
            "form" | "application/x-www-form-urlencoded" => Some(Self::Form),
            _ => None,
        }
    }
}

/// Which HTTP statuses mean the gateway accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// Every `2xx`.
    #[must_use]
    pub fn success() -> Self {
        Self(vec![(200, 299)])
    }

    /// Parses `2xx`, `200`, `200,201,202` (ranges by class only, codes 200–299).
    fn parse(text: &str) -> Option<Self> {
        let mut set = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.eq_ignore_ascii_case("2xx") {
                set.push((200, 299));
            } else {
                let code: u16 = part.parse().ok()?;
                if !(200..=299).contains(&code) {
                    return None;
                }
                set.push((code, code));
            }
        }
        (!set.is_empty()).then_some(Self(set))
    }

    /// Whether `status` is in the set.
    #[must_use]
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// What an accepted answer must hold beyond its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessCriteria {
    /// The statuses that mean accepted.
    pub statuses: StatusSet,
    /// A JSON pointer (RFC 6901, `serde_json::Value::pointer`) into the answer and the value
    /// found there: a string compares as it is, a number or boolean as its JSON text.
    pub json: Option<(String, String)>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
}

impl Default for SuccessCriteria {
    fn default() -> Self {
        Self {
            statuses: StatusSet::success(),
            json: None,
            body_contains: None,
        }
    }
}

/// The checked settings of the HTTP phone gateway.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where each message is posted.
    pub url: Url,
    /// One header sent with every request (`Authorization: Basic …`, `X-Api-Key: …`); its value
    /// is marked sensitive and never printed.
    pub auth_header: Option<(HeaderName, HeaderValue)>,
    /// The body's encoding.
    pub format: BodyFormat,
    /// The body template (minijinja).
    pub body_template: String,
    /// Offered to the template as `sender`.
    pub sender: String,
    /// When a message counts as delivered.
    pub success: SuccessCriteria,
    /// Bound on one request, connect to last byte.
    pub timeout: Duration,
    /// Bound on connecting.
    pub connect_timeout: Duration,
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query may carry a key (some providers take it there), the header's value is the
        // credential, and the template may hold one too: none of them printed.
        let mut url = self.url.clone();
        if url.query().is_some() {
            url.set_query(Some("[redacted]"));
        }
        let _ = url.set_password(None);
        f.debug_struct("GatewayConfig")
            .field("url", &url.as_str())
            .field(
                "auth_header",
                &self
                    .auth_header
                    .as_ref()
                    .map(|(n, _)| format!("{n}: [redacted]")),
            )
            .field("format", &self.format)
            .field(
                "body_template",
                &format_args!("[{} bytes]", self.body_template.len()),
            )
            .field("sender", &self.sender)
            .field("success", &self.success)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl GatewayConfig {
    /// A gateway posting `body_template` in `format` to `url`, with the defaults for the rest.
    ///
    /// # Errors
    /// The URL is not `https://` (plain `http://` only to a loopback address) or has a user or
    /// password in it.
    pub fn new(
        url: &str,
        format: BodyFormat,
        body_template: impl Into<String>,
    ) -> Result<Self, GatewayConfigError> {
        Ok(Self {
            url: parse_url(url)?,
            auth_header: None,
            format,
            body_template: body_template.into(),
            sender: String::new(),
            success: SuccessCriteria::default(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// Reads the `PORTAL_SMS_*` variables through `get` (a blank value counts as unset).
    /// `Ok(None)`: no gateway (`PORTAL_SMS_URL` unset, and no other gateway setting either).
    ///
    /// # Errors
    /// The first setting refused; a gateway setting without `PORTAL_SMS_URL`; a URL without
    /// `PORTAL_SMS_BODY_TEMPLATE` or `PORTAL_SMS_CONTENT_TYPE`; a template that does not compile
    /// or fails on a sample message.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, GatewayConfigError> {
        let get = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        let Some(url) = get("PORTAL_SMS_URL") else {
            if let Some((var, _)) = VARIABLES.iter().find(|(v, _)| get(v).is_some()) {
                return Err(refuse(
                    var,
                    "is set but PORTAL_SMS_URL is not; set the gateway's URL, or unset the other \
                     PORTAL_SMS_* settings",
                ));
            }
            return Ok(None);
        };
        parse_url(&url)?;
        let format = get("PORTAL_SMS_CONTENT_TYPE")
            .ok_or_else(|| refuse("PORTAL_SMS_CONTENT_TYPE", "must be set: json or form"))?;
        let format = BodyFormat::parse(&format).ok_or_else(|| {
            refuse(
                "PORTAL_SMS_CONTENT_TYPE",
                "json (application/json) or form (application/x-www-form-urlencoded)",
            )
        })?;
        let template = get("PORTAL_SMS_BODY_TEMPLATE").ok_or_else(|| {
            refuse(
                "PORTAL_SMS_BODY_TEMPLATE",
                "must be set: the request body, with {{ to }} and {{ text }} where the number and \
                 the text go",
            )
        })?;
        let mut config = Self::new(&url, format, template)?;
        if let Some(header) = get("PORTAL_SMS_AUTH_HEADER") {
            config.auth_header = Some(parse_header(&header)?);
        }
        if let Some(sender) = get("PORTAL_SMS_SENDER") {
            config.sender = sender.trim().to_owned();
        }
        if let Some(statuses) = get("PORTAL_SMS_SUCCESS_STATUS") {
            config.success.statuses = StatusSet::parse(&statuses).ok_or_else(|| {
                refuse(
                    "PORTAL_SMS_SUCCESS_STATUS",
                    "2xx, or codes between 200 and 299 separated by commas (200,201)",
                )
            })?;
        }
        if let Some(json) = get("PORTAL_SMS_SUCCESS_JSON") {
            let (pointer, value) = json
                .split_once('=')
                .filter(|(p, _)| p.is_empty() || p.starts_with('/'))
                .ok_or_else(|| {
                    refuse(
                        "PORTAL_SMS_SUCCESS_JSON",
                        "a JSON pointer and the value expected there, such as /success=100",
                    )
                })?;
            config.success.json = Some((pointer.to_owned(), value.to_owned()));
        }
        config.success.body_contains = get("PORTAL_SMS_SUCCESS_BODY");
        if let Some(t) = get("PORTAL_SMS_TIMEOUT") {
            config.timeout = seconds("PORTAL_SMS_TIMEOUT", &t)?;
        }
        if let Some(t) = get("PORTAL_SMS_CONNECT_TIMEOUT") {
            config.connect_timeout = seconds("PORTAL_SMS_CONNECT_TIMEOUT", &t)?;
        }
        config.connect_timeout = config.connect_timeout.min(config.timeout);
        crate::check_template(&config)?;
        Ok(Some(config))
    }
}

fn parse_url(text: &str) -> Result<Url, GatewayConfigError> {
    let url = Url::parse(text.trim())
        .map_err(|e| refuse("PORTAL_SMS_URL", format!("not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "PORTAL_SMS_URL",
            "must not hold a user or password; send credentials with PORTAL_SMS_AUTH_HEADER",
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(refuse(
            "PORTAL_SMS_URL",
            "must be https:// (plain http:// only to a loopback address): the requests carry the \
             codes and the gateway's credentials",
        )),
        _ => Err(refuse("PORTAL_SMS_URL", "must be an https:// URL")),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), GatewayConfigError> {
    const VAR: &str = "PORTAL_SMS_AUTH_HEADER";
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| refuse(VAR, "`Name: value`, such as `Authorization: Basic …`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| refuse(VAR, "the part before the colon is not a header name"))?;
    let mut value = HeaderValue::from_str(value.trim())
        .map_err(|_| refuse(VAR, "the value holds characters a header cannot carry"))?;
    if value.is_empty() {
        return Err(refuse(VAR, "the value after the colon is empty"));
    }
    value.set_sensitive(true);
    Ok((name, value))
}

fn seconds(var: &'static str, text: &str) -> Result<Duration, GatewayConfigError> {
    match text.trim().parse::<u64>() {
        Ok(s) if (1..=MAX_TIMEOUT_SECONDS).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(refuse(
            var,
            format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("PORTAL_SMS_URL", "https://sms.example.com/send"),
        ("PORTAL_SMS_CONTENT_TYPE", "json"),
        (
            "PORTAL_SMS_BODY_TEMPLATE",
            r#"{"to": {{ to }}, "text": {{ text }}}"#,
        ),
    ];

    fn with(
        extra: &[(&'static str, &'static str)],
    ) -> Result<Option<GatewayConfig>, GatewayConfigError> {
        let mut pairs = BASE.to_vec();
        pairs.extend_from_slice(extra);
        GatewayConfig::from_lookup(lookup(&pairs))
    }

    #[test]
    fn nothing_set_is_no_gateway_and_blank_counts_as_unset() {
        assert!(matches!(GatewayConfig::from_lookup(lookup(&[])), Ok(None)));
        assert!(matches!(
            GatewayConfig::from_lookup(lookup(&[("PORTAL_SMS_URL", "  ")])),
            Ok(None)
        ));
    }

    #[test]
    fn a_full_configuration_is_read_with_its_defaults() {
        let c = with(&[
            ("PORTAL_SMS_AUTH_HEADER", "X-Api-Key: k3y"),
            ("PORTAL_SMS_SUCCESS_STATUS", "200, 201"),
            ("PORTAL_SMS_SUCCESS_JSON", "/success=100"),
            ("PORTAL_SMS_TIMEOUT", "3"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.format, BodyFormat::Json);
        let (name, value) = c.auth_header.clone().unwrap();
        assert_eq!(name.as_str(), "x-api-key");
        assert!(value.is_sensitive());
        assert!(c.success.statuses.contains(201));
        assert!(!c.success.statuses.contains(202));
        assert_eq!(c.success.json, Some(("/success".into(), "100".into())));
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(
            c.connect_timeout,
            Duration::from_secs(3),
            "capped by the timeout"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("k3y"), "{debug}");
        assert!(debug.contains("x-api-key: [redacted]"), "{debug}");
    }

    #[test]
    fn each_refused_setting_names_its_variable_and_never_the_secret() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PORTAL_SMS_SENDER", "Portal")], "PORTAL_SMS_SENDER"),
            (
                &[("PORTAL_SMS_URL", "http://sms.example.com/")],
                "PORTAL_SMS_URL",
            ),
            (
                &[("PORTAL_SMS_URL", "https://u:secret-pw@sms.example.com/")],
                "PORTAL_SMS_URL",
            ),
            (
                &[
                    ("PORTAL_SMS_URL", "https://x/"),
                    ("PORTAL_SMS_BODY_TEMPLATE", "b"),
                ],
                "PORTAL_SMS_CONTENT_TYPE",
            ),
            (
                &[
                    ("PORTAL_SMS_URL", "https://x/"),
                    ("PORTAL_SMS_CONTENT_TYPE", "form"),
                ],
                "PORTAL_SMS_BODY_TEMPLATE",
            ),
        ];
        for (pairs, var) in cases {
            let e = GatewayConfig::from_lookup(lookup(pairs)).unwrap_err();
            assert_eq!(e.var, *var, "{e}");
            assert!(!e.to_string().contains("secret-pw"), "{e}");
        }
        let cases: &[(&str, &str)] = &[
            ("PORTAL_SMS_CONTENT_TYPE", "text/xml"),
            ("PORTAL_SMS_AUTH_HEADER", "Bearer secret-token"),
            ("PORTAL_SMS_AUTH_HEADER", "Authorization: secret\ntoken"),
            ("PORTAL_SMS_SUCCESS_STATUS", "404"),
            ("PORTAL_SMS_SUCCESS_STATUS", "ok"),
            ("PORTAL_SMS_SUCCESS_JSON", "success=100"),
            ("PORTAL_SMS_TIMEOUT", "0"),
            ("PORTAL_SMS_TIMEOUT", "61"),
            ("PORTAL_SMS_CONNECT_TIMEOUT", "soon"),
        ];
        for (var, value) in cases {
            let pairs: Vec<(&str, &str)> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| k != var)
                .chain([(*var, *value)])
                .collect();
            let e = GatewayConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert_eq!(e.var, *var, "{var}={value}: {e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn plain_http_is_accepted_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]/x",
        ] {
            assert!(GatewayConfig::new(ok, BodyFormat::Form, "").is_ok(), "{ok}");
        }
        assert!(GatewayConfig::new("ftp://sms.example.com/", BodyFormat::Form, "").is_err());
    }
}
