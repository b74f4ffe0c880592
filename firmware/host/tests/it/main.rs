//! End to end: the simulator's AM550 on a real pty → virtual-m5stickc → a real broker →
//! a subscriber. Also the interop test against mosquitto (ignored unless mosquitto is installed;
//! `ci/checks/40-fw-mosquitto.sh` runs it).
#![allow(clippy::unwrap_used)]

mod chain;
mod config_file;
mod power;
mod rig;
