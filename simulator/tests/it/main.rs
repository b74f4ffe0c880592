//! Integration tests for the simulator (one binary; one module per concern).

/// Held by the CPU-heavy test and the real-time timing tests so they do not run at the same time
/// inside this binary (the machines have two cores).
pub static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|e| e.into_inner())
}
mod profiles;
mod interop;
mod faults;
mod pty;
mod cli;
mod replay;

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}
