use firmware_app::mqtt::{self, Connect, Decoded, Packet, Will};

#[test]
fn connect_encodes_will_and_credentials() {
    let mut buf = [0u8; 256];
    let c = Connect {
        client_id: "meter1",
        keepalive_s: 30,
        clean_session: true,
        will: Some(Will { topic: "p1/meter1/status", payload: b"offline", qos: 1, retain: true }),
        username: Some("u"),
        password: Some(b"pw"),
    };
    let r = mqtt::connect(&mut buf, &c).unwrap();
    let p = &buf[r];
    assert_eq!(p[0], 0x10);
    assert_eq!(p[1] as usize, p.len() - 2);
    assert_eq!(&p[2..8], b"\x00\x04MQTT");
    assert_eq!(p[8], 4);
    // user, password, will retain, will QoS 1, will flag, clean session.
    assert_eq!(p[9], 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02);
    assert_eq!(&p[10..12], &[0, 30]);
    assert!(p.ends_with(b"\x00\x01u\x00\x02pw"));
}

#[test]
fn publish_round_trips_through_decode() {
    let mut buf = [0u8; 512];
    let payload = "x".repeat(300);
    let r = mqtt::publish(&mut buf, "p1/meter1/state", 1, false, false, 7, |w| w.put(payload.as_bytes()).map_err(|_| std::fmt::Error)).unwrap();
    let bytes = buf[r].to_vec();
    // Two-byte remaining length (> 127).
    assert_eq!(bytes[0], 0x32);
    assert!(bytes[1] & 0x80 != 0);
    match mqtt::decode(&bytes, 1024) {
        Decoded::Packet(Packet::Publish { topic, payload: p, qos, packet_id, retain }, used) => {
            assert_eq!(topic, b"p1/meter1/state");
            assert_eq!(p, payload.as_bytes());
            assert_eq!((qos, packet_id, retain, used), (1, 7, false, bytes.len()));
        }
        other => panic!("{other:?}"),
    }
    // Every strict prefix needs more bytes.
    for n in 0..bytes.len() {
        assert_eq!(mqtt::decode(&bytes[..n], 1024), Decoded::NeedMore, "prefix {n}");
    }
}

#[test]
fn publish_that_does_not_fit_is_an_error() {
    let mut buf = [0u8; 64];
    let r = mqtt::publish(&mut buf, "p1/meter1/state", 0, false, false, 0, |w| w.put(&[b'a'; 100]).map_err(|_| std::fmt::Error));
    assert_eq!(r, Err(mqtt::EncodeError::BufferFull));
}

#[test]
fn broker_packets_decode() {
    assert_eq!(mqtt::decode(&[0x20, 2, 0, 0], 64), Decoded::Packet(Packet::ConnAck { session_present: false, code: 0 }, 4));
    assert_eq!(mqtt::decode(&[0x20, 2, 0, 5], 64), Decoded::Packet(Packet::ConnAck { session_present: false, code: 5 }, 4));
    assert_eq!(mqtt::decode(&[0x40, 2, 1, 2], 64), Decoded::Packet(Packet::PubAck(0x0102), 4));
    assert_eq!(mqtt::decode(&[0x90, 3, 0, 1, 0x80], 64), Decoded::Packet(Packet::SubAck(1, 0x80), 5));
    assert_eq!(mqtt::decode(&[0xD0, 0], 64), Decoded::Packet(Packet::PingResp, 2));
    assert_eq!(mqtt::decode(&[0x40, 3, 1, 2, 3], 64), Decoded::Malformed(5));
    assert_eq!(mqtt::decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 1], 64), Decoded::Corrupt);
    // 1000-byte publish into a 64-byte buffer: skip it.
    assert_eq!(mqtt::decode(&[0x30, 0xE8, 0x07], 64), Decoded::TooLong { header: 3, body: 1000 });
    // Topic length pointing past the body.
    assert_eq!(mqtt::decode(&[0x30, 3, 0, 9, b'a'], 64), Decoded::Malformed(5));
}

/// Arbitrary bytes never panic the decoder, and it never claims more bytes than it was given.
#[test]
fn decode_never_panics_on_garbage() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = [0u8; 64];
    let mut tried = 0;
    for _ in 0..200_000 {
        tried += 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        for (i, b) in buf.iter_mut().enumerate().take(len) {
            *b = (x >> (i % 8 * 8)) as u8 ^ i as u8;
        }
        match mqtt::decode(&buf[..len], 48) {
            Decoded::Packet(_, used) | Decoded::Malformed(used) => assert!(used <= len),
            _ => {}
        }
    }
    crate::hostile_inputs("MQTT input to the device", tried, "firmware-app it::codec::decode_never_panics_on_garbage");
}
