//! Work in progress. Nothing here is implemented yet.
pub mod ble_sink;
