//! Page requests: page numbers for the first pages (the manual's "Zurück 1 Nächste"), opaque
//! cursors for any depth. Cursors are base64url text; clients must not build them.

use crate::config::PortalConfig;
use crate::ids::UserId;
use crate::ports::{PageStart, UserCursor};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a client asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page (default from configuration, bounded by the maximum).
    pub size: Option<u32>,
    /// 1-based page number (for the first pages).
    pub page: Option<u32>,
    /// Cursor from a previous page's `next` (wins over `page`).
    pub cursor: Option<String>,
}

/// A page request that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    /// The cursor was not issued by this server (or belongs to another list).
    #[error("invalid cursor")]
    InvalidCursor,
    /// Page size 0 or above the maximum.
    #[error("page size must be between 1 and {max}")]
    InvalidSize {
        /// The maximum.
        max: u32,
    },
    /// Page 0, or a page number so deep that it must use a cursor.
    #[error("page number out of range; follow the `next` cursor for deep pages")]
    PageOutOfRange,
}

pub(crate) fn page_size(config: &PortalConfig, req: &PageRequest) -> Result<u32, PagingError> {
    let size = req.size.unwrap_or(config.default_page_size);
    if size == 0 || size > config.max_page_size {
        return Err(PagingError::InvalidSize {
            max: config.max_page_size,
        });
    }
    Ok(size)
}

fn offset(config: &PortalConfig, page: u32, size: u32) -> Result<u32, PagingError> {
    if page == 0 {
        return Err(PagingError::PageOutOfRange);
    }
    let skip = (page - 1)
        .checked_mul(size)
        .ok_or(PagingError::PageOutOfRange)?;
    if skip > config.max_page_offset {
        return Err(PagingError::PageOutOfRange);
    }
    Ok(skip)
}

pub(crate) fn user_start(
    config: &PortalConfig,
    req: &PageRequest,
    size: u32,
) -> Result<PageStart<UserCursor>, PagingError> {
    if let Some(c) = &req.cursor {
        return decode_user_cursor(c).map(PageStart::After);
    }
    match req.page {
        None | Some(1) => Ok(PageStart::First),
        Some(p) => offset(config, p, size).map(PageStart::Offset),
    }
}

pub(crate) fn encode_user_cursor(c: &UserCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("u1\u{0}{}\u{0}{}", c.id, c.sort_key))
}

fn decode_user_cursor(raw: &str) -> Result<UserCursor, PagingError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| PagingError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| PagingError::InvalidCursor)?;
    let mut parts = text.splitn(3, '\u{0}');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("u1"), Some(id), Some(sort_key)) if sort_key.len() <= 1_000 => Ok(UserCursor {
            id: id
                .parse::<UserId>()
                .map_err(|_| PagingError::InvalidCursor)?,
            sort_key: sort_key.to_owned(),
        }),
        _ => Err(PagingError::InvalidCursor),
    }
}

pub(crate) fn encode_seq_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a1\u{0}{seq}"))
}

/// Audit pages: a cursor (sequence number), or a page number translated into one by the caller.
pub(crate) fn decode_seq_cursor(raw: &str) -> Result<u64, PagingError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| PagingError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| PagingError::InvalidCursor)?;
    text.strip_prefix("a1\u{0}")
        .and_then(|s| s.parse().ok())
        .ok_or(PagingError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn user_cursors_round_trip() {
        let c = UserCursor {
            sort_key: "müller anna\u{1f}a@b.de".into(),
            id: UserId::from_uuid(Uuid::from_u128(5)),
        };
        assert_eq!(decode_user_cursor(&encode_user_cursor(&c)), Ok(c));
    }

    #[test]
    fn foreign_or_garbage_cursors_are_refused() {
        assert_eq!(decode_user_cursor("!!!"), Err(PagingError::InvalidCursor));
        assert_eq!(
            decode_user_cursor(&encode_seq_cursor(5)),
            Err(PagingError::InvalidCursor)
        );
        assert_eq!(decode_seq_cursor(&encode_seq_cursor(42)), Ok(42));
        assert_eq!(decode_seq_cursor("YWJj"), Err(PagingError::InvalidCursor));
    }

    #[test]
    fn deep_page_numbers_must_use_cursors() {
        let cfg = PortalConfig::default();
        let req = |page| PageRequest {
            size: Some(10),
            page: Some(page),
            cursor: None,
        };
        assert_eq!(user_start(&cfg, &req(1), 10), Ok(PageStart::First));
        assert_eq!(user_start(&cfg, &req(3), 10), Ok(PageStart::Offset(20)));
        assert_eq!(
            user_start(&cfg, &req(102), 10),
            Err(PagingError::PageOutOfRange)
        );
        assert_eq!(
            user_start(&cfg, &req(0), 10),
            Err(PagingError::PageOutOfRange)
        );
        assert_eq!(
            page_size(
                &cfg,
                &PageRequest {
                    size: Some(101),
                    ..PageRequest::default()
                }
            ),
            Err(PagingError::InvalidSize { max: 100 })
        );
    }
}
