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

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
#[cfg(test)]
pub(crate) fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}
