//! The phone gateway against a real local HTTP server (axum), through the real outbox
//! dispatcher on the in-memory store. Each test file is a module of this one binary.

mod gateway;
