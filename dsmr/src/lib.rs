//! DSMR / ESMR P1 telegrams: a streaming framer, CRC-16, a zero-copy telegram view, a typed
//! reading and a writer, for the ESP32 gateway and the host tools alike.
//!
//! # Layers
//!
//! * [`crc`]: CRC-16/ARC (DSMR 4/5, e-MUCS) and CRC-16/X25 (Holley).
//! * [`Framer`]: bytes in, whole telegrams out. Skips garbage before `/`, copes with a telegram
//!   split across any number of reads, accepts CRLF and bare LF, 3-digit and lowercase CRCs and
//!   CRC-less DSMR 2.2/3 telegrams, and reports each problem as a distinct, counted [`FrameError`].
//! * [`Telegram`]: zero-copy view of one telegram: header, manufacturer id, [`Line`]s with their
//!   [`Obis`] reference and [`Value`]s (text and unit exactly as written).
//! * [`Reading`]: the typed model of every object a gateway needs (DSMR 2.2 to 5.0.2, e-MUCS
//!   Belgium, Luxembourg Smarty, M-Bus channels 1..4). Values are fixed-point [`Fixed`] numbers with
//!   the decimals the meter wrote: no floating point is needed on targets without an FPU.
//! * [`emit`]: writes telegrams (line by line, or from a [`Reading`]) that the parser accepts byte
//!   for byte, with CRC-16/ARC, X25 or none.
//!
//! # Guarantees
//!
//! * **Never panics on any input.** No indexing, `unwrap` or arithmetic that can panic on input
//!   data; checked by property tests and a cargo-fuzz target over the framer and decoder.
//! * **No allocation.** The crate is `no_std` without `alloc`; all storage is fixed size
//!   (`heapless`). The `std` feature only adds JSON rendering.
//! * **`unsafe` only for CPU instructions.** On x86-64 the byte scans use SSE2 and the CRC uses
//!   PCLMULQDQ (after a CPUID check); calling those `#[target_feature]` functions is the only
//!   `unsafe`, and they read their input through ordinary slices. Other targets, and the
//!   `portable` feature, run safe SWAR and table code.
//! * **Unknown is not an error.** Objects without a typed field are counted in
//!   [`Reading::unknown_objects`] and stay visible in the [`Telegram`] view. Malformed values and
//!   unit mismatches (units are checked against the spec's dimension for each object) are recorded
//!   as [`Issue`]s; they never fail the whole telegram.
//!
//! # Limits
//!
//! * Telegram size: the framer's const generic `N` (use 4096; real Belgian telegrams exceed 2 KiB).
//! * Numbers: at most 18 digits (`i64` fixed-point); OBIS fields 0..=255; timestamps 20YY.
//! * Stored lengths: [`reading::HEADER_CAP`], [`reading::ID_CAP`], [`reading::TEXT_CAP`],
//!   [`reading::FAILURE_LOG_CAP`] (10), [`reading::PEAK_HISTORY_CAP`] (13). Longer input is cut and
//!   reported as [`IssueKind::TooLong`].
//!
//! # Example
//!
//! ```
//! use dsmr::{Framer, Reading};
//! let bytes = b"noise/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\n!D69C\r\n";
//! let mut framer = Framer::<4096>::new();
//! let (used, event) = framer.feed(bytes);
//! let frame = event.unwrap().unwrap();
//! let reading = Reading::decode(&frame.telegram());
//! assert_eq!(reading.energy_import[1].unwrap().value.milli(), Some(576_239));
//! assert_eq!(used, bytes.len() - 2); // the CR LF after the CRC is left for the next call
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![warn(missing_docs)]

pub mod crc;
pub mod emit;
pub mod framer;
#[cfg(feature = "std")]
pub mod json;
pub mod reading;
mod scan;
pub mod telegram;
pub mod value;

pub use crc::CrcKind;
pub use framer::{Frame, FrameError, Framer, FramerStats, MalformedKind};
pub use reading::{DeviceKind, Issue, IssueKind, MBusDevice, MBusValue, MBusValueKind, Reading};
pub use telegram::{Line, LineError, Obis, ParseError, Telegram, Value};
pub use value::{Dimension, Dst, Fixed, Quantity, Timestamp, Unit};

/// Displays bytes as text, escaping anything that is not printable ASCII (`\x02`).
#[derive(Clone, Copy)]
pub struct BytesDisplay<'a>(pub &'a [u8]);

/// Wraps bytes for display (see [`BytesDisplay`]).
pub fn fmt_bytes(b: &[u8]) -> BytesDisplay<'_> {
    BytesDisplay(b)
}

impl core::fmt::Display for BytesDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            if (0x20..0x7f).contains(&b) {
                core::fmt::Write::write_char(f, char::from(b))?;
            } else {
                write!(f, "\\x{b:02X}")?;
            }
        }
        Ok(())
    }
}

impl core::fmt::Debug for BytesDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{self}\"")
    }
}
