//! `p1-sim` as a library: a P1 smart meter that real parsers and real gateways cannot tell from the
//! real thing. See the crate README for the CLI.
#![warn(missing_docs)]

pub mod clock;
pub mod model;
pub mod profile;
pub mod rng;
pub mod faults;
pub mod meter;

pub use faults::{FaultCounts, FaultKind, FaultPlan, FaultRule};
pub use meter::{Meter, Sent, Telegram};
pub use profile::Profile;
