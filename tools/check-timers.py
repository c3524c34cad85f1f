#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every sd-event timer gets an explicit accuracy: sd-event's 0 means 250 ms,
which put every etcd round trip on a 250 ms grid once (issue 13). Finds each
sd_event_add_time / sd_event_add_time_relative call in agent/ and netsetup/
and fails on one whose accuracy argument (the fifth) is a literal 0."""

import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
CALL = re.compile(r"\bsd_event_add_time(?:_relative)?\s*\(")


def args_of(text, start):
    """The top-level arguments of the call whose '(' is at start."""
    depth, cur, out = 0, [], []
    for ch in text[start:]:
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                out.append("".join(cur).strip())
                return out
        if ch == "," and depth == 1:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    return out


bad, seen = [], 0
for path in sorted(list((ROOT / "agent").glob("*.c")) + list((ROOT / "netsetup").glob("*.c"))):
    text = path.read_text()
    for m in CALL.finditer(text):
        args = args_of(text, m.end() - 1)
        seen += 1
        if len(args) >= 5 and args[4] in ("0", "0ULL", "0U"):
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{path.relative_to(ROOT)}:{line}: timer with accuracy 0 (= 250 ms); give it one")
print(f"{seen} timers checked")
for b in bad:
    print(b)
sys.exit(1 if bad or seen == 0 else 0)
