//! The certificate verifier plugged into embedded-tls: chain to one configured CA, validity dates
//! against the caller's clock, host name, and the server's CertificateVerify signature.
//!
//! embedded-tls reports every verifier failure as one `InvalidCertificate`; the verifier therefore
//! keeps the precise reason in [`Verifier::failure`] for [`crate::connect`] to return.

use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef, CryptoProvider, CryptoRngCore,
    SignatureScheme, TlsCipherSuite, TlsError as Inner, TlsVerifier,
};
use rand_core::{CryptoRng, RngCore};
use sha2::Digest;

use crate::Error;
use crate::x509::{self, KeyKind, PublicKey, SigError};

/// Longest chain (leaf plus intermediates) followed up to the configured CA.
const MAX_DEPTH: usize = 4;

/// Room for the leaf's public key between the Certificate and CertificateVerify messages: an
/// uncompressed P-384 point, or a PKCS#1 RSA key up to 4096 bits with the `rsa` feature.
#[cfg(not(feature = "rsa"))]
const LEAF_KEY_MAX: usize = 97;
#[cfg(feature = "rsa")]
const LEAF_KEY_MAX: usize = 560;

/// A verifier for one handshake.
pub(crate) struct Verifier<'a> {
    ca: x509::Certificate<'a>,
    host: &'a str,
    now_unix_s: i64,
    /// `now_unix_s` is only a lower bound on the time (see [`crate::Options::now_is_lower_bound`]).
    now_is_lower_bound: bool,
    /// Why verification failed, when it did.
    pub failure: Option<Error>,
    leaf_kind: KeyKind,
    leaf_key: [u8; LEAF_KEY_MAX],
    leaf_key_len: usize,
    transcript: [u8; 48],
    transcript_len: usize,
}

impl<'a> Verifier<'a> {
    pub fn new(ca: x509::Certificate<'a>, host: &'a str, now_unix_s: i64, now_is_lower_bound: bool) -> Self {
        Self {
            ca,
            host,
            now_unix_s,
            now_is_lower_bound,
            failure: None,
            leaf_kind: KeyKind::Other,
            leaf_key: [0; LEAF_KEY_MAX],
            leaf_key_len: 0,
            transcript: [0; 48],
            transcript_len: 0,
        }
    }

    fn fail(&mut self, e: Error) -> Inner {
        self.failure = Some(e);
        Inner::InvalidCertificate
    }

    /// Checks the server's chain; on success the leaf key is kept for CertificateVerify.
    fn check_chain(&mut self, cert: &CertificateRef<'_>) -> Result<(), Error> {
        let mut entries = [&[][..]; 16];
        let mut n = 0;
        for (slot, entry) in entries.iter_mut().zip(cert.entries.iter()) {
            match entry {
                CertificateEntryRef::X509(der) => *slot = der,
                CertificateEntryRef::RawPublicKey(_) => return Err(Error::UnsupportedCertificate),
            }
            n += 1;
        }
        let entries = entries.get(..n).unwrap_or(&[]);
        let leaf_der = entries.first().ok_or(Error::Handshake)?;
        let leaf = x509::parse(leaf_der).ok_or(Error::BadCertificate)?;

        // Trust first: a certificate from an unknown issuer is reported as such, whatever its dates
        // or names say.
        let mut path: [Option<x509::Certificate<'_>>; MAX_DEPTH] = [None; MAX_DEPTH];
        let mut current = leaf;
        let mut trusted = false;
        for slot in path.iter_mut() {
            *slot = Some(current);
            if current.unknown_critical {
                return Err(Error::UnsupportedCertificate);
            }
            if current.issuer == self.ca.subject {
                match x509::verify_cert_signature(&self.ca.key, &current) {
                    Ok(()) => {
                        trusted = true;
                        break;
                    }
                    Err(SigError::Unsupported) => return Err(Error::UnsupportedCertificate),
                    // Same issuer name, different key: some other CA of that name.
                    Err(SigError::Invalid) => return Err(Error::UnknownIssuer),
                }
            }
            let issuer = entries
                .iter()
                .skip(1)
                .filter_map(|der| x509::parse(der))
                .find(|c| c.subject == current.issuer && c.is_ca && c.subject != current.subject);
            match issuer {
                Some(issuer) => match x509::verify_cert_signature(&issuer.key, &current) {
                    Ok(()) => current = issuer,
                    Err(SigError::Unsupported) => return Err(Error::UnsupportedCertificate),
                    Err(SigError::Invalid) => return Err(Error::UnknownIssuer),
                },
                None => return Err(Error::UnknownIssuer),
            }
        }
        if !trusted {
            return Err(Error::UnknownIssuer);
        }

        for c in path.iter().flatten() {
            if self.now_unix_s > c.not_after {
                return Err(Error::Expired);
            }
            if self.now_unix_s < c.not_before && !self.now_is_lower_bound {
                return Err(Error::NotYetValid);
            }
        }

        if !x509::matches_host(&leaf, self.host) {
            return Err(Error::HostnameMismatch);
        }

        self.keep_leaf_key(&leaf.key)
    }

    fn keep_leaf_key(&mut self, key: &PublicKey<'_>) -> Result<(), Error> {
        let slot = self.leaf_key.get_mut(..key.key.len()).ok_or(Error::UnsupportedCertificate)?;
        slot.copy_from_slice(key.key);
        self.leaf_kind = key.kind;
        self.leaf_key_len = key.key.len();
        Ok(())
    }

    fn check_certificate_verify(&self, verify: &CertificateVerifyRef<'_>) -> Result<(), Error> {
        // RFC 8446 4.4.3: 64 spaces, the context string, a zero byte, then the transcript hash.
        const CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\x00";
        let mut msg = [0x20u8; 64 + 34 + 48];
        let transcript = self.transcript.get(..self.transcript_len).ok_or(Error::Handshake)?;
        let len = 64 + CONTEXT.len() + transcript.len();
        msg.get_mut(64..64 + CONTEXT.len()).ok_or(Error::Handshake)?.copy_from_slice(CONTEXT);
        msg.get_mut(64 + CONTEXT.len()..len).ok_or(Error::Handshake)?.copy_from_slice(transcript);
        let msg = msg.get(..len).ok_or(Error::Handshake)?;
        let key = self.leaf_key.get(..self.leaf_key_len).ok_or(Error::Handshake)?;
        let result = match (verify.signature_scheme, self.leaf_kind) {
            (SignatureScheme::EcdsaSecp256r1Sha256, KeyKind::P256) => x509::verify_p256(key, msg, verify.signature, true),
            #[cfg(feature = "p384")]
            (SignatureScheme::EcdsaSecp384r1Sha384, KeyKind::P384) => x509::verify_p384(key, msg, verify.signature, true),
            #[cfg(feature = "rsa")]
            (SignatureScheme::RsaPssRsaeSha256, KeyKind::Rsa) => x509::verify_rsa_pss(key, false, false, msg, verify.signature),
            #[cfg(feature = "rsa")]
            (SignatureScheme::RsaPssRsaeSha384, KeyKind::Rsa) => x509::verify_rsa_pss(key, true, false, msg, verify.signature),
            #[cfg(feature = "rsa")]
            (SignatureScheme::RsaPssRsaeSha512, KeyKind::Rsa) => x509::verify_rsa_pss(key, false, true, msg, verify.signature),
            _ => Err(SigError::Unsupported),
        };
        match result {
            Ok(()) => Ok(()),
            Err(SigError::Unsupported) => Err(Error::UnsupportedCertificate),
            // The server does not hold the key of the certificate it showed.
            Err(SigError::Invalid) => Err(Error::Handshake),
        }
    }
}

impl<CipherSuite: TlsCipherSuite> TlsVerifier<CipherSuite> for Verifier<'_> {
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), Inner> {
        // The host name was given to `Verifier::new` (also for IP addresses, which are not sent as SNI).
        Ok(())
    }

    fn verify_certificate(&mut self, transcript: &CipherSuite::Hash, cert: CertificateRef<'_>) -> Result<(), Inner> {
        if let Err(e) = self.check_chain(&cert) {
            return Err(self.fail(e));
        }
        let hash = transcript.clone().finalize();
        match self.transcript.get_mut(..hash.len()) {
            Some(slot) => {
                slot.copy_from_slice(&hash);
                self.transcript_len = hash.len();
                Ok(())
            }
            None => Err(self.fail(Error::Handshake)),
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), Inner> {
        if self.leaf_key_len == 0 {
            return Err(self.fail(Error::Handshake));
        }
        match self.check_certificate_verify(&verify) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// embedded-tls's crypto provider: our RNG and our verifier.
pub(crate) struct Provider<'v, 'a, R> {
    pub rng: R,
    pub verifier: &'v mut Verifier<'a>,
}

impl<R: CryptoRng + RngCore> CryptoProvider for Provider<'_, '_, R> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, Inner> {
        Ok(&mut *self.verifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    fn chain() -> (Vec<u8>, Vec<u8>) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca");
        let leaf = CertificateParams::new(vec!["broker.lan".to_string(), "10.0.0.2".to_string()])
            .expect("params")
            .signed_by(&KeyPair::generate().expect("key"), &ca)
            .expect("leaf");
        (ca.der().to_vec(), leaf.der().to_vec())
    }

    fn check(ca: &[u8], leaf: &[u8], host: &str) -> Result<(), Error> {
        check_at(ca, leaf, host, 1_800_000_000, false)
    }

    fn check_at(ca: &[u8], leaf: &[u8], host: &str, now: i64, lower_bound: bool) -> Result<(), Error> {
        let ca = x509::parse(ca).ok_or(Error::BadCa)?;
        let mut v = Verifier::new(ca, host, now, lower_bound);
        let mut cert = CertificateRef::with_context(&[]);
        cert.add(CertificateEntryRef::X509(leaf)).map_err(|_| Error::Handshake)?;
        v.check_chain(&cert)
    }

    #[test]
    fn names_and_addresses() {
        let (ca, leaf) = chain();
        assert_eq!(check(&ca, &leaf, "broker.lan"), Ok(()));
        assert_eq!(check(&ca, &leaf, "BROKER.LAN."), Ok(()));
        assert_eq!(check(&ca, &leaf, "10.0.0.2"), Ok(()));
        assert_eq!(check(&ca, &leaf, "10.0.0.3"), Err(Error::HostnameMismatch));
        assert_eq!(check(&ca, &leaf, "other.lan"), Err(Error::HostnameMismatch));
        assert_eq!(check(&leaf, &leaf, "broker.lan"), Err(Error::UnknownIssuer));
    }

    #[test]
    fn a_clock_that_is_only_a_lower_bound_still_catches_expiry() {
        let (ca, leaf) = chain();
        let leaf_cert = x509::parse(&leaf).expect("leaf");
        let (from, to) = (leaf_cert.not_before, leaf_cert.not_after);
        let before = from - 86_400;
        assert_eq!(check_at(&ca, &leaf, "broker.lan", before, false), Err(Error::NotYetValid));
        // A device that knows only "at least its build time" cannot call a newer certificate early.
        assert_eq!(check_at(&ca, &leaf, "broker.lan", before, true), Ok(()));
        assert_eq!(check_at(&ca, &leaf, "broker.lan", to + 1, true), Err(Error::Expired));
        assert_eq!(check_at(&ca, &leaf, "broker.lan", to + 1, false), Err(Error::Expired));
    }

    /// Whatever the broker sends, the verifier answers with an error value: every truncation of a
    /// real certificate and a bit flip in each of its bytes (a different bit per byte); none
    /// panics, and none passes.
    #[test]
    fn mangled_certificates_never_panic_or_pass() {
        let (ca, leaf) = chain();
        let mut tried = 0u32;
        for len in 0..leaf.len() {
            assert!(check(&ca, &leaf[..len], "broker.lan").is_err(), "truncated to {len}");
            tried += 1;
        }
        let mut bad = leaf.clone();
        for i in 0..leaf.len() {
            let bit = i % 8;
            bad[i] ^= 1 << bit;
            assert!(check(&ca, &bad, "broker.lan").is_err(), "flip at byte {i} bit {bit} passed");
            bad[i] ^= 1 << bit;
            tried += 1;
        }
        assert!(tried > 600, "{tried}");
        crate::hostile_inputs("BLE/TLS inputs", tried as usize, "firmware-tls verify::tests::mangled_certificates_never_panic_or_pass");
    }
}
