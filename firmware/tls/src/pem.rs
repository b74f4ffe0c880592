//! PEM (RFC 7468) to DER, into a caller's buffer.

use crate::Error;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// Decodes the first `CERTIFICATE` block of `pem` into `out` and returns the DER length.
///
/// Text before the block (comments, other blocks) is ignored; whitespace inside it is skipped.
/// Fails with [`Error::BadCa`] when there is no such block, its base64 is malformed, or `out` is
/// too small.
pub fn pem_to_der(pem: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let start = find(pem, BEGIN).ok_or(Error::BadCa)? + BEGIN.len();
    let body = pem.get(start..).ok_or(Error::BadCa)?;
    let end = find(body, END).ok_or(Error::BadCa)?;
    let body = body.get(..end).ok_or(Error::BadCa)?;

    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut len = 0usize;
    let mut padding = 0usize;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err(Error::BadCa),
        };
        // Data after padding is malformed.
        if padding > 0 {
            return Err(Error::BadCa);
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(len).ok_or(Error::BadCa)? = (acc >> bits) as u8;
            len += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || len == 0 {
        return Err(Error::BadCa);
    }
    Ok(len)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_first_block_and_skips_whitespace() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nTWFu\r\nTWE=\n-----END CERTIFICATE-----\n";
        let mut out = [0u8; 8];
        let n = pem_to_der(pem, &mut out).expect("valid PEM");
        assert_eq!(&out[..n], b"ManMa");
    }

    #[test]
    fn rejects_malformed() {
        let mut out = [0u8; 4];
        let mut tried = 0;
        for bad in [
            &b"no block"[..],
            b"-----BEGIN CERTIFICATE-----\nTWFu\n",
            b"-----BEGIN CERTIFICATE-----\nTW!u\n-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\nTQ==TQ==\n-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\nTWFuTWFuTWFu\n-----END CERTIFICATE-----",
        ] {
            assert_eq!(pem_to_der(bad, &mut out), Err(Error::BadCa));
            tried += 1;
        }
        crate::hostile_inputs("BLE/TLS inputs", tried, "firmware-tls pem::tests::rejects_malformed");
    }
}
