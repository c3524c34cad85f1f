# SPDX-License-Identifier: Apache-2.0
"""The ID that names a node in etcd: sd_id128_get_machine_app_specific(3)
with corekube's application ID (agent/machine-id.h). HMAC-SHA256 of the
application ID keyed by the machine ID, the first 16 bytes made a v4 UUID;
checked against `systemd-id128 machine-id --app-specific=` in
tests/agent/test_identity.py."""

import hashlib
import hmac

APP_ID = "2b73a5810154441295e0f78fcfc47535"


def app_specific(machine_id, app_id=APP_ID):
    """32 hex digits, from the 32 hex digits of /etc/machine-id."""
    h = bytearray(hmac.new(bytes.fromhex(machine_id.strip()), bytes.fromhex(app_id), hashlib.sha256).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    return h.hex()
