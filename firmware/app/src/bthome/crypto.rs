//! BTHome v2 encryption: AES-128-CCM with a 4-byte MIC and no associated data.
//!
//! Nonce (13 bytes) = device address (6, most significant byte first) ‖ UUID 0xFCD2 little-endian
//! (`D2 FC`) ‖ device info byte ‖ counter (4, little-endian). The counter is also sent in clear
//! after the ciphertext, followed by the MIC.

use aes::Aes128;
use ccm::aead::{AeadInOut, KeyInit};
use ccm::consts::{U4, U13};
use ccm::Ccm;
use core::fmt;

use super::config::BindKey;

type BthomeCcm = Ccm<Aes128, U4, U13>;

/// An AES-CCM cipher keyed with the bind key. `Debug` never shows key material.
#[derive(Clone)]
pub(crate) struct Cipher(BthomeCcm);

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(..)")
    }
}

/// The CCM implementation refused the input (it cannot for BTHome sizes; kept as an error
/// rather than a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CryptoError;

pub(crate) fn nonce(address: &[u8; 6], device_info: u8, counter: u32) -> [u8; 13] {
    let [a0, a1, a2, a3, a4, a5] = *address;
    let [c0, c1, c2, c3] = counter.to_le_bytes();
    [a0, a1, a2, a3, a4, a5, 0xD2, 0xFC, device_info, c0, c1, c2, c3]
}

impl Cipher {
    pub(crate) fn new(key: &BindKey) -> Cipher {
        Cipher(BthomeCcm::new(&key.0.into()))
    }

    /// Encrypts `buf` in place and returns the MIC.
    pub(crate) fn encrypt(
        &self,
        address: &[u8; 6],
        device_info: u8,
        counter: u32,
        buf: &mut [u8],
    ) -> Result<[u8; 4], CryptoError> {
        let nonce = nonce(address, device_info, counter).into();
        let tag = self.0.encrypt_inout_detached(&nonce, &[], buf.into()).map_err(|_| CryptoError)?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place if `mic` matches.
    pub(crate) fn decrypt(
        &self,
        address: &[u8; 6],
        device_info: u8,
        counter: u32,
        buf: &mut [u8],
        mic: [u8; 4],
    ) -> Result<(), CryptoError> {
        let nonce = nonce(address, device_info, counter).into();
        self.0.decrypt_inout_detached(&nonce, &[], buf.into(), &mic.into()).map_err(|_| CryptoError)
    }
}
