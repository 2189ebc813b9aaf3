//! Cross-crate test suites of flotilla; the tests live in `tests/tests/`. This library holds
//! what several suites share: the conformance corpus runner.

pub mod corpus;
