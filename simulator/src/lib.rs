#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod clock;
pub mod decode;
pub mod model;
pub mod profile;
pub mod rng;
pub mod bench;
pub mod faults;
pub mod meter;
pub mod replay;
pub mod run;
pub mod sinks;
pub mod power;

pub use faults::{FaultCounts, FaultKind, FaultPlan, FaultRule};
pub use meter::{Meter, Sent, Telegram};
pub use run::{DataRequest, RunOptions, RunSummary, Speed, run};
pub use profile::Profile;
