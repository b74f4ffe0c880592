//! The virtual radio: every BLE advertisement becomes one UDP datagram.
//!
//! Datagram format (scripts and the harness rely on it): the 6-byte device address, most
//! significant byte first (`AA:BB:CC:DD:EE:FF` is sent as `AA BB CC DD EE FF`), followed by the raw
//! AD structures exactly as the radio would put them on air (at most 31 bytes for a legacy
//! advertisement). Nothing else: no length, no framing, no timestamp.
//!
//! Like a radio, the sink does not know whether anyone listens: sending to a port nobody has
//! bound is not an error. Sending never blocks; a datagram the kernel cannot queue right now is
//! dropped and reported as [`BleSinkError::Send`].
//!
//! Self-contained (std only) so any crate can use it.
//!
//! ```no_run
//! # use firmware_host::ble_sink::BleSink;
//! # fn demo(address: [u8; 6], ad: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let sink = BleSink::open("udp://127.0.0.1:9999")?; // --ble-sink
//! sink.send(address, ad)?; // Encoder::address(), Advertisement::as_bytes()
//! # Ok(()) }
//! ```
//!
//! To watch the advertisements decoded by Home Assistant's parser:
//! `.venv/bin/python firmware/app/tests/bthome_decode.py --listen 127.0.0.1:9999 --count 100
//! [--bind-key HEX]`; `firmware_app::bthome::decode` does the same in Rust.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

/// Length of the address prefix.
pub const ADDRESS_LEN: usize = 6;
/// Longest AD payload accepted (legacy advertising).
pub const AD_MAX: usize = 31;

/// A UDP destination for advertisements, opened from `udp://HOST:PORT`.
#[derive(Debug)]
pub struct BleSink {
    socket: UdpSocket,
    target: SocketAddr,
}

impl BleSink {
    /// Opens the sink named by `url` (`udp://HOST:PORT`; HOST may be a name, an IPv4 address or a
    /// bracketed IPv6 address). The name is resolved once, here.
    pub fn open(url: &str) -> Result<BleSink, BleSinkError> {
        let bad = |reason: &'static str| BleSinkError::BadUrl { url: url.to_owned(), reason };
        let host_port = url.strip_prefix("udp://").ok_or_else(|| bad("must start with udp://"))?;
        if host_port.is_empty() || host_port.contains('/') {
            return Err(bad("expected udp://HOST:PORT"));
        }
        let resolved: Vec<SocketAddr> = host_port
            .to_socket_addrs()
            .map_err(|source| BleSinkError::Resolve { url: url.to_owned(), source })?
            .collect();
        // A name like localhost may resolve to ::1 first; IPv4 works on hosts without IPv6.
        let target = resolved
            .iter()
            .find(|a| a.is_ipv4())
            .or(resolved.first())
            .copied()
            .ok_or_else(|| bad("HOST resolves to no address"))?;
        if target.port() == 0 {
            return Err(bad("PORT must not be 0"));
        }
        let local: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local).map_err(|source| BleSinkError::Bind { target, source })?;
        socket.set_nonblocking(true).map_err(|source| BleSinkError::Bind { target, source })?;
        Ok(BleSink { socket, target })
    }

    /// Where datagrams go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Sends one advertisement from `address` (most significant byte first) with AD structures
    /// `ad` as one datagram.
    pub fn send(&self, address: [u8; 6], ad: &[u8]) -> Result<(), BleSinkError> {
        let (buf, len) = encode_datagram(address, ad)?;
        let datagram = buf.get(..len).unwrap_or(&[]);
        match self.socket.send_to(datagram, self.target) {
            Ok(n) if n == len => Ok(()),
            Ok(n) => Err(BleSinkError::Send {
                target: self.target,
                source: io::Error::new(io::ErrorKind::WriteZero, format!("sent {n} of {len} bytes")),
            }),
            Err(source) => Err(BleSinkError::Send { target: self.target, source }),
        }
    }
}

/// The datagram for one advertisement: a buffer and the length used.
pub fn encode_datagram(address: [u8; 6], ad: &[u8]) -> Result<([u8; ADDRESS_LEN + AD_MAX], usize), BleSinkError> {
    if ad.len() > AD_MAX {
        return Err(BleSinkError::TooLong { len: ad.len() });
    }
    let mut buf = [0u8; ADDRESS_LEN + AD_MAX];
    let (head, tail) = buf.split_at_mut(ADDRESS_LEN);
    head.copy_from_slice(&address);
    if let Some(dst) = tail.get_mut(..ad.len()) {
        dst.copy_from_slice(ad);
    }
    Ok((buf, ADDRESS_LEN + ad.len()))
}

/// Splits a received datagram into the device address and the AD structures.
pub fn parse_datagram(datagram: &[u8]) -> Result<([u8; 6], &[u8]), BleSinkError> {
    let (address, ad) =
        datagram.split_first_chunk::<ADDRESS_LEN>().ok_or(BleSinkError::Short { len: datagram.len() })?;
    if ad.len() > AD_MAX {
        return Err(BleSinkError::TooLong { len: ad.len() });
    }
    Ok((*address, ad))
}

/// Why the sink could not be opened or a datagram not sent or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BleSinkError {
    /// The sink URL is not `udp://HOST:PORT`.
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// HOST:PORT did not resolve.
    Resolve {
        /// The URL given.
        url: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No local UDP socket could be made.
    Bind {
        /// The destination it was for.
        target: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The datagram was not sent (it is dropped, as a radio would lose it).
    Send {
        /// The destination.
        target: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// More AD bytes than a legacy advertisement holds.
    TooLong {
        /// Bytes of AD data.
        len: usize,
    },
    /// A received datagram shorter than the 6-byte address.
    Short {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for BleSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BleSinkError::BadUrl { url, reason } => write!(f, "BLE sink {url:?}: {reason}"),
            BleSinkError::Resolve { url, source } => write!(f, "BLE sink {url:?}: cannot resolve: {source}"),
            BleSinkError::Bind { target, source } => write!(f, "BLE sink to {target}: no UDP socket: {source}"),
            BleSinkError::Send { target, source } => write!(f, "BLE sink to {target}: datagram dropped: {source}"),
            BleSinkError::TooLong { len } => write!(f, "BLE advertisement of {len} bytes, at most {AD_MAX} allowed"),
            BleSinkError::Short { len } => {
                write!(f, "BLE datagram of {len} bytes, shorter than the {ADDRESS_LEN}-byte address")
            }
        }
    }
}

impl std::error::Error for BleSinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BleSinkError::Resolve { source, .. } | BleSinkError::Bind { source, .. } | BleSinkError::Send { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ADDR: [u8; 6] = [0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF];

    fn receiver() -> (UdpSocket, String) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        rx.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
        let url = format!("udp://{}", rx.local_addr().expect("local addr"));
        (rx, url)
    }

    #[test]
    fn one_datagram_per_advertisement_address_first() {
        let (rx, url) = receiver();
        let sink = BleSink::open(&url).expect("open");
        let ad = [0x02, 0x01, 0x06, 0x04, 0x16, 0xD2, 0xFC, 0x40];
        sink.send(ADDR, &ad).expect("send");
        sink.send([1, 2, 3, 4, 5, 6], &[]).expect("send empty");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("first datagram");
        assert_eq!(&buf[..n], &[0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x02, 0x01, 0x06, 0x04, 0x16, 0xD2, 0xFC, 0x40]);
        assert_eq!(parse_datagram(&buf[..n]).expect("parse"), (ADDR, &ad[..]));
        let n = rx.recv(&mut buf).expect("second datagram");
        assert_eq!(&buf[..n], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn nobody_listening_is_not_an_error() {
        let (rx, url) = receiver();
        drop(rx);
        let sink = BleSink::open(&url).expect("open");
        for _ in 0..3 {
            sink.send(ADDR, &[0x02, 0x01, 0x06]).expect("send to a closed port");
        }
    }

    #[test]
    fn names_resolve_preferring_ipv4() {
        let target = BleSink::open("udp://localhost:9").expect("name").target();
        assert_eq!((target.ip().is_loopback(), target.is_ipv4(), target.port()), (true, true, 9));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let mut tried = 0;
        for (url, needle) in [
            ("tcp://127.0.0.1:9", "must start with udp://"),
            ("udp://", "expected udp://HOST:PORT"),
            ("udp://127.0.0.1:9/x", "expected udp://HOST:PORT"),
            ("udp://127.0.0.1:0", "PORT must not be 0"),
            ("udp://127.0.0.1", "cannot resolve"),
            ("udp://127.0.0.1:99999", "cannot resolve"),
        ] {
            let err = BleSink::open(url).expect_err(url).to_string();
            assert!(err.contains(needle) && err.contains(url), "{url}: {err}");
            tried += 1;
        }
        hostile_inputs("BLE/TLS inputs", tried, "firmware-host ble_sink::tests::bad_urls_say_what_is_wrong");
    }

    #[test]
    fn oversized_and_short_are_refused() {
        let (_rx, url) = receiver();
        let sink = BleSink::open(&url).expect("open");
        assert!(matches!(sink.send(ADDR, &[0; 32]), Err(BleSinkError::TooLong { len: 32 })));
        assert!(sink.send(ADDR, &[0; 31]).is_ok());
        assert!(matches!(parse_datagram(&[1, 2, 3, 4, 5]), Err(BleSinkError::Short { len: 5 })));
        assert!(matches!(parse_datagram(&[0; 38]), Err(BleSinkError::TooLong { len: 32 })));
    }

    /// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
    fn hostile_inputs(category: &str, count: usize, test: &str) {
        if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
            f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
        }
    }
}
