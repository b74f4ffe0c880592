//! A small MQTT 3.1.1 codec: the packets a telemetry client sends and receives, encoded into and
//! decoded from caller-owned buffers. No allocation; malformed or oversize input is an error value,
//! never a panic.

use core::fmt;

use crate::text::Cursor;

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The buffer is too small for the packet.
    BufferFull,
    /// A string or payload is longer than MQTT allows.
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferFull => "buffer full",
            EncodeError::TooLong => "field too long",
        })
    }
}

impl core::error::Error for EncodeError {}

struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self.len.checked_add(b.len()).ok_or(EncodeError::BufferFull)?;
        self.buf.get_mut(self.len..end).ok_or(EncodeError::BufferFull)?.copy_from_slice(b);
        self.len = end;
        Ok(())
    }
    fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }
    fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }
    fn str(&mut self, s: &[u8]) -> Result<(), EncodeError> {
        let n = u16::try_from(s.len()).map_err(|_| EncodeError::TooLong)?;
        self.u16(n)?;
        self.put(s)
    }
}

/// Encodes a remaining length; returns the bytes and their count.
fn remaining_length(mut n: usize) -> Result<([u8; 4], usize), EncodeError> {
    if n > 268_435_455 {
        return Err(EncodeError::TooLong);
    }
    let mut out = [0u8; 4];
    let mut i = 0;
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = b;
        }
        i += 1;
        if n == 0 || i == 4 {
            return Ok((out, i));
        }
    }
}

/// Writes a packet whose variable part is already at `buf[5..5 + body]`: puts the fixed header in
/// front of it and returns the packet's range in `buf`.
fn finish(buf: &mut [u8], first: u8, body: usize) -> Result<core::ops::Range<usize>, EncodeError> {
    let (rl, n) = remaining_length(body)?;
    let start = 5 - 1 - n;
    let hdr = buf.get_mut(start..5).ok_or(EncodeError::BufferFull)?;
    let (h0, rest) = hdr.split_first_mut().ok_or(EncodeError::BufferFull)?;
    *h0 = first;
    rest.copy_from_slice(rl.get(..n).ok_or(EncodeError::BufferFull)?);
    Ok(start..5 + body)
}

/// The last will.
#[derive(Debug, Clone, Copy)]
pub struct Will<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS 0 or 1.
    pub qos: u8,
    /// Retained.
    pub retain: bool,
}

/// CONNECT options.
#[derive(Debug, Clone, Copy)]
pub struct Connect<'a> {
    /// Client identifier.
    pub client_id: &'a str,
    /// Keep-alive, seconds.
    pub keepalive_s: u16,
    /// Start a clean session.
    pub clean_session: bool,
    /// Last will.
    pub will: Option<Will<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
}

/// Encodes CONNECT; returns the packet's range in `buf`.
pub fn connect(buf: &mut [u8], c: &Connect<'_>) -> Result<core::ops::Range<usize>, EncodeError> {
    let body = buf.get_mut(5..).ok_or(EncodeError::BufferFull)?;
    let mut o = Out { buf: body, len: 0 };
    o.str(b"MQTT")?;
    o.u8(4)?;
    let mut flags = 0u8;
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos & 0x03) << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    o.u8(flags)?;
    o.u16(c.keepalive_s)?;
    o.str(c.client_id.as_bytes())?;
    if let Some(w) = &c.will {
        o.str(w.topic.as_bytes())?;
        o.str(w.payload)?;
    }
    if let Some(u) = c.username {
        o.str(u.as_bytes())?;
    }
    if let Some(p) = c.password {
        o.str(p)?;
    }
    let n = o.len;
    finish(buf, 0x10, n)
}

/// Encodes PUBLISH; the payload is written by `payload` straight into `buf` (no copy).
/// `packet_id` is used when `qos == 1`.
pub fn publish(
    buf: &mut [u8],
    topic: &str,
    qos: u8,
    retain: bool,
    dup: bool,
    packet_id: u16,
    payload: impl FnOnce(&mut Cursor<'_>) -> fmt::Result,
) -> Result<core::ops::Range<usize>, EncodeError> {
    let body = buf.get_mut(5..).ok_or(EncodeError::BufferFull)?;
    let mut o = Out { buf: body, len: 0 };
    o.str(topic.as_bytes())?;
    if qos > 0 {
        o.u16(packet_id)?;
    }
    let var = o.len;
    let rest = body.get_mut(var..).ok_or(EncodeError::BufferFull)?;
    let mut c = Cursor::new(rest);
    payload(&mut c).map_err(|_| EncodeError::BufferFull)?;
    let n = var + c.len();
    let mut first = 0x30 | ((qos & 0x03) << 1);
    if retain {
        first |= 0x01;
    }
    if dup {
        first |= 0x08;
    }
    finish(buf, first, n)
}

/// Encodes SUBSCRIBE for one topic filter.
pub fn subscribe(buf: &mut [u8], packet_id: u16, filter: &str, qos: u8) -> Result<core::ops::Range<usize>, EncodeError> {
    let body = buf.get_mut(5..).ok_or(EncodeError::BufferFull)?;
    let mut o = Out { buf: body, len: 0 };
    o.u16(packet_id)?;
    o.str(filter.as_bytes())?;
    o.u8(qos & 0x03)?;
    let n = o.len;
    finish(buf, 0x82, n)
}

/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// DISCONNECT.
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// PUBACK for `packet_id`.
pub fn puback(packet_id: u16) -> [u8; 4] {
    let [a, b] = packet_id.to_be_bytes();
    [0x40, 0x02, a, b]
}

/// A packet received from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNACK with its return code (0 = accepted).
    ConnAck {
        /// Session present flag.
        session_present: bool,
        /// Return code.
        code: u8,
    },
    /// PUBACK.
    PubAck(u16),
    /// SUBACK with the granted QoS (0x80 = failure).
    SubAck(u16, u8),
    /// PINGRESP.
    PingResp,
    /// An application message.
    Publish {
        /// Topic.
        topic: &'a [u8],
        /// Payload.
        payload: &'a [u8],
        /// QoS.
        qos: u8,
        /// Packet id (QoS > 0).
        packet_id: u16,
        /// Retained.
        retain: bool,
    },
    /// Any other packet type (the type nibble).
    Other(u8),
}

/// The result of looking at the start of a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole packet yet.
    NeedMore,
    /// A packet of `len` bytes.
    Packet(Packet<'a>, usize),
    /// A packet of `len` bytes whose body is malformed; skip it.
    Malformed(usize),
    /// A packet longer than the receive buffer: `header` bytes of fixed header, then `body` bytes
    /// to skip.
    TooLong {
        /// Fixed header length.
        header: usize,
        /// Body length.
        body: usize,
    },
    /// The remaining-length field is invalid: the stream is out of sync.
    Corrupt,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes the packet at the start of `buf`; `capacity` is the receive buffer's size.
pub fn decode(buf: &[u8], capacity: usize) -> Decoded<'_> {
    let Some(&first) = buf.first() else { return Decoded::NeedMore };
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else { return Decoded::NeedMore };
        len += usize::from(b & 0x7F) * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Decoded::Corrupt;
        }
        mult *= 128;
    }
    let total = i + len;
    if total > capacity {
        return Decoded::TooLong { header: i, body: len };
    }
    let Some(body) = buf.get(i..total) else { return Decoded::NeedMore };
    let kind = first >> 4;
    let p = match kind {
        2 => match (body.first(), body.get(1)) {
            (Some(&sp), Some(&code)) if body.len() == 2 => Packet::ConnAck { session_present: sp & 1 == 1, code },
            _ => return Decoded::Malformed(total),
        },
        4 => match be16(body, 0) {
            Some(id) if body.len() == 2 => Packet::PubAck(id),
            _ => return Decoded::Malformed(total),
        },
        9 => match (be16(body, 0), body.get(2)) {
            (Some(id), Some(&rc)) => Packet::SubAck(id, rc),
            _ => return Decoded::Malformed(total),
        },
        13 if body.is_empty() => Packet::PingResp,
        3 => {
            let qos = (first >> 1) & 0x03;
            let Some(tl) = be16(body, 0) else { return Decoded::Malformed(total) };
            let tl = usize::from(tl);
            let Some(topic) = body.get(2..2 + tl) else { return Decoded::Malformed(total) };
            let mut at = 2 + tl;
            let mut packet_id = 0;
            if qos > 0 {
                let Some(id) = be16(body, at) else { return Decoded::Malformed(total) };
                packet_id = id;
                at += 2;
            }
            if qos > 2 {
                return Decoded::Malformed(total);
            }
            let payload = body.get(at..).unwrap_or(&[]);
            Packet::Publish { topic, payload, qos, packet_id, retain: first & 1 == 1 }
        }
        k => Packet::Other(k),
    };
    Decoded::Packet(p, total)
}
