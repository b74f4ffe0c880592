//! The P1 stream between the UART pump and the application: bytes and losses come out in the
//! order they happened, no byte is dropped without an error, and a cancelled read loses nothing.

#[path = "../../src/p1_stream.rs"]
#[allow(dead_code)]
mod p1_stream;

use embassy_futures::block_on;
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_futures::yield_now;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use embedded_io_async::Read;
use p1_stream::{Losses, P1LineError, channel};

/// Reads until `want` items (byte runs or errors) have been seen.
#[derive(Debug, PartialEq)]
enum Item {
    Bytes(Vec<u8>),
    Lost,
}

/// Everything was pushed beforehand, so a correct reader never has to wait: a read that is
/// still pending after many polls fails the test instead of hanging it.
fn read_items<const N: usize>(rx: &mut p1_stream::P1Rx<'_, N>, buf_len: usize, want: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; buf_len];
    while out.len() < want {
        let patience = async {
            for _ in 0..100 {
                yield_now().await;
            }
        };
        match block_on(select(rx.read(&mut buf), patience)) {
            Either::First(Ok(n)) => out.push(Item::Bytes(buf[..n].to_vec())),
            Either::First(Err(P1LineError)) => out.push(Item::Lost),
            Either::Second(()) => panic!("read blocked after {out:?} although {want} items were due"),
        }
    }
    out
}

#[test]
fn bytes_before_a_loss_come_first_then_the_error_then_the_rest() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    pump.push(b"/ISK5");
    pump.lost();
    pump.push(b"!1234");
    let items = read_items(&mut rx, 64, 3);
    assert_eq!(items, vec![Item::Bytes(b"/ISK5".to_vec()), Item::Lost, Item::Bytes(b"!1234".to_vec())]);
}

#[test]
fn a_loss_before_any_byte_is_reported_first() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    pump.lost();
    pump.push(b"abc");
    assert_eq!(read_items(&mut rx, 64, 2), vec![Item::Lost, Item::Bytes(b"abc".to_vec())]);
}

#[test]
fn small_reads_stop_at_the_loss() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    pump.push(b"abcde");
    pump.lost();
    pump.push(b"fg");
    let items = read_items(&mut rx, 2, 5);
    assert_eq!(
        items,
        vec![
            Item::Bytes(b"ab".to_vec()),
            Item::Bytes(b"cd".to_vec()),
            Item::Bytes(b"e".to_vec()),
            Item::Lost,
            Item::Bytes(b"fg".to_vec()),
        ]
    );
}

#[test]
fn bytes_that_do_not_fit_the_pipe_are_a_loss_after_those_that_did() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 8>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    pump.push(b"0123456789AB");
    let items = read_items(&mut rx, 64, 2);
    assert_eq!(items, vec![Item::Bytes(b"01234567".to_vec()), Item::Lost]);
    pump.push(b"xyz");
    assert_eq!(read_items(&mut rx, 64, 1), vec![Item::Bytes(b"xyz".to_vec())]);
}

#[test]
fn every_loss_is_one_error_even_when_several_wait() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    pump.push(b"a");
    pump.lost();
    pump.push(b"b");
    pump.lost();
    pump.lost();
    pump.push(b"c");
    // The later losses are reported at the first one's position: three errors, no byte lost.
    let items = read_items(&mut rx, 64, 5);
    let lost = items.iter().filter(|i| **i == Item::Lost).count();
    let bytes: Vec<u8> = items
        .iter()
        .flat_map(|i| match i {
            Item::Bytes(b) => b.clone(),
            Item::Lost => Vec::new(),
        })
        .collect();
    assert_eq!(items[0], Item::Bytes(b"a".to_vec()));
    assert_eq!(items[1], Item::Lost);
    assert_eq!(lost, 3);
    assert_eq!(bytes, b"abc");
}

#[test]
fn a_waiting_reader_is_woken_by_a_loss() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    let mut buf = [0u8; 16];
    let (res, ()) = block_on(join(rx.read(&mut buf), async {
        yield_now().await;
        pump.lost();
    }));
    assert_eq!(res, Err(P1LineError));
}

#[test]
fn a_cancelled_read_loses_nothing() {
    let mut pipe = Pipe::<CriticalSectionRawMutex, 64>::new();
    let losses = Losses::new();
    let (mut pump, mut rx) = channel(&mut pipe, &losses);
    let mut buf = [0u8; 16];
    // The read is dropped while it waits, as when the app's timer wins a select.
    let outcome = block_on(select(rx.read(&mut buf), yield_now()));
    assert!(matches!(outcome, Either::Second(())));
    pump.push(b"telegram");
    assert_eq!(read_items(&mut rx, 64, 1), vec![Item::Bytes(b"telegram".to_vec())]);
}
