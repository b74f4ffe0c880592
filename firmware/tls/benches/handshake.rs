//! Prints the TLS client's memory figures and its handshake time against a local mosquitto.
//!
//! `cargo bench -p firmware-tls --bench handshake` (100 handshakes); under `cargo test` it does 3.
//! Sizes are for this host (64-bit); on the 32-bit ESP32 pointers halve, buffers do not change.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use embedded_io_adapters::tokio_1::FromTokio;
use firmware_tls::{Buffers, Options, RECORD_BUFFER_MAX, TlsStream, TrustAnchor};
use support::*;
use tokio::net::TcpStream;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let runs = if bench { 100 } else { 3 };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let pki = Pki::generate();
        let password = device_password();
        let broker = Mosquitto::start(&pki, &password);
        let options = Options {
            ca: TrustAnchor::from_der(&pki.ca_der).expect("ca"),
            server_name: "localhost",
            now_unix_s: now_unix(),
            now_is_lower_bound: false,
            max_fragment_length: None,
        };
        let mut bufs = Box::new(Buffers::<RECORD_BUFFER_MAX, 4096>::new());
        let mut times = Vec::new();
        let mut future_size = 0;
        for _ in 0..runs {
            let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, broker.good_port)).await.expect("tcp");
            let start = Instant::now();
            let fut = bufs.connect(FromTokio::new(tcp), &options, rand_core::OsRng);
            future_size = std::mem::size_of_val(&fut);
            let stream = tokio::time::timeout(Duration::from_secs(5), fut).await.expect("timeout").expect("handshake");
            times.push(start.elapsed());
            let _ = stream.close().await;
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        println!("handshakes: {runs} against mosquitto on loopback (ECDSA P-256 chain, TLS_AES_128_GCM_SHA256)");
        println!("handshake time: mean {mean:?}, min {:?}, median {:?}, max {:?}", times[0], times[times.len() / 2], times[times.len() - 1]);
        println!("size_of TlsStream<FromTokio<TcpStream>>: {} B", std::mem::size_of::<TlsStream<'static, FromTokio<TcpStream>>>());
        println!("size_of connect() future: {future_size} B");
        println!("record buffers: read {RECORD_BUFFER_MAX} B (2304 B with a 2 KiB max fragment length), write 4096 B");
    });
}
