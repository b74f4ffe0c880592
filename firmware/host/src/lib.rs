//! The virtual M5StickC: `firmware-app` on Linux.
//!
//! Each seam of the application gets a host implementation here: the P1 UART is a real serial
//! device (a pty from `p1-sim`, or a USB-UART), the broker link real TCP, the console stdout, the
//! clock tokio's, optionally running `--time-scale K` times faster than wall time, WiFi a virtual
//! link switched by stdin commands, and the AXP192 a fixed-supply model until the simulator's
//! power model is wired in.

pub mod ble_sink;
pub mod config_file;
pub mod seams;

/// Compiled capacity of the store-and-forward ring on the host (the configured `ring_capacity`
/// may use less).
pub const HOST_RING: usize = 16_384;

/// Slots of the ring's storage: one more than [`HOST_RING`] for the reading in flight.
pub const HOST_RING_SLOTS: usize = HOST_RING + 1;
