//! Work in progress. Nothing here is implemented yet.
#![no_std]
pub mod bthome;
