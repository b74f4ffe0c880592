//! End to end: the simulator's AM550 on a real pty → virtual-m5stickc → a real broker →
//! a subscriber. Also the interop test against mosquitto (ignored unless mosquitto is installed;
//! `ci/checks/40-fw-mosquitto.sh` runs it).
#![allow(clippy::unwrap_used)]

mod chain;
mod config_file;
mod power;
mod rig;

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}
