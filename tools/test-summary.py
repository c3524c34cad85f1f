#!/usr/bin/python3
"""Prints 'N passed, N failed, N skipped' from meson's test log.

Further arguments NAME=RC count runs outside meson (CI's fuzz run, the
sanitizer build) as one test each: passed if RC is 0."""
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.json"
passed = failed = skipped = 0
try:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
except FileNotFoundError:
    failed = 1
for extra in sys.argv[2:]:
    name, _, rc = extra.partition("=")
    if rc.strip() == "0":
        passed += 1
    else:
        failed += 1
        print(f"{name}: FAILED (exit {rc})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
