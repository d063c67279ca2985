#!/usr/bin/python3
"""Drives a CTAP2 authenticator on a PC/SC reader with python-fido2 (Debian's
python3-fido2 0.9.1), a client authbench did not write.

usage: fido2_pcsc.py READER [ROUNDS]

Runs getInfo, makeCredential (packed attestation expected), checks the
attestation signature with python-fido2's own verifier, then ROUNDS
getAssertion calls, checking each signature against the credential's public
key and that the sign counter increases. Prints one JSON object with what it
saw; exits non-zero on any failure.
"""
import hashlib
import json
import sys
import time

from fido2.attestation import Attestation
from fido2.ctap2 import Ctap2
from fido2.pcsc import CtapPcscDevice


def main():
    reader = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    devs = [d for d in CtapPcscDevice.list_devices(reader)]
    if not devs:
        raise SystemExit("no FIDO device on reader %r" % reader)
    ctap = Ctap2(devs[0])
    info = ctap.get_info()

    cdh = hashlib.sha256(b"authbench interop registration").digest()
    rp = {"id": "interop.authbench.test", "name": "authbench interop"}
    user = {"id": b"interop-user-1", "name": "interop"}
    att = ctap.make_credential(cdh, rp, user, [{"type": "public-key", "alg": -7}])
    verifier = Attestation.for_type(att.fmt)()
    verifier.verify(att.att_statement, att.auth_data, cdh)
    cred = att.auth_data.credential_data
    public_key = cred.public_key

    counters = []
    start = time.perf_counter()
    for i in range(rounds):
        h = hashlib.sha256(b"authbench interop login %d" % i).digest()
        a = ctap.get_assertion(rp["id"], h, [{"type": "public-key", "id": cred.credential_id}])
        a.verify(h, public_key)
        counters.append(a.auth_data.counter)
    elapsed = time.perf_counter() - start
    if any(b <= a for a, b in zip(counters, counters[1:])):
        raise SystemExit("sign counter did not increase: %r" % counters)

    print(json.dumps({
        "versions": info.versions,
        "aaguid": info.aaguid.hex(),
        "fmt": att.fmt,
        "x5c": len(att.att_statement.get("x5c", [])),
        "credential_id": cred.credential_id.hex(),
        "counters": counters[:3] + counters[-1:],
        "assertions": rounds,
        "seconds": elapsed,
    }))


if __name__ == "__main__":
    main()
