//! The P1 gateway application: `no_std`, allocation-free, generic over its hardware seams.
//!
//! It reads DSMR telegrams from the P1 UART (framed and decoded by `dsmr`), turns each good one
//! into a [`Reading`](reading::Reading), and publishes it over MQTT 3.1.1 (`<prefix>/<device>/state`,
//! optional per-field and raw-telegram topics, diagnostics, power, Home Assistant discovery with a
//! retained availability topic). While WiFi or the broker is away, readings wait in a bounded ring
//! (oldest dropped first, each drop counted) and are replayed in order at QoS 1 afterwards.
//!
//! Guarantees: nothing here panics (no `unwrap`, `expect` or slice indexing that can fail) and
//! nothing allocates; every failure becomes a counter (see [`payload::Diag`]) and a console line.
//! The application reads time only through [`seams::Clock`] and spawns no tasks: [`run`] is one
//! future that joins its loops, so any executor can poll it.
//!
//! Entry point: [`run`]`(&config, Board { .. }, &mut Memory::<RING>::new())`.
#![no_std]
#![warn(missing_docs)]

pub mod app;
pub mod bthome;
pub mod config;
pub mod console;
pub mod mqtt;
pub mod p1;
pub mod payload;
pub mod policy;
pub mod power_policy;
pub mod reading;
pub mod seams;
pub mod text;

pub use app::{run, Board, Memory};
pub use config::Config;
