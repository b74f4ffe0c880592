//! Code-size probe: everything a gateway uses from `dsmr` (framer with a 4 KiB buffer, CRC,
//! typed decode, writer), linked into a bare-metal RISC-V program without std or alloc.
#![no_std]
#![no_main]

use core::hint::black_box;

static TELEGRAM: &[u8] = b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\n!D69C\r\n";

static mut FRAMER: dsmr::Framer<4096> = dsmr::Framer::new();

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: single-threaded bare-metal entry; the only reference to FRAMER.
    let framer = unsafe { &mut *core::ptr::addr_of_mut!(FRAMER) };
    let mut reading = dsmr::Reading::default();
    let mut out = [0u8; 2048];
    loop {
        let mut rest = black_box(TELEGRAM);
        while !rest.is_empty() {
            let (used, ev) = framer.feed(rest);
            rest = rest.get(used..).unwrap_or(&[]);
            if let Some(Ok(frame)) = ev {
                reading.fill(&frame.telegram());
                black_box(reading.emit(&mut out).ok());
            }
        }
        black_box(&reading);
        black_box(framer.stats());
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
