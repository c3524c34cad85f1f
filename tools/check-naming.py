#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One naming convention in agent/, systemd's (issue 15): a typedef'd
struct, enum or union is CamelCase (NodeAgent, UnitControl), functions and
variables are snake_case, and a callback typedef ends in _handler_t.
netsetup/ is a library with its own prefix (ns_) and is not checked.

Fails on `typedef struct x x;`, on `typedef struct [x] { ... } x;` with a
name that is not CamelCase, and on a function pointer typedef with another
suffix (_cb, _callback_t, _func_t, ...); and on a function declared in a
header of agent/ with a `ret` or `ret_*` out-parameter that is not last; and
on a `T *x_free(T *)` / `x_unref` in agent/ without its
DEFINE_TRIVIAL_CLEANUP_FUNC (so constructors can unwind with _cleanup_)."""

import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
FORWARD = re.compile(r"\btypedef\s+(?:struct|enum|union)\s+(\w+)\s+(\w+)\s*;")
BODY = re.compile(r"\btypedef\s+(?:struct|enum|union)\s*\w*\s*\{")
FUNC = re.compile(r"\btypedef\b[^;{}]*?\(\s*\*\s*(\w+)\s*\)\s*\(")
# A prototype at file level: `type name(params);` (params without parens).
PROTO = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\(([^()]*)\)\s*(?:__attribute__\S*\s*)?;", re.M)
RET = re.compile(r"\bret(?:_\w+)?\s*(?:\[[^\]]*\])?\s*\Z")


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def check(path):
    text = COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), path.read_text())
    rel = path.relative_to(ROOT)
    bad = []
    for m in FORWARD.finditer(text):
        if not CAMEL.match(m.group(2)):
            bad.append(f"{rel}:{line_of(text, m.start())}: type {m.group(2)} is not CamelCase")
    for m in BODY.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        name = re.match(r"\}\s*(\w+)\s*;", text[i:])
        if name and not CAMEL.match(name.group(1)):
            bad.append(f"{rel}:{line_of(text, i)}: type {name.group(1)} is not CamelCase")
    for m in FUNC.finditer(text):
        if not m.group(1).endswith("_handler_t"):
            bad.append(f"{rel}:{line_of(text, m.start())}: callback type {m.group(1)} does not end in _handler_t")
    if path.suffix == ".h":
        for m in PROTO.finditer(text):
            params = [p.strip() for p in m.group(2).split(",")]
            rets = [k for k, p in enumerate(params) if RET.search(p)]
            # Several ret_* outputs are fine as long as they close the list.
            if rets and rets != list(range(len(params) - len(rets), len(params))):
                bad.append(f"{rel}:{line_of(text, m.start())}: {m.group(1)}() has its ret parameter before others")
    return bad


FREE = re.compile(r"^(\w+) \*(\w+_(?:free|unref))\(\1 \*\w*\);", re.M)


def check_cleanup(paths):
    text = "".join(p.read_text() for p in paths)
    bad = []
    for p in paths:
        for m in FREE.finditer(p.read_text()):
            if not re.search(rf"DEFINE_TRIVIAL_CLEANUP_FUNC\(\s*{m.group(1)} \*,\s*{m.group(2)}\)", text):
                bad.append(f"{p.relative_to(ROOT)}: {m.group(2)}() has no DEFINE_TRIVIAL_CLEANUP_FUNC")
    return bad


def main():
    bad = []
    paths = sorted((ROOT / "agent").glob("*.[ch]"))
    for path in paths:
        bad += check(path)
    bad += check_cleanup(paths)
    for b in bad:
        print(b)
    if not bad:
        print("agent/: CamelCase types, callbacks end in _handler_t, ret parameters last, "
              "every *_free()/*_unref() has its cleanup helper")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
