package chip

import (
	"crypto/sha256"
	"fmt"

	"github.com/authbench/authbench/device"
)

// Profile is what a simulated chip speaks, as real keys come:
// each profile is a model of its own, with its own AAGUID and batch
// attestation certificate. The zero value is ProfileFIDO2.
type Profile int

// The profiles.
const (
	// ProfileFIDO2 speaks CTAP 2.1 and U2F (CTAP1): SELECT answers
	// "U2F_V2" (CTAP 2.1 §11.3.3), CTAPHID_INIT announces CBOR.
	ProfileFIDO2 Profile = iota
	// ProfileU2F speaks U2F only, as many MitID chips do (MitID reports
	// them as "u2f_token"): SELECT answers "U2F_V2", NFCCTAP_MSG 6D00,
	// CTAPHID_INIT announces no CBOR and CTAPHID_CBOR answers
	// ERR_INVALID_CMD. Hosts drive it through CTAP 2.1 §10. Its
	// authenticator data carries no AAGUID (U2F has none).
	ProfileU2F
	// ProfileCTAP2Only speaks CTAP 2.1 without U2F: SELECT answers
	// "FIDO_2_0", CTAPHID_INIT announces NMSG, U2F requests answer 6D00.
	ProfileCTAP2Only
)

// ParseProfile parses "fido2", "u2f" or "ctap2" (String's names).
func ParseProfile(s string) (Profile, error) {
	for p := ProfileFIDO2; p <= ProfileCTAP2Only; p++ {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("chip: unknown profile %q: want fido2, u2f or ctap2", s)
}

// String returns "fido2", "u2f" or "ctap2".
func (p Profile) String() string {
	switch p {
	case ProfileFIDO2:
		return "fido2"
	case ProfileU2F:
		return "u2f"
	case ProfileCTAP2Only:
		return "ctap2"
	}
	return fmt.Sprintf("profile(%d)", int(p))
}

// valid reports whether p is one of the profiles.
func (p Profile) valid() bool { return p >= ProfileFIDO2 && p <= ProfileCTAP2Only }

// Protocols returns the protocols of the profile.
func (p Profile) Protocols() device.Protocols {
	switch p {
	case ProfileU2F:
		return device.ProfileU2FOnly
	case ProfileCTAP2Only:
		return device.ProfileCTAP2Only
	}
	return device.ProfileFIDO2
}

// Model returns the product name of the profile's model, the CN of its
// attestation certificates.
func (p Profile) Model() string {
	switch p {
	case ProfileU2F:
		return "authbench simulated MitID chip U2F"
	case ProfileCTAP2Only:
		return "authbench simulated MitID chip CTAP2"
	}
	return "authbench simulated MitID chip"
}

// AAGUID returns the AAGUID of the profile's model (WebAuthn §6.5.1): the
// same for every chip of the model, as FIDO's privacy rules have it (an
// AAGUID names a model, never one key). The U2F model has none (all zeros):
// U2F cannot report one, and its attestation certificates do not carry the
// id-fido-gen-ce-aaguid extension.
func (p Profile) AAGUID() [16]byte {
	var a [16]byte
	if p == ProfileU2F {
		return a
	}
	h := sha256.Sum256([]byte("authbench model AAGUID: " + p.Model()))
	copy(a[:], h[:16])
	a[6] = a[6]&0x0f | 0x40 // a random (version 4) UUID, RFC 9562 §5.4
	a[8] = a[8]&0x3f | 0x80
	return a
}

// Attestation is the kind of attestation a simulated chip gives. The zero
// value is AttestationBatch.
type Attestation int

// The kinds of attestation.
const (
	// AttestationBatch signs with the model's batch attestation key,
	// certified by a batch certificate that every chip of the model shares
	// and that names no chip (no serial number), as FIDO's privacy rules
	// ask of real keys: "packed" with x5c for CTAP2, the batch certificate
	// for U2F.
	AttestationBatch Attestation = iota
	// AttestationSerial signs with a key of the chip's own, certified by a
	// certificate that carries the chip's serial number (subject
	// serialNumber): what enterprise-attested keys do, and what a bench
	// may want to trace one chip.
	AttestationSerial
	// AttestationSelf signs with the new credential's own key: "packed"
	// self attestation without x5c (WebAuthn §8.2) for CTAP2, and a
	// self-signed certificate of the credential key for U2F. Nothing
	// chains to a CA.
	AttestationSelf
	// AttestationNone answers makeCredential with the "none" format
	// (WebAuthn §8.7). U2F registrations have no such choice (FIDO U2F Raw
	// Message Formats §4.3 always carries a certificate): a FIDO2 chip's
	// U2F side keeps the batch certificate, and a U2F-only chip cannot be
	// made with it.
	AttestationNone
)

// ParseAttestation parses "batch", "serial", "self" or "none" (String's
// names).
func ParseAttestation(s string) (Attestation, error) {
	for a := AttestationBatch; a <= AttestationNone; a++ {
		if s == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("chip: unknown attestation %q: want batch, serial, self or none", s)
}

// String returns "batch", "serial", "self" or "none".
func (a Attestation) String() string {
	switch a {
	case AttestationBatch:
		return "batch"
	case AttestationSerial:
		return "serial"
	case AttestationSelf:
		return "self"
	case AttestationNone:
		return "none"
	}
	return fmt.Sprintf("attestation(%d)", int(a))
}

func (a Attestation) valid() bool { return a >= AttestationBatch && a <= AttestationNone }
