#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A static checker for the Heat templates in heat/ (no Heat engine here):

  - heat_template_version is a version Heat knows, and every intrinsic
    function used exists in it;
  - every get_param names a parameter, every get_resource / get_attr /
    depends_on a resource; every parameter is used;
  - each user_data is str_replace over get_file of a file in cloud-config/
    (so what boots is exactly the shipped, tested file); its params fill
    every %token% of that file and nothing else.

    heat_check.py TEMPLATE...     prints the problems, exit 1 if any
"""
import os
import re
import sys

import yaml

# The HOT versions and the functions each adds (cumulative; see the Heat
# template guide). Only the functions that matter here are listed.
VERSIONS = [
    ("2013-05-23", {"get_attr", "get_file", "get_param", "get_resource", "list_join",
                    "resource_facade", "str_replace", "Fn::Select", "Fn::Base64", "Fn::GetAZs",
                    "Fn::MemberListToMap", "Fn::Replace", "Fn::ResourceFacade"}),
    ("2014-10-16", set()),
    ("2015-04-30", {"repeat", "digest"}),
    ("2015-10-15", {"str_split"}),
    ("2016-04-08", {"map_merge"}),
    ("2016-10-14", {"yaql", "equals", "if", "not", "and", "or", "map_replace"}),
    ("2017-02-24", {"str_replace_strict"}),
    ("2017-09-01", {"make_url", "list_concat", "contains", "str_replace_vstrict"}),
    ("2018-03-02", {"list_concat_unique"}),
    ("2018-08-31", {"filter"}),
    ("2021-04-16", {"if"}),
]
ALIASES = {"newton": "2016-10-14", "ocata": "2017-02-24", "pike": "2017-09-01",
           "queens": "2018-03-02", "rocky": "2018-08-31", "wallaby": "2021-04-16"}
# Functions removed from HOT in 2014-10-16 (CFN-style ones).
REMOVED_2014 = {"Fn::Select", "Fn::Base64", "Fn::GetAZs", "Fn::MemberListToMap", "Fn::Replace",
                "Fn::ResourceFacade"}
ALL_FUNCTIONS = set().union(*(f for _, f in VERSIONS))
TOKEN = re.compile(r"%[a-z0-9_]+%")


def functions_of(version):
    version = ALIASES.get(version, version)
    known = [v for v, _ in VERSIONS]
    if version not in known:
        return None
    funcs = set()
    for v, f in VERSIONS:
        funcs |= f
        if v == version:
            break
    if version >= "2014-10-16":
        funcs -= REMOVED_2014
    return funcs


def walk(node, path=()):
    """Yields (path, function name, argument) for every intrinsic call."""
    if isinstance(node, dict):
        if len(node) == 1:
            (k, v), = node.items()
            if k in ALL_FUNCTIONS:
                yield path, k, v
        for k, v in node.items():
            yield from walk(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (str(i),))


def check(path):
    problems = []
    base = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        t = yaml.safe_load(f)

    def bad(msg):
        problems.append(f"{path}: {msg}")

    if not isinstance(t, dict):
        return [f"{path}: not a mapping"]
    version = str(t.get("heat_template_version", ""))
    funcs = functions_of(version)
    if funcs is None:
        bad(f"heat_template_version '{version}' is not a HOT version")
        funcs = ALL_FUNCTIONS
    unknown = set(t) - {"heat_template_version", "description", "parameter_groups", "parameters",
                        "resources", "outputs", "conditions"}
    if unknown:
        bad(f"unknown top-level sections {sorted(unknown)}")
    params = t.get("parameters") or {}
    resources = t.get("resources") or {}
    if not resources:
        bad("no resources")
    for name, p in params.items():
        if not isinstance(p, dict) or p.get("type") not in ("string", "number", "json",
                                                            "comma_delimited_list", "boolean"):
            bad(f"parameter {name}: missing or invalid type")
    used = set()
    for where, fn, arg in walk({"resources": resources, "outputs": t.get("outputs") or {}}):
        loc = "/".join(where)
        if fn not in funcs:
            bad(f"{loc}: {fn} is not available in HOT {version}")
        if fn == "get_param":
            name = arg[0] if isinstance(arg, list) else arg
            used.add(name)
            if name not in params:
                bad(f"{loc}: get_param {name}: no such parameter")
        elif fn == "get_resource":
            if arg not in resources:
                bad(f"{loc}: get_resource {arg}: no such resource")
        elif fn == "get_attr":
            if not isinstance(arg, list) or len(arg) < 2 or arg[0] not in resources:
                bad(f"{loc}: get_attr {arg}: no such resource")
        elif fn == "get_file":
            if not os.path.isfile(os.path.join(base, arg)):
                bad(f"{loc}: get_file {arg}: no such file")
    for name, r in resources.items():
        if not isinstance(r, dict) or "type" not in r:
            bad(f"resource {name}: no type")
            continue
        deps = r.get("depends_on", [])
        for d in [deps] if isinstance(deps, str) else deps:
            if d not in resources:
                bad(f"resource {name}: depends_on {d}: no such resource")
    for name in sorted(set(params) - used):
        bad(f"parameter {name} is never used")
    for name, o in (t.get("outputs") or {}).items():
        if not isinstance(o, dict) or "value" not in o:
            bad(f"output {name}: no value")
    problems += check_user_data(path, base, resources)
    return problems


def servers(resources):
    for name, r in resources.items():
        if r.get("type") == "OS::Nova::Server":
            yield name, r.get("properties") or {}
        elif r.get("type") == "OS::Heat::ResourceGroup":
            d = (r.get("properties") or {}).get("resource_def") or {}
            if d.get("type") == "OS::Nova::Server":
                yield name, d.get("properties") or {}


def check_user_data(path, base, resources):
    problems = []
    n = 0
    for name, props in servers(resources):
        n += 1
        ud = props.get("user_data")
        sr = ud.get("str_replace") if isinstance(ud, dict) else None
        tmpl = sr.get("template") if isinstance(sr, dict) else None
        if not (isinstance(tmpl, dict) and "get_file" in tmpl):
            problems.append(f"{path}: {name}: user_data is not str_replace over get_file of a cloud-config file")
            continue
        f = os.path.normpath(os.path.join(base, tmpl["get_file"]))
        if os.path.basename(os.path.dirname(f)) != "cloud-config":
            problems.append(f"{path}: {name}: user_data {f} is not in cloud-config/")
            continue
        if props.get("user_data_format") != "RAW":
            problems.append(f"{path}: {name}: user_data_format must be RAW (cloud-init reads it)")
        try:
            with open(f) as fh:
                text = fh.read()
        except OSError as e:
            problems.append(f"{path}: {name}: {e}")
            continue
        tokens = set(TOKEN.findall(text))
        given = set((sr.get("params") or {}).keys())
        for tok in sorted(tokens - given):
            problems.append(f"{path}: {name}: {os.path.basename(f)} needs {tok}, not in params")
        for tok in sorted(given - tokens):
            problems.append(f"{path}: {name}: param {tok} does not occur in {os.path.basename(f)}")
    if n == 0:
        problems.append(f"{path}: no servers")
    return problems


def main(argv):
    problems = []
    for p in argv:
        problems += check(p)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
