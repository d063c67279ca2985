package device

import (
	"slices"
	"strings"
)

// Protocols is the set of chip protocols an authenticator speaks. Real keys
// come in profiles: U2F-only (CTAP1; MitID reports such a chip as
// "u2f_token"), FIDO2 (CTAP 2.x and U2F) and, rarely, CTAP2-only.
type Protocols uint8

// The chip protocols.
const (
	// ProtocolU2F is FIDO U2F (CTAP1): U2F_REGISTER, U2F_AUTHENTICATE and
	// U2F_VERSION (FIDO U2F Raw Message Formats v1.2).
	ProtocolU2F Protocols = 1 << iota
	// ProtocolCTAP2 is the CTAP 2.x authenticator API (CTAP 2.1 §6).
	ProtocolCTAP2
)

// The three profiles.
const (
	ProfileU2FOnly   = ProtocolU2F                 // "U2F-only"
	ProfileFIDO2     = ProtocolU2F | ProtocolCTAP2 // "FIDO2"
	ProfileCTAP2Only = ProtocolCTAP2               // "CTAP2-only"
)

// ProtocolReporter is implemented by authenticators that know their
// protocols: a simulated chip (the device-side transports, ctaphid.Serve and
// apdu.Card, ask it what to announce), and drivers that found out what the
// key speaks.
type ProtocolReporter interface {
	Protocols() Protocols
}

// Has reports whether p includes every protocol of q.
func (p Protocols) Has(q Protocols) bool { return p&q == q }

// String names the profile: "FIDO2", "U2F-only", "CTAP2-only", or "none".
func (p Protocols) String() string {
	switch p {
	case ProfileFIDO2:
		return "FIDO2"
	case ProfileU2FOnly:
		return "U2F-only"
	case ProfileCTAP2Only:
		return "CTAP2-only"
	}
	return "none"
}

// Describe says what the profile means, for reports: "FIDO2 (CTAP 2.x and
// U2F)", "U2F-only (CTAP1)", "CTAP2-only (no U2F)".
func (p Protocols) Describe() string {
	switch p {
	case ProfileFIDO2:
		return "FIDO2 (CTAP 2.x and U2F)"
	case ProfileU2FOnly:
		return "U2F-only (CTAP1)"
	case ProfileCTAP2Only:
		return "CTAP2-only (no U2F)"
	}
	return "none (neither CTAP 2.x nor U2F)"
}

// ProtocolsOf derives the protocols from the versions of an
// authenticatorGetInfo answer (CTAP 2.1 §6.4): "U2F_V2" for U2F, any
// "FIDO_2_..." version for CTAP2.
func ProtocolsOf(versions []string) Protocols {
	var p Protocols
	if slices.Contains(versions, "U2F_V2") {
		p |= ProtocolU2F
	}
	for _, v := range versions {
		if strings.HasPrefix(v, "FIDO_2_") {
			p |= ProtocolCTAP2
		}
	}
	return p
}
