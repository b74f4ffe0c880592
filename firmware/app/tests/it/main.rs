//! firmware-app tests over real fixture telegrams: payloads, topics and discovery documents
//! (insta snapshots, each checked to be JSON Home Assistant accepts), the MQTT codec, the
//! configuration's errors, the publish policy and the back-off.
#![allow(clippy::unwrap_used)]

mod codec;
mod config;
mod payloads;
mod policy;

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}
