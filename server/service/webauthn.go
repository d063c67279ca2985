package service

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/domain"
)

// The WebAuthn JSON types below follow WebAuthn Level 3 §5.1
// (PublicKeyCredential's toJSON, parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON): binary values are unpadded base64url
// strings.

// CreationOptions is PublicKeyCredentialCreationOptionsJSON (WebAuthn
// Level 3 §5.4) as the server sends it for a chip registration.
type CreationOptions struct {
	Challenge              string                 `json:"challenge"`
	RP                     RPEntity               `json:"rp"`
	User                   UserEntity             `json:"user"`
	PubKeyCredParams       []CredentialParameter  `json:"pubKeyCredParams"`
	Timeout                int64                  `json:"timeout"`
	ExcludeCredentials     []CredentialDescriptor `json:"excludeCredentials"`
	Attestation            string                 `json:"attestation"`
	AuthenticatorSelection AuthenticatorSelection `json:"authenticatorSelection"`
}

// RPEntity is PublicKeyCredentialRpEntity (WebAuthn Level 3 §5.4.2).
type RPEntity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UserEntity is PublicKeyCredentialUserEntityJSON (§5.4.3); ID is
// base64url.
type UserEntity struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// CredentialParameter is PublicKeyCredentialParameters (§5.3).
type CredentialParameter struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptorJSON (§5.8.3).
type CredentialDescriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// AuthenticatorSelection is AuthenticatorSelectionCriteria (§5.4.4).
type AuthenticatorSelection struct {
	UserVerification string `json:"userVerification"`
}

// RequestOptions is PublicKeyCredentialRequestOptionsJSON (§5.5) for a chip
// login.
type RequestOptions struct {
	Challenge        string                 `json:"challenge"`
	RPID             string                 `json:"rpId"`
	AllowCredentials []CredentialDescriptor `json:"allowCredentials"`
	UserVerification string                 `json:"userVerification"`
	Timeout          int64                  `json:"timeout"`
}

// RegistrationResponse is RegistrationResponseJSON (WebAuthn Level 3
// §5.1): what navigator.credentials.create() returns, as JSON.
type RegistrationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                AttestationResponse        `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

// AttestationResponse is AuthenticatorAttestationResponseJSON (§5.2.1).
// The optional convenience members (authenticatorData, publicKey,
// publicKeyAlgorithm) are accepted and ignored: the server reads them from
// the attestation object.
type AttestationResponse struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AttestationObject  string   `json:"attestationObject"`
	Transports         []string `json:"transports,omitempty"`
	AuthenticatorData  string   `json:"authenticatorData,omitempty"`
	PublicKey          string   `json:"publicKey,omitempty"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm,omitempty"`
}

// AuthenticationResponse is AuthenticationResponseJSON (WebAuthn Level 3
// §5.1): what navigator.credentials.get() returns, as JSON.
type AuthenticationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                AssertionResponse          `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

// AssertionResponse is AuthenticatorAssertionResponseJSON (§5.2.2).
type AssertionResponse struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
	AttestationObject string `json:"attestationObject,omitempty"`
}

// ClientData is CollectedClientData (WebAuthn Level 3 §5.8.1).
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin,omitempty"`
	TopOrigin   string `json:"topOrigin,omitempty"`
}

// AttestationObject is the CBOR attestation object (WebAuthn Level 3
// §6.5.4): the format, its statement and the authenticator data.
type AttestationObject struct {
	Format   string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

// attStmt holds the members of the packed (§8.2) and fido-u2f (§8.6)
// statements.
type attStmt struct {
	Alg        *int64   `cbor:"alg"`
	Sig        []byte   `cbor:"sig"`
	X5C        [][]byte `cbor:"x5c"`
	ECDAAKeyID []byte   `cbor:"ecdaaKeyId"`
}

// Sizes that bound what a client may send.
const (
	maxClientData  = 4 << 10
	maxAttObject   = 16 << 10
	maxCertificate = 4 << 10
	maxChain       = 4
)

// cborDec decodes attestation objects: definite lengths, no tags, no
// duplicate keys, little nesting; canonical order is not required, since
// clients other than CTAP2 authenticators may re-encode.
var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  16,
		MaxMapPairs:       32,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return m
}()

// ParseAttestationObject decodes an attestation object (WebAuthn Level 3
// §6.5.4). It checks the structure only: fmt is a non-empty text string,
// attStmt a map and authData a byte string that parses as authenticator
// data (WebAuthn §6.1). It returns nil and an error wrapping ErrInvalid
// otherwise.
func ParseAttestationObject(b []byte) (*AttestationObject, error) {
	if len(b) > maxAttObject {
		return nil, invalid("the attestation object is larger than %d bytes", maxAttObject)
	}
	var o AttestationObject
	if err := cborDec.Unmarshal(b, &o); err != nil {
		return nil, invalid("the attestation object is not valid CBOR: %v", err)
	}
	if o.Format == "" || len(o.AuthData) == 0 || len(o.AttStmt) == 0 || o.AttStmt[0]>>5 != 5 {
		return nil, invalid("the attestation object lacks fmt, attStmt or authData")
	}
	if _, err := ctap2.ParseAuthData(o.AuthData); err != nil {
		return nil, invalid("the attestation object's authenticator data: %v", err)
	}
	return &o, nil
}

// ParseClientData decodes clientDataJSON (WebAuthn Level 3 §5.8.1). It
// returns nil and an error wrapping ErrInvalid when it is not a JSON object
// with string type, challenge and origin.
func ParseClientData(b []byte) (*ClientData, error) {
	if len(b) > maxClientData {
		return nil, invalid("clientDataJSON is larger than %d bytes", maxClientData)
	}
	var c ClientData
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, invalid("clientDataJSON is not a client data object")
	}
	if c.Type == "" || c.Challenge == "" || c.Origin == "" {
		return nil, invalid("clientDataJSON lacks type, challenge or origin")
	}
	return &c, nil
}

// userHandle derives the WebAuthn user handle of an identity: opaque bytes,
// not the identity ID itself (WebAuthn Level 3 §14.6.1 advises against
// personal data in it).
func userHandle(identityID string) []byte {
	h := sha256.Sum256([]byte("authbench user handle\x00" + identityID))
	return h[:16]
}

// creationOptions builds the registration options for a chip of identity
// identityID; the identity's chips that are not blocked are excluded, so
// the same chip is not registered twice while a blocked one can be added
// again (it then makes a new credential).
func (s *Service) creationOptions(identityID string, challenge []byte, own []domain.Authenticator) CreationOptions {
	o := CreationOptions{
		Challenge: b64.EncodeToString(challenge),
		RP:        RPEntity{ID: s.rpID, Name: s.rpName},
		User:      UserEntity{ID: b64.EncodeToString(userHandle(identityID)), Name: identityID, DisplayName: identityID},
		PubKeyCredParams: []CredentialParameter{
			{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256},
			{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgEdDSA},
		},
		Timeout:                s.ceremonyTT.Milliseconds(),
		ExcludeCredentials:     []CredentialDescriptor{},
		Attestation:            "direct",
		AuthenticatorSelection: AuthenticatorSelection{UserVerification: "discouraged"},
	}
	for _, a := range own {
		if a.Kind == "chip" && a.State != domain.StateBlocked && a.CredentialID != "" && len(o.ExcludeCredentials) < maxCredentials {
			o.ExcludeCredentials = append(o.ExcludeCredentials, CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: a.CredentialID})
		}
	}
	return o
}

// registration is a verified chip registration.
type registration struct {
	CredentialID   []byte
	PublicKey      []byte // COSE_Key
	AAGUID         [16]byte
	SignCount      uint32
	Format         string
	Trusted        bool
	ChipSerial     string
	BackupEligible bool
	BackupState    bool
}

// checkClientData verifies the client data of a ceremony (WebAuthn Level 3
// §7.1 steps 7-10, §7.2 steps 10-13) and returns its hash. Malformed data
// is ErrInvalid; a wrong type, challenge or origin is reported as the
// failed check's name with a nil error.
func (s *Service) checkClientData(raw []byte, typ string, challenge []byte) (hash []byte, failed string, err error) {
	cd, err := ParseClientData(raw)
	if err != nil {
		return nil, "", err
	}
	got, err := b64.DecodeString(cd.Challenge)
	switch {
	case cd.Type != typ:
		return nil, "client_data_type", nil
	case err != nil || subtle.ConstantTimeCompare(got, challenge) != 1:
		return nil, "challenge", nil
	case !s.origins[cd.Origin]:
		return nil, "origin", nil
	case cd.CrossOrigin:
		return nil, "cross_origin", nil
	}
	h := sha256.Sum256(raw)
	return h[:], "", nil
}

// verifyRegistration verifies a chip's registration response (WebAuthn
// Level 3 §7.1) against the ceremony's challenge. It returns an error
// wrapping ErrInvalid for malformed or mismatched input, or
// ErrAttestationUntrusted for an attestation that is not acceptable.
func (s *Service) verifyRegistration(r *RegistrationResponse, challenge []byte) (*registration, error) {
	if r == nil {
		return nil, invalid("credential is missing")
	}
	if r.Type != ctap2.CredentialTypePublicKey {
		return nil, invalid("credential.type must be public-key")
	}
	rawID, err := decodeB64("credential.rawId", r.RawID)
	if err != nil {
		return nil, err
	}
	if r.ID != r.RawID {
		return nil, invalid("credential.id and credential.rawId differ")
	}
	cdRaw, err := decodeB64("credential.response.clientDataJSON", r.Response.ClientDataJSON)
	if err != nil {
		return nil, err
	}
	aoRaw, err := decodeB64("credential.response.attestationObject", r.Response.AttestationObject)
	if err != nil {
		return nil, err
	}
	cdh, failed, err := s.checkClientData(cdRaw, "webauthn.create", challenge)
	if err != nil {
		return nil, err
	}
	if failed != "" {
		return nil, invalid("the client data does not match the ceremony (%s)", failed)
	}
	ao, err := ParseAttestationObject(aoRaw)
	if err != nil {
		return nil, err
	}
	ad, _ := ctap2.ParseAuthData(ao.AuthData) // checked by ParseAttestationObject
	rpHash := ctap2.RPIDHash(s.rpID)
	switch {
	case !bytes.Equal(ad.RPIDHash[:], rpHash[:]):
		return nil, invalid("the authenticator data is for another relying party than %s", s.rpID)
	case ad.Flags&ctap2.FlagUP == 0:
		return nil, invalid("the chip did not report user presence")
	case ad.Flags&ctap2.FlagBS != 0 && ad.Flags&ctap2.FlagBE == 0:
		return nil, invalid("the backup state flag is set without backup eligibility")
	case ad.Flags&ctap2.FlagBE != 0:
		return nil, untrusted("the credential is backup eligible (a synced passkey); a MitID chip keeps its key in the chip")
	case ad.AttestedCredential == nil:
		return nil, invalid("the authenticator data holds no attested credential")
	case !bytes.Equal(ad.AttestedCredential.CredentialID, rawID):
		return nil, invalid("credential.rawId differs from the credential ID in the authenticator data")
	}
	cred := ad.AttestedCredential
	pub, err := ctap2.ParsePublicKey(cred.PublicKey)
	if err != nil {
		return nil, invalid("the credential public key: %v", err)
	}
	reg := &registration{
		CredentialID:   cred.CredentialID,
		PublicKey:      cred.PublicKey,
		AAGUID:         cred.AAGUID,
		SignCount:      ad.SignCount,
		Format:         ao.Format,
		BackupEligible: ad.Flags&ctap2.FlagBE != 0,
		BackupState:    ad.Flags&ctap2.FlagBS != 0,
	}
	if err := s.checkAttestation(ao, ad, pub, cdh, reg); err != nil {
		return nil, err
	}
	if !reg.Trusted && !s.allowNone {
		return nil, untrusted("the %s attestation does not chain to a trusted attestation root", ao.Format)
	}
	return reg, nil
}

// oidAAGUID is id-fido-gen-ce-aaguid (WebAuthn Level 3 §8.2.1).
var oidAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// checkAttestation verifies the attestation statement (WebAuthn Level 3
// §8.2 packed, §8.6 fido-u2f, §8.7 none) and sets reg.Trusted and
// reg.ChipSerial.
func (s *Service) checkAttestation(ao *AttestationObject, ad *ctap2.AuthData, credKey any, cdh []byte, reg *registration) error {
	var st attStmt
	if err := cborDec.Unmarshal(ao.AttStmt, &st); err != nil {
		return invalid("attStmt: %v", err)
	}
	switch ao.Format {
	case ctap2.FormatNone:
		if len(ao.AttStmt) != 1 { // 0xa0, the empty map
			return invalid("a none attestation has an empty statement")
		}
		return nil
	case ctap2.FormatPacked:
		if st.Alg == nil || len(st.Sig) == 0 || len(st.ECDAAKeyID) != 0 {
			return invalid("a packed statement needs alg and sig (ECDAA is not supported)")
		}
		if len(st.X5C) == 0 {
			// Self attestation (§8.2 step 3): signed with the credential key.
			if err := ctap2.VerifySignature(credKey, ao.AuthData, cdh, st.Sig); err != nil {
				return untrusted("the self attestation signature does not verify")
			}
			return nil
		}
		leaf, err := s.checkChain(st.X5C, reg)
		if err != nil {
			return err
		}
		if err := checkPackedCert(leaf, ad); err != nil {
			return err
		}
		if !algMatches(*st.Alg, leaf.PublicKey) {
			return untrusted("the packed alg %d does not match the attestation certificate's key", *st.Alg)
		}
		if err := ctap2.VerifySignature(leaf.PublicKey, ao.AuthData, cdh, st.Sig); err != nil {
			return untrusted("the attestation signature does not verify")
		}
		reg.ChipSerial = leaf.Subject.SerialNumber
		return nil
	case ctap2.FormatFIDOU2F:
		if len(st.X5C) != 1 || len(st.Sig) == 0 {
			return invalid("a fido-u2f statement has one certificate and a signature")
		}
		leaf, err := s.checkChain(st.X5C, reg)
		if err != nil {
			return err
		}
		lk, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		ck, ok2 := credKey.(*ecdsa.PublicKey)
		if !ok || !ok2 || lk.Curve != elliptic.P256() {
			return untrusted("fido-u2f needs P-256 keys")
		}
		point, err := ck.Bytes()
		if err != nil {
			return invalid("the credential public key: %v", err)
		}
		// §8.6 step 5: 0x00 || rpIdHash || clientDataHash || credentialId || publicKeyU2F.
		vd := []byte{0}
		vd = append(vd, ad.RPIDHash[:]...)
		vd = append(vd, cdh...)
		vd = append(vd, reg.CredentialID...)
		vd = append(vd, point...)
		h := sha256.Sum256(vd)
		if !ecdsa.VerifyASN1(lk, h[:], st.Sig) {
			return untrusted("the fido-u2f attestation signature does not verify")
		}
		reg.ChipSerial = leaf.Subject.SerialNumber
		return nil
	}
	return untrusted("the attestation format %q is not accepted (packed, fido-u2f or none)", trim(ao.Format))
}

// checkChain parses an x5c array and verifies it against the configured
// roots; reg.Trusted says whether it chained. The leaf is returned either
// way, for the signature check.
func (s *Service) checkChain(x5c [][]byte, reg *registration) (*x509.Certificate, error) {
	if len(x5c) > maxChain {
		return nil, invalid("x5c holds more than %d certificates", maxChain)
	}
	certs := make([]*x509.Certificate, 0, len(x5c))
	for i, der := range x5c {
		if len(der) > maxCertificate {
			return nil, invalid("x5c[%d] is larger than %d bytes", i, maxCertificate)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, invalid("x5c[%d] is not a certificate", i)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	if s.roots == nil {
		return leaf, nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.roots,
		Intermediates: inter,
		CurrentTime:   s.clock(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	reg.Trusted = err == nil
	return leaf, nil
}

// checkPackedCert applies the certificate requirements of WebAuthn Level 3
// §8.2.1 to a packed attestation certificate.
func checkPackedCert(c *x509.Certificate, ad *ctap2.AuthData) error {
	switch {
	case c.Version != 3:
		return untrusted("the attestation certificate is not X.509 version 3")
	case len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != "Authenticator Attestation":
		return untrusted("the attestation certificate's subject OU is not \"Authenticator Attestation\"")
	case !c.BasicConstraintsValid || c.IsCA:
		return untrusted("the attestation certificate must not be a CA")
	}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidAAGUID) {
			continue
		}
		var v []byte
		rest, err := asn1.Unmarshal(e.Value, &v)
		if err != nil || len(rest) != 0 || e.Critical || !bytes.Equal(v, ad.AttestedCredential.AAGUID[:]) {
			return untrusted("the attestation certificate's AAGUID extension does not match the authenticator data")
		}
	}
	return nil
}

// algMatches reports whether COSE algorithm alg fits key.
func algMatches(alg int64, key any) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == ctap2.AlgES256 && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == ctap2.AlgEdDSA
	}
	return false
}

// assertion is a verified chip assertion.
type assertion struct {
	SignCount uint32
	BE        bool
}

// errAssertion is a failed check of an assertion that counts as a failed
// attempt (a bad signature, a wrong challenge, origin or RP, no presence).
type errAssertion struct{ check string }

func (e *errAssertion) Error() string {
	return "service: the assertion failed its " + e.check + " check"
}

// verifyAssertion verifies a chip's authentication response (WebAuthn
// Level 3 §7.2) for credential credID with COSE key coseKey. Malformed
// input is an error wrapping ErrInvalid (nothing is counted); a failed
// check is an *errAssertion (a failed attempt).
func (s *Service) verifyAssertion(r *AuthenticationResponse, challenge []byte, credID string, coseKey []byte, backupEligible bool) (*assertion, error) {
	if r == nil {
		return nil, invalid("credential is missing")
	}
	if r.Type != ctap2.CredentialTypePublicKey {
		return nil, invalid("credential.type must be public-key")
	}
	if _, err := decodeB64("credential.rawId", r.RawID); err != nil {
		return nil, err
	}
	if r.ID != r.RawID || r.RawID != credID {
		return nil, invalid("the credential is not the one registered for this authenticator")
	}
	cdRaw, err := decodeB64("credential.response.clientDataJSON", r.Response.ClientDataJSON)
	if err != nil {
		return nil, err
	}
	adRaw, err := decodeB64("credential.response.authenticatorData", r.Response.AuthenticatorData)
	if err != nil {
		return nil, err
	}
	sig, err := decodeB64("credential.response.signature", r.Response.Signature)
	if err != nil {
		return nil, err
	}
	if r.Response.UserHandle != "" {
		if _, err := decodeB64("credential.response.userHandle", r.Response.UserHandle); err != nil {
			return nil, err
		}
	}
	if len(adRaw) > maxAttObject || len(sig) > 512 {
		return nil, invalid("the assertion is too large")
	}
	ad, err := ctap2.ParseAuthData(adRaw)
	if err != nil {
		return nil, invalid("the authenticator data: %v", err)
	}
	cdh, failed, err := s.checkClientData(cdRaw, "webauthn.get", challenge)
	if err != nil {
		return nil, err
	}
	rpHash := ctap2.RPIDHash(s.rpID)
	switch {
	case failed != "":
		return nil, &errAssertion{failed}
	case !bytes.Equal(ad.RPIDHash[:], rpHash[:]):
		return nil, &errAssertion{"rp_id"}
	case ad.Flags&ctap2.FlagUP == 0:
		return nil, &errAssertion{"user_presence"}
	case ad.Flags&ctap2.FlagBE != 0 && !backupEligible:
		return nil, &errAssertion{"backup_eligible"}
	}
	if err := ctap2.VerifyAssertion(coseKey, adRaw, cdh, sig); err != nil {
		if errors.Is(err, ctap2.ErrInvalidSignature) {
			return nil, &errAssertion{"signature"}
		}
		return nil, fmt.Errorf("service: the stored credential key: %w", err)
	}
	return &assertion{SignCount: ad.SignCount, BE: ad.Flags&ctap2.FlagBE != 0}, nil
}
