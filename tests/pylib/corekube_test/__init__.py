# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the Python test suites (tests/*/): polling with a
deadline, processes, network namespaces, a real etcd, HTTP requests off a
raw socket and the nspawn bed (tests/bed/bed.sh). meson puts tests/pylib on
PYTHONPATH for every suite."""
