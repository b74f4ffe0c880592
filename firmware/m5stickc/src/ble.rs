//! BLE advertising: esp-radio's BLE controller under the trouble-host stack, as `firmware-app`'s
//! radio seam.
//!
//! Each [`BleRadio::advertise`] sends one legacy non-connectable advertisement (ADV_NONCONN_IND,
//! all three primary channels): it enables advertising at the shortest interval the spec allows
//! (20 ms), holds it for [`HOLD`], then disables it. A receiver therefore sees the payload once or
//! twice per call (BTHome receivers drop repeats by packet id); between calls the radio is idle.

use bt_hci::cmd::le::LeSetRandomAddr;
use bt_hci::controller::ExternalController;
use bt_hci::param::{AddrKind, BdAddr};
use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::BT;
use esp_radio::ble::controller::BleConnector;
use static_cell::StaticCell;
use trouble_host::prelude::{
    Address, Advertisement, AdvertisementParameters, DefaultPacketPool, HostResources, Peripheral, Runner, Stack,
};

/// HCI command slots between the host and the controller.
type Controller = ExternalController<BleConnector<'static>, 4>;

/// Advertising interval while a burst is enabled: the minimum for legacy non-connectable
/// advertising (Core spec 5.x, Vol 6 Part B 4.4.2.2).
const INTERVAL: Duration = Duration::from_millis(20);
/// How long one burst stays enabled: long enough for the first advertising event plus the
/// scheduling slack of a controller shared with WiFi, short enough for at most two events.
const HOLD: Duration = Duration::from_millis(30);

/// Why BLE could not start.
#[derive(Debug, Clone, Copy)]
pub enum BleError {
    Init(esp_radio::ble::controller::BleInitError),
    Spawn,
}

/// The BLE radio, owned by the application through the radio seam.
pub struct BleRadio {
    stack: &'static Stack<'static, Controller, DefaultPacketPool>,
    peripheral: Peripheral<'static, Controller, DefaultPacketPool>,
    /// The random static address last given to the controller, most significant byte first.
    addr: Option<[u8; 6]>,
}

/// Starts the BLE controller and the host stack's runner task, advertising from `addr` (a random
/// static address, most significant byte first: `firmware_app::app::ble_address`).
pub fn start(spawner: Spawner, bt: BT<'static>, addr: [u8; 6]) -> Result<BleRadio, BleError> {
    let connector = BleConnector::new(bt, Default::default()).map_err(BleError::Init)?;
    let controller: Controller = ExternalController::new(connector);

    // No connections and no L2CAP channels: the gateway only broadcasts.
    static RESOURCES: StaticCell<HostResources<Controller, DefaultPacketPool, 1, 1>> = StaticCell::new();
    static STACK: StaticCell<Stack<'static, Controller, DefaultPacketPool>> = StaticCell::new();
    // The runner programs the address while it sets the controller up (after its HCI reset), so
    // advertising from it needs no command later.
    let stack: &'static Stack<'static, Controller, DefaultPacketPool> = STACK.init(
        trouble_host::new(controller, RESOURCES.init(HostResources::new()))
            .set_random_address(Address::random(lsb_first(addr)))
            .build(),
    );
    spawner.spawn(ble_task(stack.runner()).map_err(|_| BleError::Spawn)?);
    Ok(BleRadio { stack, peripheral: stack.peripheral(), addr: Some(addr) })
}

/// HCI carries addresses least significant byte first.
fn lsb_first(mut addr: [u8; 6]) -> [u8; 6] {
    addr.reverse();
    addr
}

#[embassy_executor::task]
async fn ble_task(mut runner: Runner<'static, Controller, DefaultPacketPool>) {
    loop {
        if let Err(e) = runner.run().await {
            esp_println::println!("t={} ev=error what=ble err=\"{e:?}\"", embassy_time::Instant::now().as_millis());
            Timer::after(Duration::from_secs(1)).await;
        }
    }
}

/// What went wrong while sending an advertisement.
#[derive(Debug)]
pub enum AdvertiseError {
    /// The payload is longer than a legacy advertisement's 31 bytes.
    TooLong,
    /// The host stack or the controller refused a command.
    Host(trouble_host::BleHostError<esp_radio::ble::controller::BleConnectorError>),
}

impl core::fmt::Display for AdvertiseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AdvertiseError::TooLong => f.write_str("advertisement longer than 31 bytes"),
            AdvertiseError::Host(e) => write!(f, "host stack: {e:?}"),
        }
    }
}

impl BleRadio {
    /// Sends `adv_data` (raw AD structures, at most 31 bytes) in one short burst from `addr`
    /// (most significant byte first), used as a random static address.
    pub async fn advertise(&mut self, addr: [u8; 6], adv_data: &[u8]) -> Result<(), AdvertiseError> {
        if adv_data.len() > 31 {
            return Err(AdvertiseError::TooLong);
        }
        if self.addr != Some(addr) {
            // Allowed only while advertising is off. The previous burst's disable command may
            // still be queued in the runner, so one retry after it has had time to go out.
            let cmd = LeSetRandomAddr::new(BdAddr::new(lsb_first(addr)));
            if self.stack.command(cmd).await.is_err() {
                Timer::after(HOLD).await;
                self.stack.command(cmd).await.map_err(AdvertiseError::Host)?;
            }
            self.addr = Some(addr);
        }
        let params = AdvertisementParameters {
            interval_min: INTERVAL,
            interval_max: INTERVAL,
            own_addr_kind: Some(AddrKind::RANDOM),
            ..Default::default()
        };
        let advertiser = self
            .peripheral
            .advertise(&params, Advertisement::NonconnectableNonscannableUndirected { adv_data })
            .await
            .map_err(AdvertiseError::Host)?;
        Timer::after(HOLD).await;
        // Dropping the advertiser makes the runner disable advertising.
        drop(advertiser);
        Ok(())
    }
}

impl firmware_app::seams::Radio for BleRadio {
    async fn advertise(&mut self, addr: [u8; 6], adv_data: &[u8]) -> Result<(), firmware_app::seams::RadioError> {
        match BleRadio::advertise(self, addr, adv_data).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let line = firmware_app::console::Line::new(embassy_time::Instant::now().as_millis(), "error")
                    .kv("kind", "ble")
                    .kv("detail", &e);
                esp_println::println!("{}", line.as_str());
                Err(firmware_app::seams::RadioError)
            }
        }
    }
}

/// The board's radio: BLE when the transport uses it, otherwise none (the controller is never
/// started, so it draws nothing).
pub struct BoardRadio(pub Option<BleRadio>);

impl firmware_app::seams::Radio for BoardRadio {
    async fn advertise(&mut self, addr: [u8; 6], adv_data: &[u8]) -> Result<(), firmware_app::seams::RadioError> {
        match self.0.as_mut() {
            Some(radio) => firmware_app::seams::Radio::advertise(radio, addr, adv_data).await,
            None => Err(firmware_app::seams::RadioError),
        }
    }
}
