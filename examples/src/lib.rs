//! Examples live in this package as `[[example]]` targets.

/// `docs/embedding.md`, whose Rust blocks run as doctests of this package
/// (`cargo test --doc -p portal-examples`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/embedding.md")]
pub struct EmbeddingGuide;
