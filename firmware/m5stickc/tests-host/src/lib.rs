//! Empty: the tests are in tests/ and include the board crate's source files.
