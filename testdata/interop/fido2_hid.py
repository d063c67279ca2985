#!/usr/bin/python3
"""Drives a CTAP2 authenticator on hidraw with python-fido2 (Debian's
python3-fido2 0.9.1), a client authbench did not write.

usage: fido2_hid.py register [ROUNDS]
       fido2_hid.py wait

register: finds the FIDO hidraw devices, runs getInfo, makeCredential
(packed attestation expected), checks the attestation signature with
python-fido2's own verifier, then ROUNDS getAssertion calls, checking each
signature against the credential's public key and that the sign counter
increases. Prints one JSON object with what it saw; exits non-zero on any
failure.

wait: sends makeCredential and waits for the key (which should be waiting for
a touch that never comes), then prints one JSON object saying how the wait
ended: {"error": "...", "errno": N} when the device failed.
"""
import hashlib
import json
import sys

from fido2.attestation import Attestation
from fido2.ctap2 import Ctap2
from fido2.hid import CtapHidDevice

RP = {"id": "interop.authbench.test", "name": "authbench interop"}
USER = {"id": b"interop-user-1", "name": "interop"}
ES256 = [{"type": "public-key", "alg": -7}]


def device():
    devs = list(CtapHidDevice.list_devices())
    if not devs:
        raise SystemExit("no FIDO hidraw device")
    return devs[0]


def register(rounds):
    dev = device()
    ctap = Ctap2(dev)
    info = ctap.get_info()
    cdh = hashlib.sha256(b"authbench interop registration").digest()
    att = ctap.make_credential(cdh, RP, USER, ES256)
    Attestation.for_type(att.fmt)().verify(att.att_statement, att.auth_data, cdh)
    cred = att.auth_data.credential_data
    counters = []
    for i in range(rounds):
        h = hashlib.sha256(b"authbench interop login %d" % i).digest()
        a = ctap.get_assertion(RP["id"], h, [{"type": "public-key", "id": cred.credential_id}])
        a.verify(h, cred.public_key)
        counters.append(a.auth_data.counter)
    if any(b <= a for a, b in zip(counters, counters[1:])):
        raise SystemExit("sign counter did not increase: %r" % counters)
    print(json.dumps({
        "path": dev.descriptor.path,
        "vid": dev.descriptor.vid,
        "pid": dev.descriptor.pid,
        "versions": info.versions,
        "aaguid": info.aaguid.hex(),
        "fmt": att.fmt,
        "x5c": len(att.att_statement.get("x5c", [])),
        "counters": counters,
    }))


def wait():
    dev = device()
    print(json.dumps({"waiting": dev.descriptor.path}), flush=True)
    cdh = hashlib.sha256(b"authbench interop wait").digest()
    try:
        Ctap2(dev).make_credential(cdh, RP, USER, ES256)
    except OSError as e:
        print(json.dumps({"error": str(e), "errno": e.errno}))
        return
    except Exception as e:  # a CTAP error: the key answered
        print(json.dumps({"error": repr(e), "errno": 0}))
        return
    print(json.dumps({"error": "", "errno": 0}))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "register":
        register(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    elif len(sys.argv) == 2 and sys.argv[1] == "wait":
        wait()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
