//! firmware-tls against a real mosquitto (TLS 1.3, password file, ACL), with the firmware's own
//! MQTT codec on top: the right CA and password connect and publish; a wrong password, a wrong
//! CA, an expired certificate, a certificate for another host and topics outside the ACL each fail
//! in their own, recognisable way.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use firmware_tls::{Buffers, Error, MaxFragmentLength, Options, TlsStream, TrustAnchor};
use support::*;
use tokio::net::TcpStream;

type Bufs = Buffers<{ firmware_tls::RECORD_BUFFER_MAX }, 4096>;

async fn tls<'b>(
    bufs: &'b mut Bufs,
    port: u16,
    ca_der: &[u8],
    server_name: &str,
    now_unix_s: u64,
) -> Result<TlsStream<'b, FromTokio<TcpStream>>, Error> {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.expect("tcp connect");
    let options = Options {
        ca: TrustAnchor::from_der(ca_der).expect("test CA is valid"),
        server_name,
        now_unix_s,
        now_is_lower_bound: false,
        max_fragment_length: None,
    };
    tokio::time::timeout(STEP, bufs.connect(FromTokio::new(tcp), &options, rand_core::OsRng))
        .await
        .expect("handshake timed out")
}

fn setup() -> (Pki, String, Mosquitto) {
    let pki = Pki::generate();
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);
    (pki, password, broker)
}

#[tokio::test]
async fn right_ca_and_password_connect_and_publish() {
    let (pki, password, broker) = setup();
    let mut observer = observer(&broker, &format!("{PREFIX}/#")).await;

    for (port, name) in [(broker.good_port, "localhost"), (broker.good_port, "127.0.0.1"), (broker.chained_port, "localhost")] {
        let mut bufs = Box::new(Bufs::new());
        let stream = tls(&mut bufs, port, &pki.ca_der, name, now_unix()).await.expect("handshake");
        let mut device = Mqtt::new(stream);
        assert_eq!(device.connect(DEVICE, DEVICE_USER, &password).await, Received::ConnAck(0), "{name}");

        let topic = format!("{PREFIX}/{DEVICE}/state");
        let body = format!("{{\"via\":\"{name}\"}}");
        let pid = device.publish_qos1(&topic, &body).await;
        assert_eq!(device.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
        assert_eq!(
            observer.expect(STEP, |r| matches!(r, Received::Publish(..))).await,
            Some(Received::Publish(topic, body.into_bytes())),
            "the observer must see what the device published over TLS"
        );

        // Home Assistant's birth topic is readable.
        let pid = device.subscribe("homeassistant/status").await;
        assert_eq!(device.expect(STEP, |r| matches!(r, Received::SubAck(..))).await, Some(Received::SubAck(pid, 1)));

        device.io.close().await.map_err(|(_, e)| e).expect("close_notify");
    }
}

#[tokio::test]
async fn wrong_password_is_refused_after_a_good_handshake() {
    let (pki, password, broker) = setup();
    let mut bufs = Box::new(Bufs::new());
    let stream = tls(&mut bufs, broker.good_port, &pki.ca_der, "localhost", now_unix()).await.expect("handshake");
    let mut device = Mqtt::new(stream);
    let wrong = format!("{password}x");
    // 3.1.1: 4 = bad user name or password, 5 = not authorised; mosquitto answers 5.
    assert_eq!(device.connect(DEVICE, DEVICE_USER, &wrong).await, Received::ConnAck(5));
    assert_eq!(device.next(STEP).await, Some(Received::Closed), "the broker closes after refusing");

    let mut bufs = Box::new(Bufs::new());
    let stream = tls(&mut bufs, broker.good_port, &pki.ca_der, "localhost", now_unix()).await.expect("handshake");
    let mut device = Mqtt::new(stream);
    assert_eq!(device.connect(DEVICE, "nobody", &password).await, Received::ConnAck(5), "unknown user");
}

#[tokio::test]
async fn certificate_failures_are_told_apart() {
    let (pki, _password, broker) = setup();
    let now = now_unix();
    let cases: [(&str, u16, &[u8], &str, Error); 8] = [
        ("intermediate not sent", broker.chain_incomplete_port, &pki.ca_der, "localhost", Error::UnknownIssuer),
        ("chain to another CA", broker.chained_port, &pki.other_ca_der, "localhost", Error::UnknownIssuer),
        ("device trusts another CA", broker.good_port, &pki.other_ca_der, "localhost", Error::UnknownIssuer),
        ("broker cert from another CA", broker.foreign_port, &pki.ca_der, "localhost", Error::UnknownIssuer),
        ("expired broker cert", broker.expired_port, &pki.ca_der, "localhost", Error::Expired),
        ("expired broker cert, by IP", broker.expired_port, &pki.ca_der, "127.0.0.1", Error::Expired),
        ("cert for another host", broker.wrong_host_port, &pki.ca_der, "localhost", Error::HostnameMismatch),
        ("good cert, other name", broker.good_port, &pki.ca_der, "mqtt.localdomain", Error::HostnameMismatch),
    ];
    for (what, port, ca, name, want) in cases {
        let mut bufs = Box::new(Bufs::new());
        let got = tls(&mut bufs, port, ca, name, now).await.map(|_| ());
        assert_eq!(got, Err(want), "{what}");
    }
    // Trust is decided before dates: an expired certificate from an unknown CA is an unknown issuer.
    let mut bufs = Box::new(Bufs::new());
    let got = tls(&mut bufs, broker.expired_port, &pki.other_ca_der, "localhost", now).await.map(|_| ());
    assert_eq!(got, Err(Error::UnknownIssuer));

    // The dates are checked against the clock the caller passes, both ways.
    let mut bufs = Box::new(Bufs::new());
    let got = tls(&mut bufs, broker.good_port, &pki.ca_der, "localhost", now + 40 * 86_400).await.map(|_| ());
    assert_eq!(got, Err(Error::Expired), "the good cert 40 days on");
    let mut bufs = Box::new(Bufs::new());
    let got = tls(&mut bufs, broker.good_port, &pki.ca_der, "localhost", now - 2 * 86_400).await.map(|_| ());
    assert_eq!(got, Err(Error::NotYetValid), "the good cert 2 days back");
    let mut bufs = Box::new(Bufs::new());
    let got = tls(&mut bufs, broker.expired_port, &pki.ca_der, "localhost", now - 60 * 86_400).await.map(|_| ());
    assert!(got.is_ok(), "the expired cert 60 days back was valid: {got:?}");

    // The broker saw a TLS failure, not a client.
    let log = broker.log_text();
    assert!(!log.contains(&format!("as {DEVICE}")), "no failed case may reach MQTT:\n{log}");
}

#[tokio::test]
async fn topics_outside_the_acl_are_denied() {
    let (pki, password, broker) = setup();
    let mut observer = observer(&broker, "#").await;
    let mut bufs = Box::new(Bufs::new());
    let stream = tls(&mut bufs, broker.good_port, &pki.ca_der, "localhost", now_unix()).await.expect("handshake");
    let mut device = Mqtt::new(stream);
    assert_eq!(device.connect(DEVICE, DEVICE_USER, &password).await, Received::ConnAck(0));

    // MQTT 3.1.1 has no negative PUBACK or SUBACK for ACL denials in mosquitto 2.0: it
    // acknowledges and drops. The signs are the missing deliveries and the broker's log.
    for topic in [format!("{PREFIX}/other-device/state"), "homeassistant/sensor/x/config".to_string()] {
        let pid = device.publish_qos1(&topic, "{}").await;
        assert_eq!(device.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
    }
    let allowed = format!("{PREFIX}/{DEVICE}/state");
    let pid = device.publish_qos1(&allowed, "ok").await;
    assert_eq!(device.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
    // Messages arrive in order, so the allowed one coming first means the others were dropped.
    assert_eq!(
        observer.expect(STEP, |r| matches!(r, Received::Publish(..))).await,
        Some(Received::Publish(allowed, b"ok".to_vec()))
    );
    assert_eq!(observer.next(Duration::from_millis(300)).await, None);

    // Reading outside the ACL: the SUBACK grants it, but nothing is delivered; the device's own
    // topics are (and an echo of its own message is how a 3.1.1 client can tell).
    let pid = device.subscribe(&format!("{PREFIX}/other-device/#")).await;
    assert!(matches!(device.expect(STEP, |r| matches!(r, Received::SubAck(..))).await, Some(Received::SubAck(p, _)) if p == pid));
    let pid = device.subscribe(&format!("{PREFIX}/{DEVICE}/echo")).await;
    assert_eq!(device.expect(STEP, |r| matches!(r, Received::SubAck(..))).await, Some(Received::SubAck(pid, 1)));
    let pid = observer.publish_qos1(&format!("{PREFIX}/other-device/cmd"), "secret-of-another-device").await;
    assert_eq!(observer.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
    let echo = format!("{PREFIX}/{DEVICE}/echo");
    device.publish_qos1(&echo, "ping").await;
    let mut got = Vec::new();
    while let Some(r) = device.next(Duration::from_millis(500)).await {
        if let Received::Publish(t, _) = r {
            got.push(t);
        }
    }
    assert_eq!(got, vec![echo], "only the device's own topic is delivered");

    let log = broker.log_text();
    assert!(log.contains(&format!("Denied PUBLISH from {DEVICE}")), "{log}");
}

#[tokio::test]
async fn small_records_with_max_fragment_length() {
    // 2 KiB records: the device's read buffer shrinks from 16.6 KiB to 2.3 KiB.
    let (pki, password, broker) = setup();
    let mut read = vec![0u8; 2048 + 256];
    let mut write = vec![0u8; 2048 + 256];
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, broker.good_port)).await.expect("tcp");
    let options = Options {
        ca: TrustAnchor::from_der(&pki.ca_der).expect("ca"),
        server_name: "localhost",
        now_unix_s: now_unix(),
        now_is_lower_bound: false,
        max_fragment_length: Some(MaxFragmentLength::Bits11),
    };
    let stream = tokio::time::timeout(
        STEP,
        firmware_tls::connect(FromTokio::new(tcp), &mut read, &mut write, &options, rand_core::OsRng),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake with a 2 KiB fragment length");
    let mut observer = observer(&broker, &format!("{PREFIX}/#")).await;
    let mut device = Mqtt::new(stream);
    assert_eq!(device.connect(DEVICE, DEVICE_USER, &password).await, Received::ConnAck(0));
    let topic = format!("{PREFIX}/{DEVICE}/telegram");
    let big = "x".repeat(1800);
    let pid = device.publish_qos1(&topic, &big).await;
    assert_eq!(device.expect(STEP, |r| matches!(r, Received::PubAck(_))).await, Some(Received::PubAck(pid)));
    assert_eq!(
        observer.expect(STEP, |r| matches!(r, Received::Publish(..))).await,
        Some(Received::Publish(topic, big.into_bytes()))
    );
}

#[test]
fn ca_config_is_checked_when_loaded() {
    let pki = Pki::generate();
    let pem = std::fs::read(&pki.ca_pem).expect("ca pem");
    let mut scratch = [0u8; 2048];
    let ca = TrustAnchor::from_pem_or_der(&pem, &mut scratch).expect("PEM CA");
    assert_eq!(ca.der(), &pki.ca_der[..]);
    assert!(TrustAnchor::from_der(&pki.ca_der).is_ok());

    let mut scratch = [0u8; 2048];
    assert_eq!(TrustAnchor::from_pem_or_der(b"not a certificate", &mut scratch).map(|_| ()), Err(Error::BadCa));
    let mut truncated = pki.ca_der.clone();
    truncated.truncate(truncated.len() - 10);
    assert_eq!(TrustAnchor::from_der(&truncated).map(|_| ()), Err(Error::BadCa));
    let mut flipped = pki.ca_der.clone();
    flipped[1] ^= 0x40;
    assert_eq!(TrustAnchor::from_der(&flipped).map(|_| ()), Err(Error::BadCa));
}
