"""Reads N telegrams from p1-sim's TCP sink with ndokter/dsmr_parser's own SocketReader and prints
one JSON object per telegram: every parsed value by dsmr_parser's name (numbers and strings as
strings, datetimes as Unix seconds), M-Bus devices by channel.

usage: dsmr_parser_tcp.py HOST PORT SPEC N     (SPEC: V2_2, V4, V5, BELGIUM_FLUVIUS)
"""
import datetime
import json
import sys

from dsmr_parser import telegram_specifications
from dsmr_parser.clients import SocketReader


def plain(v):
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if v is None:
        return None
    return str(v)


def flatten(obj):
    out = {}
    for name, value in obj:
        if name == "MBUS_DEVICES":
            out[name] = {str(d.channel_id): flatten(d) for d in value}
        elif isinstance(value, list):
            continue
        elif hasattr(value, "value"):
            out[name] = plain(value.value)
        else:
            out[name] = plain(value)
    return out


def main():
    host, port, spec, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    reader = SocketReader(host, port, getattr(telegram_specifications, spec))
    got = 0
    for telegram in reader.read():
        print(json.dumps(flatten(telegram)), flush=True)
        got += 1
        if got >= n:
            return


if __name__ == "__main__":
    main()
