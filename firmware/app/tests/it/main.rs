//! firmware-app tests over real fixture telegrams: payloads, topics and discovery documents
//! (insta snapshots, each checked to be JSON Home Assistant accepts), the MQTT codec, the
//! configuration's errors, the publish policy and the back-off.
#![allow(clippy::unwrap_used)]

mod codec;
mod config;
mod payloads;
mod policy;
