//! Power model of the M5StickC on a P1 port: the port's +5 V supply ([`supply`]), the AXP192
//! ([`axp192`], register level, also usable as an `embedded_hal_async::i2c::I2c` device), the
//! 80 mAh LiPo ([`battery`]), the device load per firmware state ([`load`]), the electrical engine
//! that ties them together in virtual time ([`engine`]), the virtual firmware that loads it
//! ([`firmware`], with the real AXP192 driver and power policy), scripted supply events
//! ([`scenario`]) and `p1-sim power` ([`cli`]). See `README.md` here for the figures.
//!
//! Everything is deterministic: the same inputs give the same outputs, bit for bit.

pub mod axp192;
pub mod battery;
pub mod cli;
pub mod engine;
pub mod firmware;
pub mod live;
pub mod load;
pub mod plot;
pub mod scenario;
pub mod supply;
#[cfg(test)]
mod validation;

pub use axp192::Axp192;
pub use engine::{PowerSim, SupplyAction};
pub use firmware::{run, LoadProfile, RunConfig, RunResult};
pub use supply::SupplyKind;
