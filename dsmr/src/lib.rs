//! Work in progress: see the `dsmr` crate issue. Nothing here is implemented yet.
#![no_std]
