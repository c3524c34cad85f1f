#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 15: what the libraries give is used, once. Fails when, in agent/ or
netsetup/:
- base64 is coded anywhere but agent/base64.c (its alphabet, EVP block coding);
- a MAC is formatted or parsed by hand outside netsetup/netsetup.c;
- the watchdog is pinged by hand instead of sd_event_set_watchdog();
- /etc/machine-id is read by hand instead of sd_id128_get_machine*();
- the watch stream is framed by anything but json_tokener_parse_ex();
- a unit watch reads its properties with single Gets instead of GetAll."""

import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)

# (what, pattern, the only files allowed to match, or None: none at all)
RULES = [
    ("base64 coded by hand", re.compile(r"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789\+/|"
                                        r"\bEVP_(?:Encode|Decode)(?:Block|Init|Update|Final)\b"),
     {"agent/base64.c"}),
    ("a MAC formatted or parsed by hand",
     re.compile(r"%02[xX]:%02[xX]:%02[xX]|%2x:%2x|%hhx:%hhx|\bether_aton\b|\bether_ntoa\b"),
     {"netsetup/netsetup.c"}),
    ("the watchdog pinged by hand", re.compile(r"WATCHDOG=1|\bsd_watchdog_enabled\b"), None),
    ("/etc/machine-id read by hand", re.compile(r'"/etc/machine-id"'), None),
]


def main():
    bad = []
    files = sorted(p for d in ("agent", "netsetup") for p in (ROOT / d).glob("*.[ch]"))
    for p in files:
        rel = p.relative_to(ROOT).as_posix()
        text = p.read_text(errors="replace")
        for what, pat, allowed in RULES:
            if allowed is not None and rel in allowed:
                continue
            for m in pat.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{rel}:{line}: {what}: {m.group(0)!r}")
    daemon = (ROOT / "agent/daemon.c").read_text()
    if "sd_event_set_watchdog(" not in daemon:
        bad.append("agent/daemon.c: no sd_event_set_watchdog()")
    stream = (ROOT / "agent/etcd-stream.c").read_text()
    if "json_tokener_parse_ex(" not in stream or re.search(r"depth\s*(\+\+|--)", stream):
        bad.append("agent/etcd-stream.c: the stream is not framed by json_tokener_parse_ex()")
    mid = (ROOT / "agent/machine-id.c").read_text()
    if "sd_id128_get_machine_app_specific(" not in mid:
        bad.append("agent/machine-id.c: no sd_id128_get_machine_app_specific()")
    uc = (ROOT / "agent/unit-control.c").read_text()
    fetch = re.search(r"\nstatic void watch_fetch\((?:watch|UnitWatch) \*w\) \{\n(.*?)\n\}", uc, re.S)
    if not fetch or '"GetAll"' not in fetch.group(1) or '"Get"' in fetch.group(1):
        bad.append("agent/unit-control.c: watch_fetch() does not read with one GetAll")
    if uc.count('"SubState"') != 1:
        bad.append("agent/unit-control.c: SubState is named outside watch_props (a single Get?)")
    for b in bad:
        print(b)
    print(f"check-libraries: {len(files)} files, {len(bad)} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
