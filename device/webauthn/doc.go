// Package webauthn is the one place the tree speaks W3C Web Authentication
// Level 3: the JSON forms of the options a relying party sends and of the
// credentials a browser returns (§5.1, §5.4, §5.5), client data (§5.8.1,
// NewClientData and ParseClientData), the attestation object (§6.5.4,
// EncodeAttestationObject and ParseAttestationObject), the client
// platform's part of a ceremony with a chip (§5.1.3 Create, §5.1.4 Get),
// and the relying party's checks of a registration (§7.1) and an
// authentication (§7.2), RelyingParty.
//
// # Where it sits
//
// WebAuthn is the protocol above CTAP 2.1 (device/ctap2): its client data
// is hashed into every CTAP request and its relying party verifies what a
// chip signed. Both sides of the tree use it: device/devicetest verifies a
// chip's attestation with it, server/client drives a chip through the
// server's ceremonies with it (as a browser would), and server/service
// verifies what browsers and clients send with it. It therefore lives with
// the protocol packages under device/ and imports nothing of server/; a
// place under server/ would make the device layer import the server.
//
// # go-webauthn
//
// The relying party's verification runs on github.com/go-webauthn/webauthn
// (its protocol package), the Go relying party library: for a
// registration, it parses the response, verifies the client data and the
// authenticator data again, checks the credential key's algorithm against
// the offered ones, verifies the attestation statement (packed with x5c or
// self attestation, fido-u2f, none) and consults the metadata provider;
// for an authentication, it parses the response, repeats the checks of
// §7.2 and verifies the signature with the stored credential key.
//
// Before that, this package checks itself what the caller must be able to
// tell apart and explain: the members and their sizes (ErrInvalid), the
// client data's type, challenge, origin and cross-origin flags, the RP ID
// hash, user presence, and the backup flags (ErrMismatch, with the check's
// name), the accepted statement formats, and whether the attestation is
// trusted: an x5c chain to Config.Roots at Config.Now, or to the roots of
// the authenticator's metadata entry (ErrUntrusted). go-webauthn leaves
// that trust assessment to its caller (without a metadata provider it
// checks no chain), and its errors are copies that errors.Is cannot
// match, which is why they are turned into this package's *Error.
// Whether a credential ID is registered already, and the signature counter
// (§6.1.1, the cloned-chip signal), are for the caller, who holds the
// stored credentials.
//
// # Cost
//
// BenchmarkRelyingParty (CPU time per call, internal/cputime) takes a chip
// assertion apart: this package's own checks cost about 2 µs, and
// go-webauthn's parse and verify about 7 µs more than device/ctap2's
// direct signature check (it parses the response and the COSE key again
// and checks the point twice). server/service's BenchmarkVerify, run
// before and after the move: an assertion costs 1.23 raw ECDSA P-256
// verifications (75 µs) where the hand-written verification it replaced
// cost 1.08 (68 µs); a registration 3.0 (185 µs) where it cost 2.6
// (156 µs). On the login path that is a few percent of even the minimal
// durable login (authbench load) and far less of a measured one
// (BenchmarkChipLogin, http/seq: about 2 ms of CPU per login on the
// 2-core machine), so go-webauthn verifies the signature too, in one
// verification path. Should the §7 ratio of chip logins ever get tight,
// verifying the signature with device/ctap2 after this package's checks
// would save those 7 µs a login.
//
// A registration's attestation certificate chain is verified once per
// chain, not once per registration: the RelyingParty keeps the chains that
// verified (at most 512, by the exact DER of the chain and the trust
// anchors, each answering only while every certificate of its verified
// path is valid), so the chips of one batch, which all present the batch
// certificate, share one x509 verification. The statement's signature is
// verified for every registration. BenchmarkRelyingParty/registration
// against registration/uncached-chain: about 1.8 raw ECDSA P-256
// verifications of CPU instead of 3.3, 197 allocations instead of 319.
//
// # Metadata (MDS3)
//
// For real keys, Config.Metadata takes a go-webauthn metadata.Provider. A
// provider from the FIDO Metadata Service BLOB (a JWT downloaded from
// https://mds3.fidoalliance.org/) is built with go-webauthn's own
// packages:
//
//	dec, _ := metadata.NewDecoder() // verifies the BLOB with the FIDO root
//	payload, err := dec.DecodeBytes(blob)
//	mds, err := dec.Parse(payload)
//	p, err := memory.New(memory.WithMetadata(mds.ToMap()),
//		memory.WithValidateEntry(false)) // false: also keys the BLOB does not list
//
// With it, a registration is refused when the authenticator's entry
// reports it compromised or revoked, and an attestation that chains to
// the entry's attestation roots is trusted without listing them in Roots.
//
// # Errors
//
// Every refusal of the relying party is an *Error whose Err is ErrInvalid,
// ErrMismatch or ErrUntrusted; Reason is a sentence for a person and Check
// names the failed check.
package webauthn
