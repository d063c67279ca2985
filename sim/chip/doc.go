// Package chip simulates a MitID chip: a FIDO security key with a button and
// no PIN, that speaks CTAP 2.1 and U2F (CTAP1), or only one of them
// (Options.Profile: ProfileFIDO2, ProfileU2F, ProfileCTAP2Only). It is
// device logic only; the
// wire protocols come from the device packages, so the same chip serves
// in-process callers (it implements device.Chip and its optional
// interfaces, and u2f.Authenticator), CTAPHID (ctaphid.Serve, over a pipe or
// UDP) and ISO 7816 (apdu.NewCard, in-process or through pcscd and vpcd),
// through ServeCTAP2 and ServeU2F.
//
// What it implements:
//   - CTAP 2.1 §6.1 authenticatorMakeCredential (ES256; resident keys;
//     excludeList; "packed" attestation with an x5c chain from a test CA, or
//     "none"), §6.2 authenticatorGetAssertion, §6.3
//     authenticatorGetNextAssertion, §6.4 authenticatorGetInfo, §6.6
//     authenticatorReset (within 10 s of power-up, after a touch) and §6.9
//     authenticatorSelection, with the status codes of §8.2.
//   - FIDO U2F Raw Message Formats v1.2 §4 registration and §5
//     authentication; credentials are shared with CTAP2 (CTAP 2.1 §10.3).
//   - Profiles, as real keys come: a U2F-only chip reports its protocols
//     (device.ProtocolReporter), so ctaphid.Serve leaves CBOR out of its
//     CTAPHID_INIT capabilities and answers CTAPHID_CBOR with
//     ERR_INVALID_CMD, and apdu.NewCard answers SELECT with "U2F_V2" and
//     NFCCTAP_MSG with 6D00. A FIDO2 chip's SELECT answers "U2F_V2" too
//     (CTAP 2.1 §11.3.3); only a CTAP2-only one answers "FIDO_2_0".
//   - Attestation like real keys (Options.Attestation): the AAGUID names the
//     model, the same for every chip of a profile (Profile.AAGUID); by
//     default the chip signs with its model's batch key, certified by a
//     batch certificate without a serial number (WebAuthn §8.2.1, FIDO's
//     privacy rules). AttestationSerial gives the chip a certificate of its
//     own with its serial number; AttestationSelf and AttestationNone give
//     self attestation and "none".
//
// Determinism: everything secret or identifying (serial, a serial
// attestation key, each credential's key pair and ID) is derived with
// HKDF-SHA256 from Options.Seed, so tests get the same chip every run; a
// model's batch key is derived from the model's name, and its certificate
// is signed deterministically (RFC 6979). Other signatures are ECDSA and so
// differ each time, as on real hardware, unless
// Options.DeterministicSignatures asks for RFC 6979 (cheaper, for load
// generators).
//
// Presence: Options.Presence is what the simulated user does (Auto, Delay,
// Deny, Never, Manual with Chip.Touch); Options.PresenceFunc scripts it per
// request. A CTAP2 request waiting for a touch reports ctap2.StatusUPNeeded
// through ctap2.Keepalive and ends with CTAP2_ERR_KEEPALIVE_CANCEL when its
// context does. U2F requests do not wait (they answer 6985, "touch needed",
// and the host retries), except under Delay.
//
// Attestation CA: the default CA is the authbench TEST attestation CA,
// embedded from testca/ and also committed as testdata/attestation/ca.pem
// (certificate) and ca-key.pem (key) for servers that trust simulated chips.
// Its private key is public: never trust it in production. Regenerate it
// with
//
//	go test ./sim/chip -run TestGenerateCA -update
//
// State: Save and Load write and read the chip as JSON, private keys
// included (it is a simulator); Open keeps a chip in a file across restarts.
// Restoring an old copy gives a clone whose counters go backwards.
//
// Faults (Options.Faults) make the chip break specific rules, so that the
// conformance suite and the server can be shown to catch them.
package chip
