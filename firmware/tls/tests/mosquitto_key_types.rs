//! Brokers with other key types. RSA-2048 (the usual `openssl req -newkey rsa:2048` setup from
//! mosquitto's documentation): with the `rsa` feature the device connects; without it, an RSA CA
//! is refused when it is loaded, with a clear error, instead of failing every handshake later.
//! P-384 (the `p384` feature, on by default): connects.

mod support;

use std::path::Path;
use std::process::Command;

use firmware_tls::{Error, TrustAnchor};
use support::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An RSA-2048 CA and a server certificate for localhost/127.0.0.1 it signed (sha256WithRSA).
/// Returns (CA DER, server certificate).
fn rsa_pki(dir: &Path) -> (Vec<u8>, ServerCert) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("ext");
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa-ca.key", "-out", "rsa-ca.crt", "-days", "30", "-subj", "/CN=RSA test CA"]);
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa-server.key", "-out", "rsa-server.csr", "-subj", "/CN=localhost"]);
    openssl(dir, &[
        "x509", "-req", "-in", "rsa-server.csr", "-CA", "rsa-ca.crt", "-CAkey", "rsa-ca.key", "-CAcreateserial",
        "-out", "rsa-server.crt", "-days", "30", "-sha256", "-extfile", "san.ext",
    ]);
    openssl(dir, &["x509", "-in", "rsa-ca.crt", "-outform", "DER", "-out", "rsa-ca.der"]);
    let ca_der = std::fs::read(dir.join("rsa-ca.der")).expect("ca der");
    (ca_der, ServerCert { cert: dir.join("rsa-server.crt"), key: dir.join("rsa-server.key") })
}

#[cfg(not(feature = "rsa"))]
#[test]
fn an_rsa_ca_is_refused_when_loaded_without_the_rsa_feature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca_der, _) = rsa_pki(dir.path());
    assert_eq!(TrustAnchor::from_der(&ca_der).map(|_| ()), Err(Error::BadCa));
}

#[cfg(feature = "rsa")]
#[tokio::test]
async fn rsa_broker_connects_with_the_rsa_feature() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use firmware_tls::{Buffers, Options};
    use std::net::Ipv4Addr;
    use tokio::net::TcpStream;

    let mut pki = Pki::generate();
    let (rsa_ca, rsa_server) = rsa_pki(pki.dir.path());
    pki.good = rsa_server;
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);

    let mut bufs = Box::new(Buffers::<{ firmware_tls::RECORD_BUFFER_MAX }, 4096>::new());
    for (ca, want) in [(&pki.ca_der, Err(Error::UnknownIssuer)), (&rsa_ca, Ok(()))] {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, broker.good_port)).await.expect("tcp");
        let options = Options {
            ca: TrustAnchor::from_der(ca).expect("CA loads"),
            server_name: "localhost",
            now_unix_s: now_unix(),
            now_is_lower_bound: false,
            max_fragment_length: None,
        };
        let result = tokio::time::timeout(STEP, bufs.connect(FromTokio::new(tcp), &options, rand_core::OsRng))
            .await
            .expect("handshake timed out");
        match (result, want) {
            (Ok(stream), Ok(())) => {
                let mut device = Mqtt::new(stream);
                assert_eq!(device.connect(DEVICE, DEVICE_USER, &password).await, Received::ConnAck(0));
                let pid = device.publish_qos1(&format!("{PREFIX}/{DEVICE}/state"), "{}").await;
                assert_eq!(device.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
            }
            (Err(e), Err(w)) => assert_eq!(e, w),
            (got, want) => panic!("got {:?}, want {want:?}", got.map(|_| ())),
        }
    }
}

/// A broker whose CA and certificate use NIST P-384 (ECDSA with SHA-384 signatures, and a P-384
/// CertificateVerify in the handshake).
#[cfg(feature = "p384")]
#[tokio::test]
async fn p384_broker_connects() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use firmware_tls::{Buffers, Options};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PKCS_ECDSA_P384_SHA384};
    use std::net::Ipv4Addr;
    use tokio::net::TcpStream;

    let mut pki = Pki::generate();
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("key")).expect("ca");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params").signed_by(&key, &ca).expect("leaf");
    let dir = pki.dir.path().to_path_buf();
    std::fs::write(dir.join("p384.crt"), leaf.pem()).expect("write");
    std::fs::write(dir.join("p384.key"), key.serialize_pem()).expect("write");
    pki.good = ServerCert { cert: dir.join("p384.crt"), key: dir.join("p384.key") };
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);

    let mut bufs = Box::new(Buffers::<{ firmware_tls::RECORD_BUFFER_MAX }, 4096>::new());
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, broker.good_port)).await.expect("tcp");
    let options = Options {
        ca: TrustAnchor::from_der(ca.der()).expect("P-384 CA loads"),
        server_name: "localhost",
        now_unix_s: now_unix(),
        now_is_lower_bound: false,
        max_fragment_length: None,
    };
    let stream = tokio::time::timeout(STEP, bufs.connect(FromTokio::new(tcp), &options, rand_core::OsRng))
        .await
        .expect("handshake timed out")
        .expect("P-384 handshake");
    let mut device = Mqtt::new(stream);
    assert_eq!(device.connect(DEVICE, DEVICE_USER, &password).await, Received::ConnAck(0));
}
