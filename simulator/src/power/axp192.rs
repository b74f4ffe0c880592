//! Register-level AXP192 emulator: the same register file `firmware-axp192` reads.
//!
//! The emulator holds the register file and the chip-side logic (ADC encodings at the REG84 rate,
//! coulomb counter, status bits, IRQ latches, write-1-to-clear, EXTEN mirroring, self-clearing
//! coulomb control bits). The electrical side (which source feeds IPSOUT, what the charger gets,
//! the battery) is computed by [`super::engine::PowerSim`], which hands the results to
//! [`Axp192::sample`] after every step. Values follow power.md §2; inferred behaviours are noted.
//!
//! I2C: address 0x34. A write's first byte sets the register pointer; the bytes after it are
//! `value, reg, value, reg, ...` (the AXP192's multi-write format: the first value goes to the
//! pointer, later ones come in address/data pairs). Reads auto-increment from the pointer. A
//! powered-off chip, or any other address, does not acknowledge.

use embedded_hal_async::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

/// The emulator's 7-bit I2C address.
pub const ADDRESS: u8 = 0x34;

/// Electrical quantities the engine computed for the last step (true values, not ADC codes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Electrical {
    /// ACIN present (a source is connected and above ~0.5 V).
    pub acin_present: bool,
    /// ACIN usable (3.8 V ≤ V ≤ 6.2 V).
    pub acin_usable: bool,
    /// ACIN voltage, V.
    pub acin_v: f64,
    /// ACIN current, mA.
    pub acin_ma: f64,
    /// VBUS present.
    pub vbus_present: bool,
    /// VBUS voltage, V.
    pub vbus_v: f64,
    /// VBUS current, mA.
    pub vbus_ma: f64,
    /// Battery terminal voltage, V.
    pub bat_v: f64,
    /// Current into the battery, mA.
    pub bat_charge_ma: f64,
    /// Current out of the battery, mA.
    pub bat_discharge_ma: f64,
    /// APS (IPSOUT) voltage, V.
    pub aps_v: f64,
    /// Die temperature, °C.
    pub temp_c: f64,
    /// The charger is charging.
    pub charging: bool,
    /// The charger gets less than its set current (source too weak).
    pub charge_starved: bool,
    /// The charger gets less than 65 % of its set current.
    pub charge_below_65: bool,
}

/// The charger settings in REG33.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargerSettings {
    /// REG33 bit 7.
    pub enabled: bool,
    /// Target voltage, V.
    pub target_v: f64,
    /// Constant current, mA.
    pub cc_ma: f64,
    /// End current as a fraction of `cc_ma` (0.10 or 0.15).
    pub end_fraction: f64,
}

const CHARGE_MA: [u16; 16] = [
    100, 190, 280, 360, 450, 550, 630, 700, 780, 880, 960, 1000, 1080, 1160, 1240, 1320,
];

/// Datasheet power-on defaults (AXP-DS §9.11; "X" nibbles taken as 0).
const DEFAULTS: [(u8, u8); 29] = [
    (0x03, 0x03),
    (0x06, 0xF0),
    (0x07, 0x0F),
    (0x08, 0x00),
    (0x09, 0xFF),
    (0x10, 0x05),
    (0x12, 0x5F),
    (0x23, 0x16),
    (0x26, 0x68),
    (0x27, 0x48),
    (0x28, 0xCF),
    (0x30, 0x60),
    (0x31, 0x03),
    (0x32, 0x46),
    (0x33, 0xC8),
    (0x34, 0x41),
    (0x35, 0x22),
    (0x36, 0x5D),
    (0x3A, 0x68),
    (0x3B, 0x5F),
    (0x40, 0xD8),
    (0x41, 0xFF),
    (0x42, 0x3B),
    (0x43, 0xC1),
    (0x80, 0xE0),
    (0x82, 0x83),
    (0x83, 0x80),
    (0x84, 0x32),
    (0x90, 0x07),
];

/// The emulated chip.
#[derive(Debug, Clone)]
pub struct Axp192 {
    regs: [u8; 256],
    pointer: u8,
    powered: bool,
    acc_charge: u64,
    acc_discharge: u64,
    sample_phase: f64,
    prev: Electrical,
    noise_lsb: u16,
    rng: u64,
}

impl Default for Axp192 {
    fn default() -> Self {
        Self::new()
    }
}

impl Axp192 {
    /// A chip at its power-on defaults, powered, without ADC noise.
    pub fn new() -> Self {
        let mut regs = [0u8; 256];
        for (r, v) in DEFAULTS {
            regs[usize::from(r)] = v;
        }
        Self {
            regs,
            pointer: 0,
            powered: true,
            acc_charge: 0,
            acc_discharge: 0,
            sample_phase: 0.0,
            prev: Electrical::default(),
            noise_lsb: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Adds up to ±`lsb` of deterministic (seeded) noise to every ADC code.
    pub fn with_noise(mut self, lsb: u16, seed: u64) -> Self {
        self.noise_lsb = lsb;
        self.rng = seed | 1;
        self
    }

    /// Reads a register as the firmware would.
    pub fn read_reg(&self, reg: u8) -> u8 {
        self.regs[usize::from(reg)]
    }

    /// Writes a register as the firmware would (read-only registers ignore the write).
    pub fn write_reg(&mut self, reg: u8, value: u8) {
        match reg {
            0x00 | 0x01 | 0x03 | 0x04 | 0x56..=0x7F | 0xB0..=0xB7 => {}
            0x44..=0x47 => self.regs[usize::from(reg)] &= !value,
            0x10 => {
                self.regs[0x10] = value;
                self.regs[0x12] = (self.regs[0x12] & !0x40) | if value & 0x04 != 0 { 0x40 } else { 0 };
            }
            0x12 => {
                self.regs[0x12] = value;
                self.regs[0x10] = (self.regs[0x10] & !0x04) | if value & 0x40 != 0 { 0x04 } else { 0 };
            }
            0x32 => {
                self.regs[0x32] = value & 0x7F;
                if value & 0x80 != 0 {
                    self.powered = false;
                }
            }
            0xB8 => {
                if value & 0x20 != 0 {
                    self.acc_charge = 0;
                    self.acc_discharge = 0;
                    self.write_counters();
                }
                self.regs[0xB8] = value & 0x80;
            }
            _ => self.regs[usize::from(reg)] = value,
        }
    }

    /// True while the chip (and so the ESP32 on DCDC1) is powered.
    pub fn powered(&self) -> bool {
        self.powered && self.dcdc1_on()
    }

    /// Cuts everything (APS fell below VOFF, or a shutdown); the chip keeps the data buffer and the
    /// coulomb counts, the rest returns to defaults at the next power-up [inferred].
    pub fn power_off(&mut self) {
        self.powered = false;
    }

    /// Powers up again (external power appeared): control registers back to defaults.
    pub fn power_on(&mut self) {
        let keep_buffer: [u8; 6] = self.regs[0x06..0x0C].try_into().unwrap_or([0; 6]);
        let keep_cc: [u8; 9] = self.regs[0xB0..0xB9].try_into().unwrap_or([0; 9]);
        *self = Self { noise_lsb: self.noise_lsb, rng: self.rng, ..Self::new() };
        self.regs[0x06..0x0C].copy_from_slice(&keep_buffer);
        self.regs[0xB0..0xB9].copy_from_slice(&keep_cc);
        self.powered = true;
    }

    /// DCDC1 (the ESP32's 3.3 V) on.
    pub fn dcdc1_on(&self) -> bool {
        self.regs[0x12] & 0x01 != 0
    }
    /// LDO2 (LCD backlight) on.
    pub fn ldo2_on(&self) -> bool {
        self.regs[0x12] & 0x04 != 0
    }
    /// LDO3 (LCD logic) on.
    pub fn ldo3_on(&self) -> bool {
        self.regs[0x12] & 0x08 != 0
    }
    /// EXTEN (5 V boost) on.
    pub fn exten_on(&self) -> bool {
        self.regs[0x12] & 0x40 != 0
    }
    /// LDOio0 (microphone) on: GPIO0 in LDO mode.
    pub fn ldoio0_on(&self) -> bool {
        self.regs[0x90] & 0x07 == 0x02
    }
    /// VOFF, V.
    pub fn voff_v(&self) -> f64 {
        2.6 + 0.1 * f64::from(self.regs[0x31] & 0x07)
    }
    /// ADC sample rate, Hz.
    pub fn adc_rate_hz(&self) -> f64 {
        25.0 * f64::from(1u8 << (self.regs[0x84] >> 6))
    }
    /// The charger settings.
    pub fn charger(&self) -> ChargerSettings {
        let r = self.regs[0x33];
        ChargerSettings {
            enabled: r & 0x80 != 0,
            target_v: [4.10, 4.15, 4.20, 4.36][usize::from((r >> 5) & 0x03)],
            cc_ma: f64::from(CHARGE_MA[usize::from(r & 0x0F)]),
            end_fraction: if r & 0x10 != 0 { 0.15 } else { 0.10 },
        }
    }

    fn noise(&mut self) -> i32 {
        if self.noise_lsb == 0 {
            return 0;
        }
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
        let span = u64::from(self.noise_lsb) * 2 + 1;
        (r % span) as i32 - i32::from(self.noise_lsb)
    }

    fn code(&mut self, value: f64, lsb: f64, bits: u32) -> u32 {
        let max = (1i64 << bits) - 1;
        let raw = (value / lsb).round() as i64 + i64::from(self.noise());
        raw.clamp(0, max) as u32
    }

    fn put12(&mut self, reg: u8, code: u32) {
        self.regs[usize::from(reg)] = (code >> 4) as u8;
        self.regs[usize::from(reg) + 1] = (code & 0x0F) as u8;
    }

    fn put13(&mut self, reg: u8, code: u32) {
        self.regs[usize::from(reg)] = (code >> 5) as u8;
        self.regs[usize::from(reg) + 1] = (code & 0x1F) as u8;
    }

    fn write_counters(&mut self) {
        let c = ((self.acc_charge >> 16) as u32).to_be_bytes();
        let d = ((self.acc_discharge >> 16) as u32).to_be_bytes();
        self.regs[0xB0..0xB4].copy_from_slice(&c);
        self.regs[0xB4..0xB8].copy_from_slice(&d);
    }

    /// Takes in the electrical state after a step of `dt_s`: samples the enabled ADC channels at
    /// the REG84 rate (disabled channels keep their last code), advances the coulomb counter,
    /// updates REG00/REG01 and latches the IRQ flags on edges.
    pub fn sample(&mut self, e: &Electrical, dt_s: f64) {
        if !self.powered {
            self.prev = *e;
            return;
        }
        let rate = self.adc_rate_hz();
        let total = self.sample_phase + dt_s * rate;
        let n = total.floor();
        self.sample_phase = total - n;
        let en1 = self.regs[0x82];
        let en2 = self.regs[0x83];
        let ch_ma = e.bat_charge_ma.max(0.0);
        let dis_ma = e.bat_discharge_ma.max(0.0);
        if n >= 1.0 {
            if en1 & 0x20 != 0 {
                let c = self.code(if e.acin_present { e.acin_v * 1000.0 } else { 0.0 }, 1.7, 12);
                self.put12(0x56, c);
            }
            if en1 & 0x10 != 0 {
                let c = self.code(e.acin_ma, 0.625, 12);
                self.put12(0x58, c);
            }
            if en1 & 0x08 != 0 {
                let c = self.code(if e.vbus_present { e.vbus_v * 1000.0 } else { 0.0 }, 1.7, 12);
                self.put12(0x5A, c);
            }
            if en1 & 0x04 != 0 {
                let c = self.code(e.vbus_ma, 0.375, 12);
                self.put12(0x5C, c);
            }
            if en2 & 0x80 != 0 {
                let c = self.code(e.temp_c + 144.7, 0.1, 12);
                self.put12(0x5E, c);
            }
            if en1 & 0x80 != 0 {
                let c = self.code(e.bat_v * 1000.0, 1.1, 12);
                self.put12(0x78, c);
            }
            if en1 & 0x40 != 0 {
                let c = self.code(ch_ma, 0.5, 13);
                self.put13(0x7A, c);
                let d = self.code(dis_ma, 0.5, 13);
                self.put13(0x7C, d);
                // Battery power: (V code · I code) >> 1, 24 bit (power.md §2.2 [inferred]).
                let v = (u32::from(self.regs[0x78]) << 4) | u32::from(self.regs[0x79] & 0x0F);
                let i = if ch_ma > 0.0 { c } else { d };
                let p = ((u64::from(v) * u64::from(i)) >> 1).min(0xFF_FFFF) as u32;
                self.regs[0x70..0x73].copy_from_slice(&p.to_be_bytes()[1..]);
            }
            if en1 & 0x02 != 0 {
                let c = self.code(e.aps_v * 1000.0, 1.4, 12);
                self.put12(0x7E, c);
            }
            if self.regs[0xB8] & 0x80 != 0 {
                let samples = n as u64;
                self.acc_charge += u64::from(self.code(ch_ma, 0.5, 13)) * samples;
                self.acc_discharge += u64::from(self.code(dis_ma, 0.5, 13)) * samples;
                self.write_counters();
            }
        }

        let mut s0 = 0u8;
        if e.acin_present {
            s0 |= 0x80;
        }
        if e.acin_usable {
            s0 |= 0x40 | 0x01;
        }
        if e.vbus_present {
            s0 |= 0x20 | 0x10;
        }
        if e.charging && ch_ma > 0.0 {
            s0 |= 0x04;
        }
        self.regs[0x00] = s0;
        let mut s1 = 0x20u8; // battery present
        if e.charging {
            s1 |= 0x40;
        }
        if e.charging && e.charge_starved {
            s1 |= 0x04;
        }
        self.regs[0x01] = s1;

        let latched_before = [self.regs[0x44], self.regs[0x45], self.regs[0x46], self.regs[0x47]];
        let p = self.prev;
        if e.acin_usable && !p.acin_usable {
            self.regs[0x44] |= 0x40;
        }
        if !e.acin_usable && p.acin_usable {
            self.regs[0x44] |= 0x20;
        }
        if e.vbus_present && !p.vbus_present {
            self.regs[0x44] |= 0x08;
        }
        if !e.vbus_present && p.vbus_present {
            self.regs[0x44] |= 0x04;
        }
        if e.charging && !p.charging {
            self.regs[0x45] |= 0x08;
        }
        if !e.charging && p.charging && e.acin_usable {
            self.regs[0x45] |= 0x04;
        }
        if e.charging && e.charge_below_65 {
            self.regs[0x46] |= 0x40;
        }
        // APS warning level 2 (REG3B) sets REG47 bit 0.
        let level2 = 2.8672 + 0.0056 * f64::from(self.regs[0x3B]);
        if e.aps_v < level2 {
            self.regs[0x47] |= 0x01;
        }
        // A flag latches only while its IRQ is enabled (REG40–43 gate REG44–47 bit for bit).
        let (enables, rest) = self.regs[0x40..0x48].split_at_mut(4);
        for ((flags, enable), before) in rest.iter_mut().zip(enables.iter()).zip(latched_before) {
            *flags &= *enable | before;
        }
        self.prev = *e;
    }
}

/// I2C errors the emulator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I2cError(pub ErrorKind);

impl embedded_hal_async::i2c::Error for I2cError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl ErrorType for Axp192 {
    type Error = I2cError;
}

impl Axp192 {
    /// Runs one I2C transaction against the register file (the blocking core of the async impl).
    pub fn transact(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), I2cError> {
        if address != ADDRESS || !self.powered {
            return Err(I2cError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)));
        }
        for op in ops {
            match op {
                Operation::Write(bytes) => {
                    let mut it = bytes.iter();
                    if let Some(&p) = it.next() {
                        self.pointer = p;
                        let mut reg = p;
                        let mut is_value = true;
                        for &b in it {
                            if is_value {
                                self.write_reg(reg, b);
                            } else {
                                reg = b;
                            }
                            is_value = !is_value;
                        }
                    }
                }
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = self.read_reg(self.pointer);
                        self.pointer = self.pointer.wrapping_add(1);
                    }
                }
            }
        }
        Ok(())
    }
}

impl I2c for Axp192 {
    async fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        self.transact(address, operations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_p1() -> Electrical {
        Electrical {
            acin_present: true,
            acin_usable: true,
            acin_v: 5.0,
            acin_ma: 120.0,
            bat_v: 4.2,
            bat_charge_ma: 100.0,
            aps_v: 4.95,
            temp_c: 40.0,
            charging: true,
            ..Default::default()
        }
    }

    #[test]
    fn adc_codes_match_power_md_examples() {
        let mut a = Axp192::new();
        a.write_reg(0x82, 0xFF);
        a.sample(&on_p1(), 0.1);
        assert_eq!((a.read_reg(0x56), a.read_reg(0x57)), (0xB7, 0x0D));
        assert_eq!((a.read_reg(0x58), a.read_reg(0x59)), (0x0C, 0x00));
        assert_eq!((a.read_reg(0x5E), a.read_reg(0x5F)), (0x73, 0x07));
        assert_eq!((a.read_reg(0x78), a.read_reg(0x79)), (0xEE, 0x0A));
        assert_eq!((a.read_reg(0x7A), a.read_reg(0x7B)), (0x06, 0x08));
        assert_eq!((a.read_reg(0x7E), a.read_reg(0x7F)), (0xDD, 0x00));
        assert_eq!(a.read_reg(0x00), 0xC5);
        assert_eq!(a.read_reg(0x01) & 0x60, 0x60);
        assert_eq!(a.read_reg(0x44), 0x40, "ACIN inserted latched");
    }

    #[test]
    fn disabled_channels_keep_their_code_and_no_sample_no_update() {
        let mut a = Axp192::new();
        a.write_reg(0x82, 0xFF);
        a.sample(&on_p1(), 0.1);
        a.write_reg(0x82, 0x00);
        a.sample(&Electrical { acin_ma: 10.0, ..on_p1() }, 0.1);
        assert_eq!(a.read_reg(0x58), 0x0C);
        a.write_reg(0x82, 0xFF);
        // 25 Hz: 10 ms is less than one sample period after the phase was used up.
        a.sample(&Electrical { acin_ma: 10.0, ..on_p1() }, 0.01);
        assert_eq!(a.read_reg(0x58), 0x0C);
        a.sample(&Electrical { acin_ma: 10.0, ..on_p1() }, 0.04);
        assert_eq!(a.read_reg(0x58), 0x01);
    }

    #[test]
    fn coulomb_counter_counts_at_the_adc_rate_and_clears() {
        let mut a = Axp192::new();
        a.write_reg(0x84, 0xF2); // 200 Hz
        a.write_reg(0xB8, 0x80);
        // 100 mA for 1 h at 200 Hz: 200 raw · 720 000 samples >> 16 = 2197 counts = 100 mAh.
        let e = on_p1();
        for _ in 0..3600 {
            a.sample(&e, 1.0);
        }
        let c = u32::from_be_bytes([a.read_reg(0xB0), a.read_reg(0xB1), a.read_reg(0xB2), a.read_reg(0xB3)]);
        assert_eq!(c, 2197);
        a.write_reg(0xB8, 0xA0);
        assert_eq!(a.read_reg(0xB3), 0);
        assert_eq!(a.read_reg(0xB8), 0x80, "clear bit self-clears");
    }

    #[test]
    fn irq_write_one_to_clear_and_exten_mirrors() {
        let mut a = Axp192::new();
        a.sample(&on_p1(), 0.1);
        a.sample(&Electrical::default(), 0.1);
        assert_eq!(a.read_reg(0x44), 0x40, "the power-on enables (REG40 = D8h) leave out ACIN removal");
        a.write_reg(0x44, 0x40);
        a.write_reg(0x40, 0xD8 | 0x20);
        a.sample(&on_p1(), 0.1);
        a.sample(&Electrical::default(), 0.1);
        assert_eq!(a.read_reg(0x44), 0x60, "enabled, the removal latches too");
        a.write_reg(0x44, 0x20);
        assert_eq!(a.read_reg(0x44), 0x40);
        a.write_reg(0x12, 0x41);
        assert_eq!(a.read_reg(0x10) & 0x04, 0x04);
        a.write_reg(0x10, 0x00);
        assert!(!a.exten_on());
        a.write_reg(0x56, 0x12);
        assert_eq!(a.read_reg(0x56), 0x00, "ADC registers are read only");
    }

    #[test]
    fn i2c_reads_auto_increment_and_wrong_address_nacks() {
        let mut a = Axp192::new();
        let mut buf = [0u8; 2];
        a.transact(ADDRESS, &mut [Operation::Write(&[0x33]), Operation::Read(&mut buf)])
            .unwrap_or(());
        assert_eq!(buf, [0xC8, 0x41]);
        a.transact(ADDRESS, &mut [Operation::Write(&[0x33, 0xC0, 0x34, 0x42])]).unwrap_or(());
        assert_eq!((a.read_reg(0x33), a.read_reg(0x34)), (0xC0, 0x42));
        assert!(a.transact(0x35, &mut [Operation::Write(&[0x00])]).is_err());
        a.write_reg(0x32, 0x80);
        assert!(!a.powered());
        assert!(a.transact(ADDRESS, &mut [Operation::Write(&[0x00])]).is_err());
    }
}
