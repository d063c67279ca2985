#!/usr/bin/python3
"""Drives a U2F-only (CTAP1) authenticator on a PC/SC reader with
python-fido2 (Debian's python3-fido2 0.9.1), a client authbench did not
write.

usage: fido2_pcsc_u2f.py READER [ROUNDS]

python-fido2 selects the FIDO applet and probes getInfo; a card whose SELECT
answers U2F_V2 and whose getInfo fails is a U2F-only device (no CBOR
capability). Then: U2F_VERSION, U2F_REGISTER checked with python-fido2's own
verifier, a check-only U2F_AUTHENTICATE of the new key handle (answered
6985, "known"), and ROUNDS U2F_AUTHENTICATE calls, checking each signature
and that the counter increases. Prints one JSON object with what it saw;
exits non-zero on any failure.
"""
import hashlib
import json
import sys

from fido2.ctap1 import APDU, ApduError, Ctap1
from fido2.hid import CAPABILITY
from fido2.pcsc import CtapPcscDevice


def main():
    reader = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    devs = [d for d in CtapPcscDevice.list_devices(reader)]
    if not devs:
        raise SystemExit("no FIDO device on reader %r" % reader)
    dev = devs[0]
    cbor = bool(dev.capabilities & CAPABILITY.CBOR)
    ctap1 = Ctap1(dev)
    version = ctap1.get_version()

    app = hashlib.sha256(b"interop.authbench.test").digest()
    cp = hashlib.sha256(b"authbench interop u2f registration").digest()
    reg = ctap1.register(cp, app)
    reg.verify(app, cp)

    try:
        ctap1.authenticate(cp, app, reg.key_handle, check_only=True)
        raise SystemExit("check-only authenticate signed")
    except ApduError as e:
        if e.code != APDU.USE_NOT_SATISFIED:
            raise SystemExit("check-only authenticate answered %04X, want 6985" % e.code)

    counters = []
    for i in range(rounds):
        h = hashlib.sha256(b"authbench interop u2f login %d" % i).digest()
        sig = ctap1.authenticate(h, app, reg.key_handle)
        sig.verify(app, h, reg.public_key)
        if not sig.user_presence & 1:
            raise SystemExit("user presence bit clear")
        counters.append(sig.counter)
    if any(b <= a for a, b in zip(counters, counters[1:])):
        raise SystemExit("counter did not increase: %r" % counters)

    print(json.dumps({
        "cbor": cbor,
        "version": version,
        "key_handle": reg.key_handle.hex(),
        "certificate": reg.certificate.hex(),
        "counters": counters,
    }))


if __name__ == "__main__":
    main()
