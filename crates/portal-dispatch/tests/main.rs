//! The integration tests of `portal-dispatch`, one test binary (see the README's "Test").

mod webhooks;
