//! Examples live in this package as `[[example]]` targets. The files of `docs/embedding.md`
//! are built and run as a fresh project outside the workspace by `tests/guide.rs`.
