//! X.509 certificates: parsing (DER, borrowed), validity dates, names, and signature checks.
//!
//! Only what verifying a broker's chain against one configured CA needs. Malformed input gives
//! `None` (never a panic).

use crate::der::{self, Reader};

const OID_ECDSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_RSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
const OID_RSA_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C];
const OID_RSA_SHA512: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
/// Extensions that may be marked critical without us rejecting the certificate: key usage, extended
/// key usage, subject/authority key identifiers (plus the two above, which we act on).
const OID_UNDERSTOOD: &[&[u8]] = &[
    &[0x55, 0x1D, 0x0F],
    &[0x55, 0x1D, 0x25],
    &[0x55, 0x1D, 0x0E],
    &[0x55, 0x1D, 0x23],
    OID_SUBJECT_ALT_NAME,
    OID_BASIC_CONSTRAINTS,
];

/// The kind of a subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// NIST P-256; the key is an uncompressed or compressed SEC1 point.
    P256,
    /// NIST P-384; SEC1 point.
    P384,
    /// RSA; the key is a PKCS#1 `RSAPublicKey`.
    Rsa,
    /// Anything else (Ed25519, DSA, ...): not supported.
    Other,
}

/// The algorithm a certificate was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    EcdsaSha256,
    EcdsaSha384,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    Other,
}

/// A subject public key, borrowed from its certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicKey<'a> {
    pub kind: KeyKind,
    pub key: &'a [u8],
}

/// A parsed certificate, borrowing from its DER encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Certificate<'a> {
    /// The whole `tbsCertificate` encoding: what the issuer signed.
    pub tbs: &'a [u8],
    pub sig_alg: SigAlg,
    pub signature: &'a [u8],
    /// The issuer and subject `Name`s, whole encodings (compared byte for byte).
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    /// Validity, seconds since the Unix epoch (UTC).
    pub not_before: i64,
    pub not_after: i64,
    pub key: PublicKey<'a>,
    /// The contents of the subjectAltName `GeneralNames`, if the extension is present.
    pub san: Option<&'a [u8]>,
    /// basicConstraints cA = TRUE.
    pub is_ca: bool,
    /// A critical extension we do not understand is present: RFC 5280 says reject.
    pub unknown_critical: bool,
}

/// Parses one DER certificate. `None` if it is not a well-formed X.509 v1..v3 certificate.
pub(crate) fn parse(der_bytes: &[u8]) -> Option<Certificate<'_>> {
    let mut outer = Reader::new(der_bytes);
    let cert = outer.expect(der::SEQUENCE)?;
    if !outer.is_empty() {
        return None;
    }
    let mut c = Reader::new(cert.value);
    let tbs = c.expect(der::SEQUENCE)?;
    let sig_alg_tlv = c.expect(der::SEQUENCE)?;
    let signature = der::bit_string_bytes(c.expect(der::BIT_STRING)?.value)?;
    if !c.is_empty() {
        return None;
    }

    let mut t = Reader::new(tbs.value);
    let _version = t.optional(0xA0);
    t.expect(der::INTEGER)?;
    let inner_sig_alg = t.expect(der::SEQUENCE)?;
    // RFC 5280 4.1.1.2: the signed and the outer algorithm must be identical.
    if inner_sig_alg.raw != sig_alg_tlv.raw {
        return None;
    }
    let issuer = t.expect(der::SEQUENCE)?;
    let validity = t.expect(der::SEQUENCE)?;
    let subject = t.expect(der::SEQUENCE)?;
    let spki = t.expect(der::SEQUENCE)?;
    let _issuer_uid = t.optional(0x81);
    let _subject_uid = t.optional(0x82);
    let extensions = t.optional(0xA3);
    if !t.is_empty() {
        return None;
    }

    let mut v = Reader::new(validity.value);
    let not_before = parse_time(v.any()?)?;
    let not_after = parse_time(v.any()?)?;
    if !v.is_empty() {
        return None;
    }

    let mut cert = Certificate {
        tbs: tbs.raw,
        sig_alg: sig_alg(sig_alg_tlv.value)?,
        signature,
        issuer: issuer.raw,
        subject: subject.raw,
        not_before,
        not_after,
        key: public_key(spki.value)?,
        san: None,
        is_ca: false,
        unknown_critical: false,
    };
    if let Some(ext) = extensions {
        parse_extensions(ext.value, &mut cert)?;
    }
    Some(cert)
}

fn sig_alg(alg_id: &[u8]) -> Option<SigAlg> {
    let mut r = Reader::new(alg_id);
    let oid = r.expect(der::OID)?.value;
    Some(match oid {
        o if o == OID_ECDSA_SHA256 => SigAlg::EcdsaSha256,
        o if o == OID_ECDSA_SHA384 => SigAlg::EcdsaSha384,
        o if o == OID_RSA_SHA256 => SigAlg::RsaPkcs1Sha256,
        o if o == OID_RSA_SHA384 => SigAlg::RsaPkcs1Sha384,
        o if o == OID_RSA_SHA512 => SigAlg::RsaPkcs1Sha512,
        _ => SigAlg::Other,
    })
}

fn public_key(spki: &[u8]) -> Option<PublicKey<'_>> {
    let mut r = Reader::new(spki);
    let alg = r.expect(der::SEQUENCE)?;
    let key = der::bit_string_bytes(r.expect(der::BIT_STRING)?.value)?;
    let mut a = Reader::new(alg.value);
    let oid = a.expect(der::OID)?.value;
    let kind = if oid == OID_EC_PUBLIC_KEY {
        match a.any() {
            Some(curve) if curve.tag == der::OID && curve.value == OID_P256 => KeyKind::P256,
            Some(curve) if curve.tag == der::OID && curve.value == OID_P384 => KeyKind::P384,
            _ => KeyKind::Other,
        }
    } else if oid == OID_RSA {
        KeyKind::Rsa
    } else {
        KeyKind::Other
    };
    Some(PublicKey { kind, key })
}

fn parse_extensions<'a>(explicit: &'a [u8], cert: &mut Certificate<'a>) -> Option<()> {
    let mut outer = Reader::new(explicit);
    let list = outer.expect(der::SEQUENCE)?;
    let mut exts = Reader::new(list.value);
    while !exts.is_empty() {
        let ext = exts.expect(der::SEQUENCE)?;
        let mut e = Reader::new(ext.value);
        let oid = e.expect(der::OID)?.value;
        let critical = match e.optional(der::BOOLEAN) {
            Some(b) => b.value != [0],
            None => false,
        };
        let value = e.expect(der::OCTET_STRING)?.value;
        if oid == OID_SUBJECT_ALT_NAME {
            let mut v = Reader::new(value);
            cert.san = Some(v.expect(der::SEQUENCE)?.value);
        } else if oid == OID_BASIC_CONSTRAINTS {
            let mut v = Reader::new(value);
            let bc = v.expect(der::SEQUENCE)?;
            let mut b = Reader::new(bc.value);
            cert.is_ca = matches!(b.optional(der::BOOLEAN), Some(flag) if flag.value != [0]);
        } else if critical && !OID_UNDERSTOOD.contains(&oid) {
            cert.unknown_critical = true;
        }
    }
    Some(())
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) to Unix seconds.
fn parse_time(tlv: der::Tlv<'_>) -> Option<i64> {
    let (year, rest) = match tlv.tag {
        der::UTC_TIME => {
            let (yy, rest) = tlv.value.split_at_checked(2)?;
            let yy = digits(yy)?;
            // RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
        }
        der::GENERALIZED_TIME => {
            let (yyyy, rest) = tlv.value.split_at_checked(4)?;
            (digits(yyyy)?, rest)
        }
        _ => return None,
    };
    if rest.len() != 11 || rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some(n)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count whole years in 400-year eras starting in March, so the leap day ends a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Does `cert` name the host `name` (a DNS name or an IP address literal)?
///
/// Subject alternative names decide when present (DNS names, with a wildcard allowed as the whole
/// leftmost label; IP addresses byte for byte). Without a subjectAltName extension, the subject
/// common name is compared as a DNS name, as RFC 6125 permits for older certificates.
pub(crate) fn matches_host(cert: &Certificate<'_>, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut ip = [0u8; 16];
    let ip: Option<&[u8]> = if let Ok(v4) = name.parse::<core::net::Ipv4Addr>() {
        ip[..4].copy_from_slice(&v4.octets());
        ip.get(..4)
    } else if let Ok(v6) = name.parse::<core::net::Ipv6Addr>() {
        ip = v6.octets();
        Some(&ip[..])
    } else {
        None
    };
    match cert.san {
        Some(san) => {
            let mut r = Reader::new(san);
            while let Some(general_name) = r.any() {
                let hit = match (general_name.tag, ip) {
                    (0x82, None) => dns_matches(general_name.value, name.as_bytes()),
                    (0x87, Some(ip)) => general_name.value == ip,
                    _ => false,
                };
                if hit {
                    return true;
                }
            }
            false
        }
        None => ip.is_none() && common_name(cert.subject).is_some_and(|cn| dns_matches(cn, name.as_bytes())),
    }
}

/// The first commonName attribute of a `Name`.
fn common_name(name: &[u8]) -> Option<&[u8]> {
    let mut outer = Reader::new(name);
    let seq = outer.expect(der::SEQUENCE)?;
    let mut rdns = Reader::new(seq.value);
    while !rdns.is_empty() {
        let rdn = rdns.expect(der::SET)?;
        let mut atvs = Reader::new(rdn.value);
        while !atvs.is_empty() {
            let atv = atvs.expect(der::SEQUENCE)?;
            let mut a = Reader::new(atv.value);
            if a.expect(der::OID)?.value == OID_COMMON_NAME {
                return Some(a.any()?.value);
            }
        }
    }
    None
}

fn dns_matches(pattern: &[u8], host: &[u8]) -> bool {
    let pattern = pattern.strip_suffix(b".").unwrap_or(pattern);
    if host.is_empty() || !host.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.') {
        return false;
    }
    if let Some(suffix) = pattern.strip_prefix(b"*.") {
        // The wildcard stands for exactly one whole label, and never for a public suffix alone.
        if suffix.contains(&b'*') || !suffix.contains(&b'.') {
            return false;
        }
        return match host.iter().position(|&b| b == b'.') {
            Some(dot) if dot > 0 => host.get(dot + 1..).is_some_and(|rest| rest.eq_ignore_ascii_case(suffix)),
            _ => false,
        };
    }
    !pattern.contains(&b'*') && pattern.eq_ignore_ascii_case(host)
}

/// Why a signature check did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigError {
    /// The key type or algorithm is not one this build supports.
    Unsupported,
    /// The signature does not verify (or the key or signature is malformed).
    Invalid,
}

/// Verifies that `issuer_key` signed `cert`.
pub(crate) fn verify_cert_signature(issuer_key: &PublicKey<'_>, cert: &Certificate<'_>) -> Result<(), SigError> {
    match (issuer_key.kind, cert.sig_alg) {
        (KeyKind::P256, SigAlg::EcdsaSha256) => verify_p256(issuer_key.key, cert.tbs, cert.signature, true),
        #[cfg(feature = "p384")]
        (KeyKind::P384, SigAlg::EcdsaSha384) => verify_p384(issuer_key.key, cert.tbs, cert.signature, true),
        (KeyKind::Rsa, SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPkcs1Sha384 | SigAlg::RsaPkcs1Sha512) => {
            rsa_pkcs1(issuer_key.key, cert.sig_alg, cert.tbs, cert.signature)
        }
        _ => Err(SigError::Unsupported),
    }
}

pub(crate) fn verify_p256(key: &[u8], msg: &[u8], sig: &[u8], der_sig: bool) -> Result<(), SigError> {
    use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier};
    let key = VerifyingKey::from_sec1_bytes(key).map_err(|_| SigError::Invalid)?;
    let sig = if der_sig { Signature::from_der(sig) } else { Signature::from_slice(sig) };
    let sig = sig.map_err(|_| SigError::Invalid)?;
    key.verify(msg, &sig).map_err(|_| SigError::Invalid)
}

#[cfg(feature = "p384")]
pub(crate) fn verify_p384(key: &[u8], msg: &[u8], sig: &[u8], der_sig: bool) -> Result<(), SigError> {
    use p384::ecdsa::{Signature, VerifyingKey, signature::Verifier};
    let key = VerifyingKey::from_sec1_bytes(key).map_err(|_| SigError::Invalid)?;
    let sig = if der_sig { Signature::from_der(sig) } else { Signature::from_slice(sig) };
    let sig = sig.map_err(|_| SigError::Invalid)?;
    key.verify(msg, &sig).map_err(|_| SigError::Invalid)
}

#[cfg(feature = "rsa")]
fn rsa_pkcs1(key: &[u8], alg: SigAlg, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let key = rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|_| SigError::Invalid)?;
    let sig = Signature::try_from(sig).map_err(|_| SigError::Invalid)?;
    let ok = match alg {
        SigAlg::RsaPkcs1Sha256 => VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig).is_ok(),
        SigAlg::RsaPkcs1Sha384 => VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig).is_ok(),
        SigAlg::RsaPkcs1Sha512 => VerifyingKey::<sha2::Sha512>::new(key).verify(msg, &sig).is_ok(),
        _ => return Err(SigError::Unsupported),
    };
    if ok { Ok(()) } else { Err(SigError::Invalid) }
}

#[cfg(not(feature = "rsa"))]
fn rsa_pkcs1(_key: &[u8], _alg: SigAlg, _msg: &[u8], _sig: &[u8]) -> Result<(), SigError> {
    Err(SigError::Unsupported)
}

#[cfg(feature = "rsa")]
pub(crate) fn verify_rsa_pss(key: &[u8], sha384: bool, sha512: bool, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pss::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let key = rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|_| SigError::Invalid)?;
    let sig = Signature::try_from(sig).map_err(|_| SigError::Invalid)?;
    let ok = if sha512 {
        VerifyingKey::<sha2::Sha512>::new(key).verify(msg, &sig).is_ok()
    } else if sha384 {
        VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig).is_ok()
    } else {
        VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig).is_ok()
    };
    if ok { Ok(()) } else { Err(SigError::Invalid) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(tag: u8, s: &str) -> Option<i64> {
        parse_time(der::Tlv { tag, value: s.as_bytes(), raw: &[] })
    }

    #[test]
    fn times_convert_to_unix_seconds() {
        assert_eq!(time(der::UTC_TIME, "700101000000Z"), Some(0));
        // `date -u -d 2026-11-25T17:17:46Z +%s`
        assert_eq!(time(der::UTC_TIME, "261125171746Z"), Some(1_795_627_066));
        assert_eq!(time(der::GENERALIZED_TIME, "20261125171746Z"), Some(1_795_627_066));
        assert_eq!(time(der::UTC_TIME, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(der::UTC_TIME, "500101000000Z"), Some(-631_152_000));
        assert_eq!(time(der::GENERALIZED_TIME, "20240229120000Z"), Some(1_709_208_000));
        assert_eq!(time(der::GENERALIZED_TIME, "99991231235959Z"), Some(253_402_300_799));
    }

    #[test]
    fn bad_times_are_rejected() {
        let mut tried = 0;
        for (tag, s) in [
            (der::UTC_TIME, "261125171746"),
            (der::UTC_TIME, "2611251717Z"),
            (der::UTC_TIME, "261325171746Z"),
            (der::UTC_TIME, "230229000000Z"),
            (der::UTC_TIME, "26112517174aZ"),
            (der::GENERALIZED_TIME, "20261125171746.5Z"),
            (der::OCTET_STRING, "261125171746Z"),
        ] {
            assert_eq!(time(tag, s), None, "{s}");
            tried += 1;
        }
        crate::hostile_inputs("BLE/TLS inputs", tried, "firmware-tls x509::tests::bad_times_are_rejected");
    }

    #[test]
    fn dns_wildcards_cover_one_label() {
        assert!(dns_matches(b"broker.lan", b"BROKER.lan"));
        assert!(dns_matches(b"*.home.lan", b"mqtt.home.lan"));
        assert!(!dns_matches(b"*.home.lan", b"a.mqtt.home.lan"));
        assert!(!dns_matches(b"*.home.lan", b"home.lan"));
        assert!(!dns_matches(b"*.lan", b"mqtt.lan"));
        assert!(!dns_matches(b"m*.home.lan", b"mqtt.home.lan"));
        assert!(!dns_matches(b"broker.lan", b"broker.lan.evil"));
        assert!(!dns_matches(b"broker.lan", b""));
    }
}
