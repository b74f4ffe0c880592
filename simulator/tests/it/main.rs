//! Integration tests for the simulator (one binary; one module per concern).
mod profiles;
mod interop;
mod faults;
mod pty;
mod cli;
mod replay;
