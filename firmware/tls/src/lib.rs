//! TLS 1.3 client for the gateway's broker connection, for the ESP32 and the Linux virtual device
//! alike: `no_std`, no heap (unless the `rsa` feature is on), never panics on any input.
//!
//! [`connect`] wraps any [`embedded_io_async`] `Read + Write` byte stream (an embassy-net TCP socket,
//! a tokio `TcpStream` through an adapter) into an encrypted [`TlsStream`] with the same traits, so
//! the MQTT client runs unchanged over either.
//!
//! # Guarantees
//! - The broker's certificate chain must lead to the one configured CA ([`TrustAnchor`]): the leaf
//!   is signed by the CA, or by intermediates the server sends that are themselves CAs signed up to
//!   it (at most 4 certificates).
//! - Every certificate on that path is within its validity dates at `now_unix_s`, the caller's
//!   wall-clock time; when the caller says that is only a lower bound (`now_is_lower_bound`), only
//!   the expiry date is checked.
//! - The leaf names the host the caller asked for: a DNS name (one leading `*` label allowed) or an
//!   IP address in its subjectAltName, or, for certificates without subjectAltName, the subject
//!   common name.
//! - The server proves it holds the leaf's key (TLS 1.3 CertificateVerify), and the handshake is
//!   authenticated end to end (Finished).
//! - Each failure is one [`Error`] naming its cause; the checks run in the order trust, dates, name,
//!   so a certificate from an unknown CA is reported as [`Error::UnknownIssuer`] whatever its dates.
//!
//! Supported: TLS 1.3 with TLS_AES_128_GCM_SHA256 and an ECDHE secp256r1 key exchange; ECDSA P-256
//! certificates, P-384 with the `p384` feature (default), RSA with the `rsa` feature. Not checked: revocation, key usage, name
//! constraints (certificates with a critical extension other than the usual ones are refused).
#![no_std]

#[cfg(test)]
extern crate std;

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
#[cfg(test)]
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(std::format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}

mod der;
mod pem;
mod verify;
mod x509;

use embedded_io_async::{ErrorType, Read, Write};
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext};
use rand_core::{CryptoRng, RngCore};

pub use embedded_tls::MaxFragmentLength;
pub use pem::pem_to_der;
pub use rand_core;

/// Size of a read buffer that holds any TLS record (2^14 plaintext bytes plus the record overhead).
/// Smaller buffers work only if the server honours [`Options::max_fragment_length`].
pub const RECORD_BUFFER_MAX: usize = 16_640;
/// Smallest useful write buffer: one record's overhead plus room for data.
pub const WRITE_BUFFER_MIN: usize = embedded_tls::TLS_RECORD_OVERHEAD + 256;

/// Why a TLS connection could not be set up or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configured CA certificate is not a readable PEM or DER X.509 certificate, or its key
    /// type is not supported.
    BadCa,
    /// The broker's certificate was not issued by the configured CA (wrong CA, or a self-signed
    /// certificate the device does not trust).
    UnknownIssuer,
    /// The broker's certificate (or an intermediate) has expired.
    Expired,
    /// The broker's certificate is not valid yet; often the device's clock is wrong.
    NotYetValid,
    /// The broker's certificate does not name the host the device connected to.
    HostnameMismatch,
    /// The broker sent a certificate that could not be parsed.
    BadCertificate,
    /// The broker's certificate uses a key type, signature algorithm or critical extension this
    /// build does not support.
    UnsupportedCertificate,
    /// The TLS handshake failed otherwise: the broker refused it (an alert, e.g. no common cipher
    /// suite or protocol version), sent something malformed, or did not prove it holds its key.
    Handshake,
    /// The connection was closed by the broker.
    Closed,
    /// The underlying transport failed.
    Io(embedded_io::ErrorKind),
}

impl Error {
    /// Short, stable name for console lines and counters (`tls_unknown_issuer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Error::BadCa => "tls_bad_ca",
            Error::UnknownIssuer => "tls_unknown_issuer",
            Error::Expired => "tls_expired",
            Error::NotYetValid => "tls_not_yet_valid",
            Error::HostnameMismatch => "tls_hostname_mismatch",
            Error::BadCertificate => "tls_bad_certificate",
            Error::UnsupportedCertificate => "tls_unsupported_certificate",
            Error::Handshake => "tls_handshake",
            Error::Closed => "tls_closed",
            Error::Io(_) => "tls_io",
        }
    }

    /// True for failures of the broker's certificate (as opposed to the connection): retrying soon
    /// will not help, so a caller backs off to its longest delay.
    pub fn is_certificate_problem(self) -> bool {
        matches!(
            self,
            Error::BadCa
                | Error::UnknownIssuer
                | Error::Expired
                | Error::NotYetValid
                | Error::HostnameMismatch
                | Error::BadCertificate
                | Error::UnsupportedCertificate
        )
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::BadCa => "the configured CA certificate is not a usable PEM/DER X.509 certificate",
            Error::UnknownIssuer => "the broker certificate is not issued by the configured CA",
            Error::Expired => "the broker certificate has expired",
            Error::NotYetValid => "the broker certificate is not valid yet (check the clock)",
            Error::HostnameMismatch => "the broker certificate does not name the broker host",
            Error::BadCertificate => "the broker sent a malformed certificate",
            Error::UnsupportedCertificate => "the broker certificate uses an unsupported algorithm or extension",
            Error::Handshake => "the TLS handshake failed",
            Error::Closed => "the broker closed the TLS connection",
            Error::Io(_) => "the connection to the broker failed",
        })
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Error::Io(kind) => *kind,
            Error::Closed => embedded_io::ErrorKind::ConnectionAborted,
            _ => embedded_io::ErrorKind::Other,
        }
    }
}

fn from_inner(e: embedded_tls::TlsError) -> Error {
    use embedded_tls::TlsError as T;
    match e {
        T::Io(kind) => Error::Io(kind),
        T::IoError => Error::Io(embedded_io::ErrorKind::Other),
        T::ConnectionClosed => Error::Closed,
        T::InvalidCertificate | T::InvalidCertificateEntry => Error::BadCertificate,
        _ => Error::Handshake,
    }
}

/// The CA the broker's certificate must chain to, checked when it is made.
#[derive(Debug, Clone, Copy)]
pub struct TrustAnchor<'a> {
    der: &'a [u8],
}

impl<'a> TrustAnchor<'a> {
    /// A CA from its DER encoding. Fails with [`Error::BadCa`] unless it parses as an X.509
    /// certificate with a supported key.
    pub fn from_der(der: &'a [u8]) -> Result<Self, Error> {
        let cert = x509::parse(der).ok_or(Error::BadCa)?;
        match cert.key.kind {
            x509::KeyKind::P256 => Ok(Self { der }),
            x509::KeyKind::P384 if cfg!(feature = "p384") => Ok(Self { der }),
            x509::KeyKind::Rsa if cfg!(feature = "rsa") => Ok(Self { der }),
            _ => Err(Error::BadCa),
        }
    }

    /// A CA from PEM (the first `CERTIFICATE` block) or DER, decoded into `scratch` when PEM.
    /// `scratch` needs about three quarters of the PEM's size.
    pub fn from_pem_or_der(input: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, Error> {
        if input.first() == Some(&0x30) {
            return Self::from_der(input);
        }
        let len = pem_to_der(input, scratch)?;
        Self::from_der(scratch.get(..len).ok_or(Error::BadCa)?)
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }
}

/// What a connection needs besides the transport and the buffers.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The CA the broker's certificate must chain to.
    pub ca: TrustAnchor<'a>,
    /// The broker's host name or IP address as configured: checked against its certificate, and
    /// sent as SNI when it is a DNS name.
    pub server_name: &'a str,
    /// Wall-clock time, seconds since the Unix epoch (UTC), for the validity dates. A device without
    /// network time should pass a lower bound it trusts (e.g. its firmware build time), never 0.
    pub now_unix_s: u64,
    /// `now_unix_s` is only a lower bound (a device without network time passing its build time
    /// plus uptime): a certificate that is not valid yet is then accepted, since the real time may
    /// well be past its start, while one that expired before `now_unix_s` is still refused.
    pub now_is_lower_bound: bool,
    /// Ask the broker for smaller records so a smaller read buffer suffices (RFC 6066; OpenSSL,
    /// and so mosquitto, honour it). `None`: records up to 16 KiB, read buffer [`RECORD_BUFFER_MAX`].
    pub max_fragment_length: Option<MaxFragmentLength>,
}

/// An encrypted stream to the broker. Reading and writing plaintext through it.
///
/// Writes are buffered into one TLS record until [`Write::flush`] (or until the write buffer is
/// full). Do not drop a `write` or `flush` future half-way and then keep using the stream: part of
/// a record may have been sent. Dropping a `read` future loses nothing.
pub struct TlsStream<'b, T: Read + Write + 'b> {
    inner: TlsConnection<'b, T, Aes128GcmSha256>,
}

impl<T: Read + Write> core::fmt::Debug for TlsStream<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsStream")
    }
}

/// Runs the TLS handshake over `transport` and verifies the broker (see the crate docs).
///
/// `read_buf` holds one incoming record ([`RECORD_BUFFER_MAX`] bytes unless a max fragment length
/// is negotiated); `write_buf` one outgoing record (at least [`WRITE_BUFFER_MIN`]); the larger of
/// the two must hold the ClientHello (a few hundred bytes). `rng` must be a cryptographic RNG.
pub async fn connect<'b, T, R>(
    transport: T,
    read_buf: &'b mut [u8],
    write_buf: &'b mut [u8],
    options: &Options<'_>,
    rng: R,
) -> Result<TlsStream<'b, T>, Error>
where
    T: Read + Write + 'b,
    R: CryptoRng + RngCore,
{
    if write_buf.len() < WRITE_BUFFER_MIN {
        return Err(Error::Io(embedded_io::ErrorKind::OutOfMemory));
    }
    let ca = x509::parse(options.ca.der).ok_or(Error::BadCa)?;
    let now = i64::try_from(options.now_unix_s).unwrap_or(i64::MAX);
    let mut verifier = verify::Verifier::new(ca, options.server_name, now, options.now_is_lower_bound);

    let is_ip = options.server_name.parse::<core::net::IpAddr>().is_ok();
    let mut config = TlsConfig::new();
    if !is_ip && !options.server_name.is_empty() {
        config = config.with_server_name(options.server_name);
    }
    if let Some(mfl) = options.max_fragment_length {
        config = config.with_max_fragment_length(mfl);
    }

    let mut inner = TlsConnection::new(transport, read_buf, write_buf);
    let provider = verify::Provider { rng, verifier: &mut verifier };
    match inner.open(TlsContext::new(&config, provider)).await {
        Ok(()) => Ok(TlsStream { inner }),
        Err(e) => Err(verifier.failure.unwrap_or_else(|| from_inner(e))),
    }
}

impl<'b, T: Read + Write + 'b> TlsStream<'b, T> {
    /// Sends close_notify and returns the transport (also when that fails, with the error).
    pub async fn close(self) -> Result<T, (T, Error)> {
        self.inner.close().await.map_err(|(t, e)| (t, from_inner(e)))
    }
}

impl<'b, T: Read + Write + 'b> ErrorType for TlsStream<'b, T> {
    type Error = Error;
}

impl<'b, T: Read + Write + 'b> Read for TlsStream<'b, T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.inner.read(buf).await {
            Ok(n) => Ok(n),
            // A clean close_notify reads as end of stream, like a TCP FIN.
            Err(embedded_tls::TlsError::ConnectionClosed) => Ok(0),
            Err(e) => Err(from_inner(e)),
        }
    }
}

impl<'b, T: Read + Write + 'b> Write for TlsStream<'b, T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.inner.write(buf).await.map_err(from_inner)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush().await.map_err(from_inner)
    }
}

/// A broker connection that is either plain or TLS, so one connector type serves both
/// configurations (`Connector::Conn` in firmware-app). Errors of the plain transport are reported
/// as [`Error::Io`].
// The TLS variant is the one in use on a device; boxing it would need a heap.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Stream<'b, T: Read + Write + 'b> {
    /// Plain TCP.
    Plain(T),
    /// TLS over TCP.
    Tls(TlsStream<'b, T>),
}

impl<'b, T: Read + Write + 'b> ErrorType for Stream<'b, T> {
    type Error = Error;
}

fn io_error<E: embedded_io::Error>(e: E) -> Error {
    Error::Io(e.kind())
}

impl<'b, T: Read + Write + 'b> Read for Stream<'b, T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match self {
            Stream::Plain(t) => t.read(buf).await.map_err(io_error),
            Stream::Tls(t) => t.read(buf).await,
        }
    }
}

impl<'b, T: Read + Write + 'b> Write for Stream<'b, T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        match self {
            Stream::Plain(t) => t.write(buf).await.map_err(io_error),
            Stream::Tls(t) => t.write(buf).await,
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        match self {
            Stream::Plain(t) => t.flush().await.map_err(io_error),
            Stream::Tls(t) => t.flush().await,
        }
    }
}

/// Record buffers for one connection, for a connector to own (a `static` on the device).
/// `R` = [`RECORD_BUFFER_MAX`] reads any record; `W` of 2 KiB or more keeps MQTT packets in one
/// record each.
#[derive(Debug)]
pub struct Buffers<const R: usize, const W: usize> {
    /// Incoming records.
    pub read: [u8; R],
    /// Outgoing records.
    pub write: [u8; W],
}

impl<const R: usize, const W: usize> Buffers<R, W> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self { read: [0; R], write: [0; W] }
    }

    /// Runs [`connect`] over `transport` with these buffers.
    pub async fn connect<'b, T, G>(&'b mut self, transport: T, options: &Options<'_>, rng: G) -> Result<TlsStream<'b, T>, Error>
    where
        T: Read + Write + 'b,
        G: CryptoRng + RngCore,
    {
        connect(transport, &mut self.read, &mut self.write, options, rng).await
    }
}

impl<const R: usize, const W: usize> Default for Buffers<R, W> {
    fn default() -> Self {
        Self::new()
    }
}
