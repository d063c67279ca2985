package webauthn

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/authbench/authbench/device/ctap2"
)

// What the relying party asks of a chip, in every ceremony: attestation
// ("direct", so that trust can be assessed) and no user verification (a
// MitID chip has a button, no PIN; the password is the other factor).
const (
	attestationConveyance = "direct"
	userVerification      = "discouraged"
)

// Config configures a RelyingParty. The zero value of every field but ID
// is a usable default.
type Config struct {
	// ID is the RP ID (WebAuthn Level 3 §5.1.2, a registrable domain
	// suffix of the origins; "localhost" for a local server). Required.
	ID string
	// Name is the relying party's name shown by the browser; default ID.
	Name string
	// Origins are the origins accepted in client data, each
	// scheme://host[:port] exactly as a browser serialises it (e.g.
	// "https://mitid.example", "http://localhost:8080"); default
	// "https://" + ID.
	Origins []string
	// Roots are the CAs an attestation certificate must chain to (through
	// the intermediates of x5c) for the attestation to be trusted. Nil
	// trusts no certificate chain. New takes a copy: adding to the pool
	// later does not change what the RelyingParty trusts.
	Roots *x509.CertPool
	// Metadata is a FIDO Metadata Service (MDS3) provider of go-webauthn
	// (github.com/go-webauthn/webauthn/metadata), for real keys: when set,
	// go-webauthn checks every attestation against the authenticator's
	// metadata entry (its status reports, e.g. REVOKED or
	// ATTESTATION_KEY_COMPROMISE, its attestation types and, as the
	// provider says, its trust anchors), and an attestation that chains to
	// the attestation root certificates of its entry is trusted like one
	// that chains to Roots. See the package documentation for building one
	// from an MDS3 BLOB. Nil uses no metadata.
	Metadata metadata.Provider
	// AllowUntrusted accepts registrations whose attestation is not
	// trusted ("none", self attestation, or a chain to no trusted root);
	// Registration.Trusted says which they were. By default they are
	// refused with ErrUntrusted.
	AllowUntrusted bool
	// AllowBackupEligible accepts credentials whose authenticator data has
	// the BE flag (WebAuthn Level 3 §6.1.3, a passkey that may be synced
	// off the authenticator). By default they are refused with
	// ErrUntrusted: a chip keeps its key.
	AllowBackupEligible bool
	// Algorithms are the COSE algorithms offered in pubKeyCredParams and
	// accepted for a credential key, in order of preference; default
	// ES256, EdDSA.
	Algorithms []int64
	// Now is the clock for attestation certificate chains; nil means
	// time.Now. (go-webauthn checks the validity period of the attestation
	// certificate itself against time.Now.)
	Now func() time.Time
}

// RelyingParty runs the relying party's part of WebAuthn Level 3: the
// options of a registration (§5.4) and an authentication (§5.5), and the
// verification of their responses (§7.1, §7.2). It is safe for concurrent
// use.
type RelyingParty struct {
	id             string
	name           string
	rpIDHash       [32]byte
	origins        []string
	trust          Trust
	allowUntrusted bool
	allowBE        bool
	algs           []int64
	params         []protocol.CredentialParameter
}

// New returns a RelyingParty for c. It returns an error wrapping
// ErrInvalid when c.ID is empty or an origin is not scheme://host[:port].
func New(c Config) (*RelyingParty, error) {
	if c.ID == "" {
		return nil, invalidf("the relying party needs an RP ID")
	}
	rp := &RelyingParty{
		id:             c.ID,
		name:           c.Name,
		rpIDHash:       ctap2.RPIDHash(c.ID),
		trust:          Trust{Metadata: c.Metadata, Now: c.Now, chains: newChainCache(maxCachedChains)},
		allowUntrusted: c.AllowUntrusted,
		allowBE:        c.AllowBackupEligible,
		algs:           slices.Clone(c.Algorithms),
	}
	if c.Roots != nil {
		// A copy of its own, so that a cached verification cannot outlive
		// a change of the pool (chainCache).
		rp.trust.Roots = c.Roots.Clone()
		rp.trust.roots = privateAnchors(rp.trust.Roots)
	}
	if rp.name == "" {
		rp.name = c.ID
	}
	origins := c.Origins
	if len(origins) == 0 {
		origins = []string{"https://" + c.ID}
	}
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
			return nil, invalidf("origin %q is not scheme://host[:port]", o)
		}
		rp.origins = append(rp.origins, strings.TrimSuffix(o, "/"))
	}
	if len(rp.algs) == 0 {
		rp.algs = []int64{AlgES256, AlgEdDSA}
	}
	for _, a := range rp.algs {
		rp.params = append(rp.params, protocol.CredentialParameter{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.COSEAlgorithmIdentifier(a)})
	}
	return rp, nil
}

// ID returns the RP ID.
func (rp *RelyingParty) ID() string { return rp.id }

// CreationOptions returns the options of a registration (WebAuthn Level 3
// §5.4) for user with challenge: the configured algorithms, "direct"
// attestation, no user verification, and exclude as excludeCredentials
// (the user's credentials the authenticator must not register again). A
// timeout of 0 leaves it to the browser.
func (rp *RelyingParty) CreationOptions(challenge []byte, user UserEntity, exclude []CredentialDescriptor, timeout time.Duration) CreationOptions {
	o := CreationOptions{
		Challenge:              Encode(challenge),
		RP:                     RPEntity{ID: rp.id, Name: rp.name},
		User:                   user,
		Timeout:                timeout.Milliseconds(),
		ExcludeCredentials:     append([]CredentialDescriptor{}, exclude...),
		Attestation:            attestationConveyance,
		AuthenticatorSelection: AuthenticatorSelection{UserVerification: userVerification},
	}
	for _, a := range rp.algs {
		o.PubKeyCredParams = append(o.PubKeyCredParams, CredentialParameter{Type: TypePublicKey, Alg: a})
	}
	return o
}

// RequestOptions returns the options of an authentication (WebAuthn Level
// 3 §5.5) with challenge for the credentials in allow, without user
// verification. A timeout of 0 leaves it to the browser.
func (rp *RelyingParty) RequestOptions(challenge []byte, allow []CredentialDescriptor, timeout time.Duration) RequestOptions {
	return RequestOptions{
		Challenge:        Encode(challenge),
		RPID:             rp.id,
		AllowCredentials: append([]CredentialDescriptor{}, allow...),
		UserVerification: userVerification,
		Timeout:          timeout.Milliseconds(),
	}
}

// Registration is a verified registration (WebAuthn Level 3 §7.1): what
// the relying party stores of the new credential.
type Registration struct {
	CredentialID []byte
	PublicKey    []byte // the credential public key, COSE_Key as in the authenticator data
	Algorithm    int64  // its COSE algorithm
	AAGUID       [16]byte
	SignCount    uint32
	Format       string // the attestation statement format: FormatPacked, FormatFIDOU2F or FormatNone
	// AttestationType is what the statement proves (go-webauthn's names,
	// those of the FIDO metadata): "basic_full" or "attca" for a
	// certificate chain, "basic_surrogate" for self attestation, "none".
	AttestationType string
	// Trusted reports that the attestation chains to Config.Roots or to
	// the roots of the authenticator's metadata entry.
	Trusted bool
	// Chain is the attestation certificate chain (x5c), leaf first; nil
	// for "none" and self attestation. The certificates may be shared
	// with other registrations that presented the same chain (a batch
	// certificate): read them, do not modify them.
	Chain          []*x509.Certificate
	BackupEligible bool // BE
	BackupState    bool // BS
	UserVerified   bool // UV
	Transports     []string
}

// VerifyRegistration verifies a registration response (WebAuthn Level 3
// §7.1) against the ceremony's challenge and returns the credential.
//
// This package checks, itself: the response's members and sizes, the
// client data (type webauthn.create, the challenge, an origin from
// Config.Origins, not cross-origin), the authenticator data (the RP ID
// hash, user presence, the backup flags against
// Config.AllowBackupEligible, the credential ID equal to rawId, a
// credential key of an offered algorithm), the statement format (packed,
// fido-u2f or none) and the trust of the attestation (Config.Roots at
// Config.Now, or Config.Metadata). go-webauthn then parses the response
// again and verifies it as §7.1 says, including the attestation statement
// (§8.2 packed: the signature with the x5c leaf or, for self attestation,
// the credential key, and the certificate requirements of §8.2.1; §8.6
// fido-u2f: the signature over the U2F registration data; §8.7 none) and
// the metadata. Whether the credential ID is registered already is the
// caller's to check.
//
// Errors: an *Error wrapping ErrInvalid (malformed), ErrMismatch (a check
// of the client or authenticator data failed; Error.Check says which) or
// ErrUntrusted (the attestation is not acceptable).
func (rp *RelyingParty) VerifyRegistration(ctx context.Context, r *RegistrationResponse, challenge []byte) (*Registration, error) {
	if r == nil {
		return nil, invalidf("credential is missing")
	}
	rawID, cdRaw, cd, err := commonPart(r.Type, r.ID, r.RawID, r.Response.ClientDataJSON)
	if err != nil {
		return nil, err
	}
	aoRaw, err := Decode("credential.response.attestationObject", r.Response.AttestationObject)
	if err != nil {
		return nil, err
	}
	want := Encode(challenge) // the client data's spelling, and go-webauthn's
	if err := rp.checkClientData(cd, TypeCreate, want); err != nil {
		return nil, err
	}
	ao, ad, err := parseAttestationObject(aoRaw)
	if err != nil {
		return nil, err
	}
	if err := rp.checkAuthData(ad); err != nil {
		return nil, err
	}
	switch {
	case ad.Flags&ctap2.FlagBE != 0 && !rp.allowBE:
		return nil, untrustedf("the credential is backup eligible (a passkey that may be synced off the authenticator), which this relying party does not accept")
	case ad.AttestedCredential == nil:
		return nil, invalidf("the authenticator data holds no attested credential")
	case !bytes.Equal(ad.AttestedCredential.CredentialID, rawID):
		return nil, invalidf("credential.rawId differs from the credential ID in the authenticator data")
	}
	alg, err := rp.credentialAlgorithm(ad.AttestedCredential.PublicKey)
	if err != nil {
		return nil, err
	}
	ders, err := ao.x5c()
	if err != nil {
		return nil, err
	}
	chain, err := rp.trust.chainOf(ders)
	if err != nil {
		return nil, err
	}

	ccr := protocol.CredentialCreationResponse{
		PublicKeyCredential: protocol.PublicKeyCredential{
			Credential:              protocol.Credential{ID: r.ID, Type: r.Type},
			RawID:                   rawID,
			AuthenticatorAttachment: r.AuthenticatorAttachment,
		},
		AttestationResponse: protocol.AuthenticatorAttestationResponse{
			AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: cdRaw},
			Transports:            r.Response.Transports,
			AttestationObject:     aoRaw,
		},
	}
	pcc, err := ccr.Parse()
	if err != nil {
		return nil, fromLibrary(err)
	}
	if _, err := pcc.Verify(want, rp.id, rp.origins, nil, nil, protocol.TopOriginExplicitVerificationMode,
		false, false, true, rp.trust.Metadata, rp.params, protocol.AttestationPolicy{}, protocol.SignaturePolicy{}); err != nil {
		return nil, fromLibrary(err)
	}
	att := &Attestation{Format: ao.Format, Type: pcc.Response.AttestationObject.Type, Chain: chain}
	rp.trust.assess(ctx, att, ders, ad.AttestedCredential.AAGUID)
	if !att.Trusted && !rp.allowUntrusted {
		return nil, untrustedf("%s", att.Why)
	}
	return &Registration{
		CredentialID:    ad.AttestedCredential.CredentialID,
		PublicKey:       ad.AttestedCredential.PublicKey,
		Algorithm:       alg,
		AAGUID:          ad.AttestedCredential.AAGUID,
		SignCount:       ad.SignCount,
		Format:          att.Format,
		AttestationType: att.Type,
		Trusted:         att.Trusted,
		Chain:           att.Chain,
		BackupEligible:  ad.Flags&ctap2.FlagBE != 0,
		BackupState:     ad.Flags&ctap2.FlagBS != 0,
		UserVerified:    ad.Flags&ctap2.FlagUV != 0,
		Transports:      slices.Clone(r.Response.Transports),
	}, nil
}

// Credential is what the relying party stored of a credential at its
// registration, for an authentication.
type Credential struct {
	ID             []byte
	PublicKey      []byte // COSE_Key, Registration.PublicKey
	BackupEligible bool   // Registration.BackupEligible
}

// Assertion is a verified authentication (WebAuthn Level 3 §7.2).
type Assertion struct {
	SignCount      uint32 // for the caller's clone check (§6.1.1)
	UserVerified   bool
	BackupEligible bool
	BackupState    bool
	UserHandle     []byte // nil when the authenticator returned none
}

// Bounds of an assertion's members.
const (
	maxAuthData  = 4 << 10
	maxSignature = 1 << 10
)

// VerifyAssertion verifies an authentication response (WebAuthn Level 3
// §7.2) for the stored credential cred against the ceremony's challenge.
//
// This package checks, itself: the response's members and sizes, that the
// response is for cred, the client data (type webauthn.get, the challenge,
// an origin from Config.Origins, not cross-origin) and the authenticator
// data (the RP ID hash, user presence, BE as stored, BS only with BE).
// go-webauthn then parses the response again, repeats the checks of §7.2
// and verifies the signature with the credential key. The signature
// counter is the caller's to compare (§6.1.1): Assertion.SignCount.
//
// Errors: an *Error wrapping ErrInvalid (malformed, or a response for
// another credential; nothing about the authenticator was learnt) or
// ErrMismatch (a failed check, among them CheckSignature); any other error
// means the stored credential key does not parse.
func (rp *RelyingParty) VerifyAssertion(r *AuthenticationResponse, challenge []byte, cred Credential) (*Assertion, error) {
	if r == nil {
		return nil, invalidf("credential is missing")
	}
	rawID, cdRaw, cd, err := commonPart(r.Type, r.ID, r.RawID, r.Response.ClientDataJSON)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(rawID, cred.ID) {
		return nil, invalidf("the credential is not the one registered for this authenticator")
	}
	adRaw, err := Decode("credential.response.authenticatorData", r.Response.AuthenticatorData)
	if err != nil {
		return nil, err
	}
	sig, err := Decode("credential.response.signature", r.Response.Signature)
	if err != nil {
		return nil, err
	}
	var handle []byte
	if r.Response.UserHandle != "" {
		if handle, err = Decode("credential.response.userHandle", r.Response.UserHandle); err != nil {
			return nil, err
		}
	}
	if len(adRaw) > maxAuthData || len(sig) > maxSignature || len(handle) > 64 {
		return nil, invalidf("the assertion is too large")
	}
	ad, err := ctap2.ParseAuthData(adRaw)
	if err != nil {
		return nil, invalidf("the authenticator data: %v", err)
	}
	want := Encode(challenge) // the client data's spelling, and go-webauthn's
	if err := rp.checkClientData(cd, TypeGet, want); err != nil {
		return nil, err
	}
	if err := rp.checkAuthData(ad); err != nil {
		return nil, err
	}
	if be := ad.Flags&ctap2.FlagBE != 0; be != cred.BackupEligible {
		return nil, mismatch(CheckBackupEligible, "the backup eligibility flag (%v) differs from the credential's at registration (%v)", be, cred.BackupEligible)
	}

	car := protocol.CredentialAssertionResponse{
		PublicKeyCredential: protocol.PublicKeyCredential{
			Credential:              protocol.Credential{ID: r.ID, Type: r.Type},
			RawID:                   rawID,
			AuthenticatorAttachment: r.AuthenticatorAttachment,
		},
		AssertionResponse: protocol.AuthenticatorAssertionResponse{
			AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: cdRaw},
			AuthenticatorData:     adRaw,
			Signature:             sig,
			UserHandle:            handle,
		},
	}
	par, err := car.Parse()
	if err != nil {
		return nil, fromLibrary(err)
	}
	if err := par.Verify(want, rp.id, "", rp.origins, nil, nil, protocol.TopOriginExplicitVerificationMode,
		false, false, true, cred.PublicKey, protocol.SignaturePolicy{}); err != nil {
		// go-webauthn reports a stored key it cannot parse like a
		// signature that does not verify; only the first is not the
		// client's doing.
		if _, kerr := webauthncose.ParsePublicKey(cred.PublicKey); kerr != nil {
			return nil, fmt.Errorf("webauthn: the stored credential public key does not parse: %v", kerr)
		}
		return nil, fromLibrary(err)
	}
	return &Assertion{
		SignCount:      ad.SignCount,
		UserVerified:   ad.Flags&ctap2.FlagUV != 0,
		BackupEligible: ad.Flags&ctap2.FlagBE != 0,
		BackupState:    ad.Flags&ctap2.FlagBS != 0,
		UserHandle:     handle,
	}, nil
}

// commonPart checks and decodes what every response has (WebAuthn Level 3
// §5.1: type, id, rawId, and clientDataJSON, which it parses).
func commonPart(typ, id, rawID, clientDataJSON string) ([]byte, []byte, *ClientData, error) {
	if typ != TypePublicKey {
		return nil, nil, nil, invalidf("credential.type must be %q", TypePublicKey)
	}
	raw, err := Decode("credential.rawId", rawID)
	if err != nil {
		return nil, nil, nil, err
	}
	if id != rawID {
		return nil, nil, nil, invalidf("credential.id and credential.rawId differ")
	}
	cdRaw, err := Decode("credential.response.clientDataJSON", clientDataJSON)
	if err != nil {
		return nil, nil, nil, err
	}
	cd, err := ParseClientData(cdRaw)
	if err != nil {
		return nil, nil, nil, err
	}
	return raw, cdRaw, cd, nil
}

// checkClientData checks the client data of a ceremony of type typ
// (WebAuthn Level 3 §7.1, §7.2: type, challenge, origin, crossOrigin,
// topOrigin). want is the ceremony's challenge as the client data spells
// it (Encode).
func (rp *RelyingParty) checkClientData(cd *ClientData, typ, want string) error {
	switch {
	case cd.Type != typ:
		return mismatch(CheckType, "the client data is of type %q, not %q", clip(cd.Type), typ)
	case !equalStrings(cd.Challenge, want):
		return mismatch(CheckChallenge, "the client data is for another challenge")
	case !slices.Contains(rp.origins, cd.Origin):
		return mismatch(CheckOrigin, "the client data comes from origin %q, not from %s", clip(cd.Origin), strings.Join(rp.origins, " or "))
	case cd.CrossOrigin:
		return mismatch(CheckCrossOrigin, "the ceremony ran in a cross-origin frame")
	case cd.TopOrigin != "":
		return mismatch(CheckTopOrigin, "the client data names a top origin, %q", clip(cd.TopOrigin))
	}
	return nil
}

// equalStrings reports whether a and b are equal, in a time that depends
// on their lengths only (as subtle.ConstantTimeCompare, without copying
// the strings to byte slices).
func equalStrings(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// checkAuthData checks the RP ID hash, the UP flag and the BS flag of
// authenticator data (WebAuthn Level 3 §6.1).
func (rp *RelyingParty) checkAuthData(ad *ctap2.AuthData) error {
	switch {
	case ad.RPIDHash != rp.rpIDHash:
		return mismatch(CheckRPID, "the authenticator data is for another relying party than %s", rp.id)
	case ad.Flags&ctap2.FlagUP == 0:
		return mismatch(CheckUserPresence, "the authenticator did not report user presence")
	case ad.Flags&ctap2.FlagBS != 0 && ad.Flags&ctap2.FlagBE == 0:
		return mismatch(CheckBackupState, "the backup state flag is set without backup eligibility")
	}
	return nil
}

// credentialAlgorithm parses a credential public key (COSE_Key, RFC 9052
// §7) as go-webauthn will for every assertion, and returns its algorithm,
// which must be one the relying party offered.
func (rp *RelyingParty) credentialAlgorithm(cose []byte) (int64, error) {
	k, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return 0, invalidf("the credential public key does not parse: %v", err)
	}
	var alg int64
	switch k := k.(type) {
	case webauthncose.EC2PublicKeyData:
		alg = k.Algorithm
	case webauthncose.OKPPublicKeyData:
		alg = k.Algorithm
	case webauthncose.RSAPublicKeyData:
		alg = k.Algorithm
	default:
		return 0, invalidf("the credential public key is of an unsupported type %T", k)
	}
	if !slices.Contains(rp.algs, alg) {
		return 0, invalidf("the credential public key uses COSE algorithm %d, which was not offered", alg)
	}
	return alg, nil
}

// fromLibrary turns an error of go-webauthn into an *Error. Its
// *protocol.Error values are copies, which errors.Is cannot match, so they
// are told apart by their Type; their Details become the reason. Since this
// package's own checks ran first, what go-webauthn alone finds is the
// signature of an assertion or the attestation statement of a
// registration.
func fromLibrary(err error) error {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return invalidf("go-webauthn: %v", err)
	}
	reason := "go-webauthn: " + pe.Details
	if pe.DevInfo != "" {
		reason += " (" + clip(pe.DevInfo) + ")"
	}
	switch pe.Type {
	case "invalid_request", "parse_error", "auth_data":
		return &Error{Err: ErrInvalid, Reason: reason}
	case "invalid_signature":
		return &Error{Err: ErrMismatch, Check: CheckSignature, Reason: "the signature does not verify with the credential's key"}
	case "verification_error", "challenge_mismatch":
		return &Error{Err: ErrMismatch, Check: CheckLibrary, Reason: reason}
	}
	return &Error{Err: ErrUntrusted, Reason: "the attestation statement does not verify: " + reason}
}

// clip shortens a value from a client for a message.
func clip(v string) string {
	if len(v) > 64 {
		return v[:64] + "..."
	}
	return v
}
