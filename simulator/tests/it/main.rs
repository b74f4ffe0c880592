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
