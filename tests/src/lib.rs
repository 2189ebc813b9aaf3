//! Cross-crate test suites of flotilla; the tests live in `tests/tests/`.
