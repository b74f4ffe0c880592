"""Decode BTHome advertisements with bthome-ble, the parser Home Assistant uses.

Reads lines on stdin, answers one line per request on stdout:

  ad <stream> <bindkey hex or -> <datagram hex>
      datagram = 6-byte device address (most significant byte first) + raw AD structures, the
      virtual radio's UDP format. Decodes it alone (a fresh parser) and feeds it to the stream's
      long-lived parser too. Answers
      ad <stream> encrypted=0|1 verified=0|1 <key>=<value> ...
      with the values Home Assistant would show for this advertisement alone.
  end <stream>
      Answers end <stream> <key>=<value> ... : every sensor the stream's parser holds, i.e. what
      Home Assistant would show after all the stream's advertisements.

With --listen HOST:PORT it is a receiver for the virtual radio instead: it prints
"listening HOST:PORT", then one "ad udp ..." line (as above) per datagram received, and exits
after --count datagrams, or with status 1 if --timeout seconds pass without one.
"""

import argparse
import socket
import sys

from bleak.backends.device import BLEDevice
from bthome_ble import BTHomeBluetoothDeviceData
from habluetooth import BluetoothServiceInfoBleak

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"


def service_info(datagram: bytes, time: float) -> BluetoothServiceInfoBleak:
    if len(datagram) < 6:
        raise ValueError(f"datagram of {len(datagram)} bytes has no address")
    address = ":".join(f"{b:02X}" for b in datagram[:6])
    ad = datagram[6:]
    service_data: dict[str, bytes] = {}
    name = address
    i = 0
    while i < len(ad):
        length = ad[i]
        if length == 0:
            break
        if i + 1 + length > len(ad):
            raise ValueError(f"AD structure at offset {i} runs past the end")
        ad_type, data = ad[i + 1], ad[i + 2 : i + 1 + length]
        if ad_type == 0x16 and len(data) >= 2:
            uuid16 = int.from_bytes(data[:2], "little")
            service_data[f"0000{uuid16:04x}-0000-1000-8000-00805f9b34fb"] = bytes(data[2:])
        elif ad_type in (0x08, 0x09):
            name = data.decode("utf-8")
        i += 1 + length
    return BluetoothServiceInfoBleak(
        name=name,
        address=address,
        rssi=-60,
        manufacturer_data={},
        service_data=service_data,
        service_uuids=list(service_data),
        source="local",
        device=BLEDevice(address, name, None),
        advertisement=None,
        connectable=False,
        time=time,
        tx_power=None,
        raw=bytes(ad),
    )


def sensors(update) -> str:
    values = {key.key: v.native_value for key, v in update.entity_values.items()}
    values.pop("signal_strength", None)
    return " ".join(f"{k}={values[k]!r}" for k in sorted(values))


def listen(where: str, key_hex: str | None, count: int, timeout: float) -> None:
    host, _, port = where.rpartition(":")
    key = bytes.fromhex(key_hex) if key_hex else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    sock.settimeout(timeout)
    bound_host, bound_port = sock.getsockname()
    print(f"listening {bound_host}:{bound_port}", flush=True)
    parser = BTHomeBluetoothDeviceData(bindkey=key)
    clock = 1000.0
    for _ in range(count):
        try:
            datagram, _ = sock.recvfrom(2048)
        except socket.timeout:
            raise SystemExit(f"bthome_decode.py: no datagram within {timeout} s")
        clock += 1.0
        update = parser.update(service_info(datagram, clock))
        encrypted = int(parser.encryption_scheme.value != "none")
        print(f"ad udp encrypted={encrypted} verified={int(parser.bindkey_verified)} {sensors(update)}".rstrip(), flush=True)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--listen", metavar="HOST:PORT", help="receive the virtual radio's UDP datagrams")
    args.add_argument("--bind-key", metavar="HEX", help="BTHome bind key for --listen")
    args.add_argument("--count", type=int, default=1, help="datagrams to receive (default 1)")
    args.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per datagram")
    opts = args.parse_args()
    if opts.listen:
        listen(opts.listen, opts.bind_key, opts.count, opts.timeout)
        return
    # stream -> [parser, clock, last update]
    streams: dict[str, list] = {}
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "ad" and len(parts) == 4:
            _, stream, key_hex, datagram_hex = parts
            key = None if key_hex == "-" else bytes.fromhex(key_hex)
            state = streams.setdefault(stream, [BTHomeBluetoothDeviceData(bindkey=key), 1000.0, None])
            state[1] += 1.0
            info = service_info(bytes.fromhex(datagram_hex), state[1])
            state[2] = state[0].update(info)
            alone = BTHomeBluetoothDeviceData(bindkey=key)
            update = alone.update(info)
            encrypted = int(alone.encryption_scheme.value != "none")
            print(f"ad {stream} encrypted={encrypted} verified={int(alone.bindkey_verified)} {sensors(update)}".rstrip())
        elif parts[0] == "end" and len(parts) == 2:
            _, _, last = streams.pop(parts[1])
            print(f"end {parts[1]} {sensors(last)}".rstrip())
        else:
            raise SystemExit(f"bthome_decode.py: bad request line: {line.strip()!r}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
