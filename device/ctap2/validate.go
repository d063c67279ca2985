package ctap2

import "fmt"

// Limits from WebAuthn Level 3.
const (
	// ClientDataHashSize is the size of clientDataHash, a SHA-256 digest of
	// the client data (CTAP 2.1 §6.1, §6.2).
	ClientDataHashSize = 32
	// MaxUserIDLength is the largest user handle (WebAuthn §5.4.3).
	MaxUserIDLength = 64
	// MaxCredentialIDLength is the longest credential ID (WebAuthn §6.5.1,
	// credentialIdLength).
	MaxCredentialIDLength = 1023
	// AAGUIDSize is the size of an AAGUID (WebAuthn §6.5.1).
	AAGUIDSize = 16
)

// Attestation statement formats (WebAuthn §8).
const (
	FormatPacked  = "packed"
	FormatFIDOU2F = "fido-u2f"
	FormatNone    = "none"
)

// The checks below are the ones every decoder and encoder of this package
// runs. They enforce what CTAP 2.1 §6 marks as required and the sizes WebAuthn
// fixes; they do not judge what an authenticator supports (algorithms,
// options, extensions): that is the authenticator's answer to give.

func checkClientDataHash(what string, h []byte) error {
	switch len(h) {
	case ClientDataHashSize:
		return nil
	case 0:
		return fmt.Errorf("%w: %s: clientDataHash is missing", ErrMissingParameter, what)
	}
	return fmt.Errorf("%w: %s: clientDataHash is %d bytes, want %d", ErrInvalidLength, what, len(h), ClientDataHashSize)
}

// Validate checks the parameters (CTAP 2.1 §6.1): clientDataHash is 32 bytes,
// rp.id is set, user.id has 1 to 64 bytes, pubKeyCredParams is present (it may
// be empty) and each entry has a type and a non-zero alg, each excludeList
// entry has a type and an ID.
//
// It returns nil or an error wrapping ErrMissingParameter or ErrInvalidLength.
func (r *MakeCredentialRequest) Validate() error {
	const what = "authenticatorMakeCredential"
	if r == nil {
		return fmt.Errorf("%w: %s: no parameters", ErrMissingParameter, what)
	}
	if err := checkClientDataHash(what, r.ClientDataHash); err != nil {
		return err
	}
	if r.RP.ID == "" {
		return fmt.Errorf("%w: %s: rp.id is missing", ErrMissingParameter, what)
	}
	if err := r.User.validate(what); err != nil {
		return err
	}
	if r.PubKeyCredParams == nil {
		return fmt.Errorf("%w: %s: pubKeyCredParams is missing", ErrMissingParameter, what)
	}
	for i := range r.PubKeyCredParams {
		if err := r.PubKeyCredParams[i].validate(what); err != nil {
			return err
		}
	}
	for i := range r.ExcludeList {
		if err := r.ExcludeList[i].validate(what + ": excludeList"); err != nil {
			return err
		}
	}
	return checkExtensions(what, r.Extensions)
}

// Validate checks the parameters (CTAP 2.1 §6.2): rpId is set,
// clientDataHash is 32 bytes, each allowList entry has a type and an ID.
//
// It returns nil or an error wrapping ErrMissingParameter or ErrInvalidLength.
func (r *GetAssertionRequest) Validate() error {
	const what = "authenticatorGetAssertion"
	if r == nil {
		return fmt.Errorf("%w: %s: no parameters", ErrMissingParameter, what)
	}
	if r.RPID == "" {
		return fmt.Errorf("%w: %s: rpId is missing", ErrMissingParameter, what)
	}
	if err := checkClientDataHash(what, r.ClientDataHash); err != nil {
		return err
	}
	for i := range r.AllowList {
		if err := r.AllowList[i].validate(what + ": allowList"); err != nil {
			return err
		}
	}
	return checkExtensions(what, r.Extensions)
}

// Validate checks the response (CTAP 2.1 §6.4): versions is not empty and
// aaguid is 16 bytes; each algorithms entry has a type and a non-zero alg.
//
// It returns nil or an error wrapping ErrMissingParameter or ErrInvalidLength.
func (r *Info) Validate() error {
	const what = "authenticatorGetInfo response"
	if r == nil {
		return fmt.Errorf("%w: %s: empty", ErrMissingParameter, what)
	}
	if len(r.Versions) == 0 {
		return fmt.Errorf("%w: %s: versions is missing", ErrMissingParameter, what)
	}
	switch len(r.AAGUID) {
	case AAGUIDSize:
	case 0:
		return fmt.Errorf("%w: %s: aaguid is missing", ErrMissingParameter, what)
	default:
		return fmt.Errorf("%w: %s: aaguid is %d bytes, want %d", ErrInvalidLength, what, len(r.AAGUID), AAGUIDSize)
	}
	for i := range r.Algorithms {
		if err := r.Algorithms[i].validate(what); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the response (CTAP 2.1 §6.1.2, WebAuthn §6.5): fmt is set;
// authData parses (see ParseAuthData) and carries attested credential data;
// the statement fits the format: empty for "none", alg and sig for "packed",
// sig and exactly one certificate for "fido-u2f" (other formats are not
// checked).
//
// It returns nil, an error of ParseAuthData, or an error wrapping
// ErrMissingParameter or ErrInvalidParameter.
func (r *Attestation) Validate() error {
	const what = "authenticatorMakeCredential response"
	if r == nil {
		return fmt.Errorf("%w: %s: empty", ErrMissingParameter, what)
	}
	if r.Format == "" {
		return fmt.Errorf("%w: %s: fmt is missing", ErrMissingParameter, what)
	}
	ad, err := ParseAuthData(r.AuthData)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, what)
	}
	if ad.AttestedCredential == nil {
		return fmt.Errorf("%w: %s: authData has no attested credential data", ErrInvalidParameter, what)
	}
	st := &r.Statement
	for i, c := range st.X5C {
		if len(c) == 0 {
			return fmt.Errorf("%w: %s: attStmt.x5c[%d] is empty", ErrInvalidParameter, what, i)
		}
	}
	switch r.Format {
	case FormatNone:
		if st.Alg != 0 || st.Sig != nil || st.X5C != nil {
			return fmt.Errorf("%w: %s: attStmt of format none is not empty", ErrInvalidParameter, what)
		}
	case FormatPacked:
		if st.Alg == 0 || len(st.Sig) == 0 {
			return fmt.Errorf("%w: %s: packed attStmt needs alg and sig", ErrMissingParameter, what)
		}
	case FormatFIDOU2F:
		if len(st.Sig) == 0 || len(st.X5C) != 1 {
			return fmt.Errorf("%w: %s: fido-u2f attStmt needs sig and one certificate", ErrMissingParameter, what)
		}
	}
	return nil
}

// Validate checks the response (CTAP 2.1 §6.2.2): authData parses (see
// ParseAuthData), signature is not empty, a credential has a type and an ID, a
// user has an ID of 1 to 64 bytes.
//
// It returns nil, an error of ParseAuthData, or an error wrapping
// ErrMissingParameter or ErrInvalidLength.
func (r *Assertion) Validate() error {
	const what = "authenticatorGetAssertion response"
	if r == nil {
		return fmt.Errorf("%w: %s: empty", ErrMissingParameter, what)
	}
	if _, err := ParseAuthData(r.AuthData); err != nil {
		return fmt.Errorf("%w (%s)", err, what)
	}
	if len(r.Signature) == 0 {
		return fmt.Errorf("%w: %s: signature is missing", ErrMissingParameter, what)
	}
	if r.Credential != nil {
		if err := r.Credential.validate(what + ": credential"); err != nil {
			return err
		}
	}
	if r.User != nil {
		if err := r.User.validate(what); err != nil {
			return err
		}
	}
	return nil
}

func (u *UserEntity) validate(what string) error {
	switch n := len(u.ID); {
	case n == 0:
		return fmt.Errorf("%w: %s: user.id is missing", ErrMissingParameter, what)
	case n > MaxUserIDLength:
		return fmt.Errorf("%w: %s: user.id is %d bytes, at most %d allowed", ErrInvalidLength, what, n, MaxUserIDLength)
	}
	return nil
}

func (p *CredentialParameters) validate(what string) error {
	if p.Type == "" || p.Alg == 0 {
		return fmt.Errorf("%w: %s: credential parameters need type and alg", ErrMissingParameter, what)
	}
	return nil
}

func (d *CredentialDescriptor) validate(what string) error {
	if d.Type == "" || len(d.ID) == 0 {
		return fmt.Errorf("%w: %s: credential descriptor needs type and id", ErrMissingParameter, what)
	}
	return nil
}

// checkExtensions makes sure no extension value is empty (an empty raw value
// would be encoded as null).
func checkExtensions[M ~map[string]V, V ~[]byte](what string, ext M) error {
	for name, v := range ext {
		if len(v) == 0 {
			return fmt.Errorf("%w: %s: extension %q has no value", ErrMissingParameter, what, name)
		}
	}
	return nil
}
