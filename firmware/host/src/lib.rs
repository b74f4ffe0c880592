//! Work in progress. Nothing here is implemented yet.
