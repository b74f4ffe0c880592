//! The capture client: a rumqttc subscriber to `#` that timestamps every message on arrival and
//! hands it on. It reconnects on its own (a broker restart is part of many scenarios) and
//! re-subscribes after each connect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One captured MQTT message.
#[derive(Debug, Clone)]
pub struct Message {
    pub at: Instant,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

#[derive(Debug, Default)]
struct State {
    suback: AtomicU64,
    connected: AtomicBool,
}

#[derive(Debug)]
pub struct Capture {
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Capture {
    /// Connects to 127.0.0.1:`port` and forwards every message to `out`.
    pub fn start(port: u16, client_id: &str, login: Option<(&str, &str)>, out: mpsc::UnboundedSender<Message>) -> Capture {
        Capture::start_login("127.0.0.1", port, client_id, login, out)
    }

    /// As [`Capture::start`], for a broker elsewhere (a rig's external broker).
    pub fn start_host(host: &str, port: u16, client_id: &str, out: mpsc::UnboundedSender<Message>) -> Capture {
        Capture::start_login(host, port, client_id, None, out)
    }

    fn start_login(host: &str, port: u16, client_id: &str, login: Option<(&str, &str)>, out: mpsc::UnboundedSender<Message>) -> Capture {
        let mut opts = MqttOptions::new(client_id, host, port);
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        opts.set_max_packet_size(1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        st.connected.store(true, Ordering::SeqCst);
                        let _ = client.try_subscribe("#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        st.suback.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let m = Message { at: Instant::now(), topic: p.topic, payload: p.payload.to_vec(), retain: p.retain };
                        if out.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        st.connected.store(false, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Capture { state, task }
    }

    /// Subscriptions acknowledged so far (one per successful connect).
    pub fn subscriptions(&self) -> u64 {
        self.state.suback.load(Ordering::SeqCst)
    }

    /// Waits until more than `seen` subscriptions have been acknowledged.
    pub async fn wait_subscribed(&self, seen: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.subscriptions() <= seen {
            if Instant::now() > deadline {
                anyhow::bail!("the capture client did not (re)subscribe within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_mqtt() {
        assert!(matches("p1/dev/state", "p1/dev/state"));
        assert!(!matches("p1/dev/state", "p1/dev/diag"));
        assert!(matches("p1/+/state", "p1/dev/state"));
        assert!(matches("homeassistant/#", "homeassistant/sensor/dev/x/config"));
        assert!(!matches("p1/dev", "p1/dev/state"));
        assert!(!matches("p1/dev/state/x", "p1/dev/state"));
    }
}
