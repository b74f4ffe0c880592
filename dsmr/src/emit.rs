//! Writer (in progress).
