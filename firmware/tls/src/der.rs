//! A strict, allocation-free DER reader: just enough ASN.1 for X.509 certificates.
//!
//! Every function returns `None` on malformed input instead of panicking; lengths are checked
//! against the remaining input before any slice is taken.

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// One decoded element: its tag, its contents and its whole encoding (header included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// A cursor over a sequence of DER elements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn any(&mut self) -> Option<Tlv<'a>> {
        let input = self.rest;
        let (&tag, after_tag) = input.split_first()?;
        // High-tag-number form (tag & 0x1f == 0x1f) never occurs in X.509.
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut after_len) = after_tag.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            // Certificates are far below 16 MiB; longer length fields are rejected.
            if n == 0 || n > 3 {
                return None;
            }
            let (bytes, tail) = after_len.split_at_checked(n)?;
            after_len = tail;
            let mut len = 0usize;
            for &b in bytes {
                len = (len << 8) | usize::from(b);
            }
            // DER: the shortest form is mandatory.
            if len < 0x80 || bytes.first() == Some(&0) {
                return None;
            }
            len
        };
        let (value, rest) = after_len.split_at_checked(len)?;
        let header_len = input.len() - after_len.len();
        let raw = input.get(..header_len + len)?;
        self.rest = rest;
        Some(Tlv { tag, value, raw })
    }

    /// The next element, which must have tag `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let tlv = self.any()?;
        (tlv.tag == tag).then_some(tlv)
    }

    /// The next element if it has tag `tag`; otherwise nothing is consumed.
    pub fn optional(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let mut probe = *self;
        let tlv = probe.any()?;
        if tlv.tag == tag {
            *self = probe;
            Some(tlv)
        } else {
            None
        }
    }
}

/// The contents of a BIT STRING with no unused bits (keys and signatures).
pub(crate) fn bit_string_bytes(value: &[u8]) -> Option<&[u8]> {
    match value.split_first() {
        Some((0, bytes)) => Some(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let mut r = Reader::new(&[0x04, 0x02, 0xAA, 0xBB, 0x05, 0x00]);
        let t = r.any().expect("element");
        assert_eq!((t.tag, t.value, t.raw.len()), (0x04, &[0xAA, 0xBB][..], 4));
        assert_eq!(r.any().expect("element").tag, 0x05);
        assert!(r.is_empty());

        let mut long = [0u8; 3 + 200];
        long[..3].copy_from_slice(&[0x04, 0x81, 200]);
        let t = Reader::new(&long).any().expect("long form");
        assert_eq!(t.value.len(), 200);
    }

    #[test]
    fn malformed_is_none_not_panic() {
        let mut tried = 0;
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x81, 0x05, 0, 0, 0, 0, 0], // non-minimal length
            &[0x30, 0x84, 1, 0, 0, 0],          // length field too long
            &[0x30, 0x80],                      // indefinite length
            &[0x1f, 0x01, 0x00],                // high tag number
            &[0x30, 0x82, 0xff, 0xff, 0x00],    // length past the end
        ] {
            assert!(Reader::new(bad).any().is_none(), "{bad:x?}");
            tried += 1;
        }
        crate::hostile_inputs("BLE/TLS inputs", tried, "firmware-tls der::tests::malformed_is_none_not_panic");
    }
}
