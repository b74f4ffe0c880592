//! WiFi station and the embassy-net stack.

use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::WIFI;
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController};
use static_cell::StaticCell;

const SSID: &str = match option_env!("P1GW_WIFI_SSID") {
    Some(s) => s,
    None => "",
};
const PASSWORD: &str = match option_env!("P1GW_WIFI_PASSWORD") {
    Some(s) => s,
    None => "",
};

#[derive(Debug, Clone, Copy)]
pub enum NetError {
    Wifi(esp_radio::wifi::WifiError),
    Spawn,
}

pub fn start(spawner: Spawner, wifi: WIFI<'static>) -> Result<Stack<'static>, NetError> {
    let ssid = SSID.try_into().map_err(NetError::Wifi)?;
    let password = PASSWORD.try_into().map_err(NetError::Wifi)?;
    let station = StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(AuthenticationMethodConfig::Wpa2Personal(password));
    let controller = WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(Config::Station(station)),
    )
    .map_err(NetError::Wifi)?;
    let device = Interface::station();

    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let seed = {
        let rng = esp_hal::rng::Rng::new();
        (u64::from(rng.random()) << 32) | u64::from(rng.random())
    };
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(connection(controller).map_err(|_| NetError::Spawn)?);
    spawner.spawn(net_task(runner).map_err(|_| NetError::Spawn)?);
    Ok(stack)
}

#[embassy_executor::task]
async fn connection(mut controller: WifiController<'static>) {
    loop {
        match controller.connect_async().await {
            Ok(info) => {
                println!("t={} ev=wifi state=up channel={}", embassy_time::Instant::now().as_millis(), info.channel);
                let _ = controller.wait_for_disconnect_async().await;
                println!("t={} ev=wifi state=down", embassy_time::Instant::now().as_millis());
            }
            Err(e) => {
                println!("t={} ev=wifi state=failed err=\"{e:?}\"", embassy_time::Instant::now().as_millis());
                Timer::after(Duration::from_secs(2)).await;
            }
        }
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}
