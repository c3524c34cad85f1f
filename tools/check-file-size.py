#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""No C or Python file over 600 lines (issue 15): one file per concept, and
a concept that needs more is two. Checks every *.c, *.h and *.py file git
tracks (or, outside a git checkout, every such file under the tree).

ALLOWED lists the exceptions, each with the reason next to it; an entry
without a reason, or one for a file that is back under the limit, fails
too, so the list only ever shrinks."""

import pathlib
import subprocess
import sys

LIMIT = 600
ALLOWED = {
    # path: reason (required)
}


def tracked(root):
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", "*.c", "*.h", "*.py"],
                             capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        return sorted(str(p.relative_to(root)) for ext in ("c", "h", "py") for p in root.rglob(f"*.{ext}")
                      if not any(part.startswith("build") or part.startswith(".") for part in p.parts))


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    bad = []
    for path in tracked(root):
        f = root / path
        if not f.is_file():
            continue
        with open(f, "rb") as fh:
            n = sum(1 for _ in fh)
        if path in ALLOWED:
            if not ALLOWED[path].strip():
                bad.append(f"{path}: on the allow-list without a reason")
            elif n <= LIMIT:
                bad.append(f"{path}: {n} lines, back under {LIMIT}: take it off the allow-list")
            continue
        if n > LIMIT:
            bad.append(f"{path}: {n} lines (more than {LIMIT}): split it where the seams are")
    for path in sorted(set(ALLOWED) - set(tracked(root))):
        bad.append(f"{path}: on the allow-list but not in the tree")
    for b in bad:
        print(b)
    if not bad:
        print(f"every C and Python file is at most {LIMIT} lines ({len(ALLOWED)} allowed over)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
