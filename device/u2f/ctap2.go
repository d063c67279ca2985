package u2f

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// The CTAP2 authenticator API over U2F, for U2F-only authenticators (CTAP
// 2.1 §10, "Interoperating with CTAP1/U2F authenticators"). Every host
// transport drives a U2F-only chip through Chip: driver/usb when the key's
// CTAPHID_INIT capabilities lack CBOR, driver/pcsc when a "U2F_V2" applet
// refuses authenticatorGetInfo, and in-process clients of a simulated chip.

// Parameters of the dummy U2F_REGISTER that makes a U2F-only authenticator
// wait for a touch before the host reports an excluded credential (CTAP
// 2.1 §10.2 step 1): the user sees the key react, and the credential it
// makes belongs to no real application.
var (
	dummyApplication = [32]byte{0: 'a', 1: 'u', 2: 't', 3: 'h', 4: 'b', 5: 'e', 6: 'n', 7: 'c', 8: 'h', 31: 0x01}
	dummyChallenge   = [32]byte{0: 'e', 1: 'x', 2: 'c', 3: 'l', 4: 'u', 5: 'd', 6: 'e', 7: 'd', 31: 0x02}
)

// Chip is a U2F-only authenticator seen as a device.Chip: the CTAP2
// requests it is given become U2F requests sent through a Client, and the
// U2F responses become CTAP2 answers, as CTAP 2.1 §10 describes. It is safe
// for concurrent use when the Client's Messenger is.
type Chip struct {
	c *Client
}

var (
	_ device.Chip             = (*Chip)(nil)
	_ device.ProtocolReporter = (*Chip)(nil)
)

// NewChip returns the CTAP2 view of the U2F authenticator behind c.
func NewChip(c *Client) *Chip { return &Chip{c: c} }

// U2F returns the Client the Chip talks through.
func (t *Chip) U2F() *Client { return t.c }

// Protocols reports device.ProfileU2FOnly.
func (t *Chip) Protocols() device.Protocols { return device.ProfileU2FOnly }

// Info returns, without asking the authenticator, what a U2F-only
// authenticator offers in authenticatorGetInfo form (CTAP 2.1 §6.4):
// version "U2F_V2", a zero AAGUID (U2F has none), ES256 only, credential
// IDs (key handles) of up to 255 bytes, and the options up=true, rk=false,
// plat=false. It never fails.
func (t *Chip) Info(ctx context.Context) (*ctap2.Info, error) {
	return &ctap2.Info{
		Versions:              []string{Version},
		AAGUID:                make([]byte, ctap2.AAGUIDSize),
		Options:               map[string]bool{"rk": false, "up": true, "plat": false},
		MaxCredentialIDLength: MaxKeyHandleLen,
		Algorithms:            []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
	}, nil
}

// usable reports whether c can be a U2F key handle.
func usable(c ctap2.CredentialDescriptor) bool {
	return c.Type == ctap2.CredentialTypePublicKey && len(c.ID) > 0 && len(c.ID) <= MaxKeyHandleLen
}

// MakeCredential maps authenticatorMakeCredential to U2F_REGISTER (CTAP
// 2.1 §10.2): the request must offer ES256 and ask for neither a resident
// key nor user verification; each excludeList entry is tried with a
// check-only U2F_AUTHENTICATE, and when the authenticator knows one it is
// made to wait for a touch with a dummy registration and the credential is
// reported excluded; otherwise SHA-256(rp.id) is the application
// parameter, clientDataHash the challenge, and the register response
// becomes a "fido-u2f" attestation (see AttestationFromRegister).
//
// Errors: the request's validation error; ctap2.ErrUnsupportedAlgorithm
// without ES256; ctap2.ErrUnsupportedOption for rk, uv or a
// pinUvAuthParam; ctap2.ErrCredentialExcluded; ctap2.ErrInvalidResponse
// for a register response that cannot become an attestation; and the
// errors of Client.Register and Client.CheckKeyHandle (ctx's error when
// nobody touched the authenticator in time).
func (t *Chip) MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error) {
	const what = "u2f: authenticatorMakeCredential over U2F_REGISTER"
	if err := req.Validate(); err != nil {
		return nil, err
	}
	es256 := false
	for _, p := range req.PubKeyCredParams {
		if p.Type == ctap2.CredentialTypePublicKey && p.Alg == ctap2.AlgES256 {
			es256 = true
		}
	}
	if !es256 {
		return nil, fmt.Errorf("%s: U2F keys are ES256 only: %w", what, ctap2.ErrUnsupportedAlgorithm)
	}
	if req.Options["rk"] || req.Options["uv"] || req.PINUVAuthParam != nil {
		return nil, fmt.Errorf("%s: U2F has no resident keys and no user verification: %w", what, ctap2.ErrUnsupportedOption)
	}
	app := ctap2.RPIDHash(req.RP.ID)
	for _, c := range req.ExcludeList {
		if !usable(c) {
			continue // cannot be a key handle of this authenticator
		}
		known, err := t.c.CheckKeyHandle(ctx, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: excludeList: %w", what, err)
		}
		if known {
			if _, err := t.c.Register(ctx, dummyChallenge, dummyApplication); err != nil {
				return nil, fmt.Errorf("%s: excludeList: %w", what, err)
			}
			return nil, fmt.Errorf("%s: %w", what, ctap2.ErrCredentialExcluded)
		}
	}
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	resp, err := t.c.Register(ctx, challenge, app)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return AttestationFromRegister(app, resp)
}

// AttestationFromRegister builds the CTAP2 answer to a makeCredential from
// a U2F register response for application app (CTAP 2.1 §10.2; WebAuthn
// §8.6): format "fido-u2f"; authenticator data with the flags UP and AT,
// sign count 0, a zero AAGUID, the key handle as credential ID and the
// public key as a COSE EC2 ES256 key; the statement holds the signature
// and the attestation certificate as x5c.
//
// It returns an error wrapping ctap2.ErrInvalidResponse when the key
// handle is empty or the public key is not a P-256 point.
func AttestationFromRegister(app [32]byte, resp *RegisterResponse) (*ctap2.Attestation, error) {
	if len(resp.KeyHandle) == 0 {
		return nil, fmt.Errorf("u2f: %w: register response with an empty key handle", ctap2.ErrInvalidResponse)
	}
	pub, err := resp.Key()
	if err != nil {
		return nil, fmt.Errorf("u2f: %w: register response: %v", ctap2.ErrInvalidResponse, err)
	}
	ad := &ctap2.AuthData{
		RPIDHash: app,
		Flags:    ctap2.FlagUP | ctap2.FlagAT,
		AttestedCredential: &ctap2.AttestedCredentialData{
			CredentialID: append([]byte(nil), resp.KeyHandle...),
			PublicKey:    ctap2.EncodeES256PublicKey(pub),
		},
	}
	raw, err := ad.Encode()
	if err != nil {
		return nil, fmt.Errorf("u2f: %w: %v", ctap2.ErrInvalidResponse, err)
	}
	return &ctap2.Attestation{
		Format:   ctap2.FormatFIDOU2F,
		AuthData: raw,
		Statement: ctap2.AttestationStatement{
			Sig: append([]byte(nil), resp.Signature...),
			X5C: [][]byte{append([]byte(nil), resp.AttestationCert...)},
		},
	}, nil
}

// GetAssertion maps authenticatorGetAssertion to U2F_AUTHENTICATE (CTAP
// 2.1 §10.3): each allowList entry is tried with a check-only
// authenticate, and the first key handle the authenticator knows for
// SHA-256(rpId) signs, with a touch (control 03), or without one when
// option "up" is false (control 08). The U2F signature covers application
// | presence byte | counter | challenge, which is exactly authenticatorData
// | clientDataHash, so it verifies as a WebAuthn assertion signature (see
// AssertionFromAuthenticate).
//
// Errors: the request's validation error; ctap2.ErrUnsupportedOption for
// uv or a pinUvAuthParam; ctap2.ErrNoCredentials when the allowList is
// empty (U2F has no discoverable credentials) or names no key handle the
// authenticator knows; and the errors of Client.Authenticate and
// Client.CheckKeyHandle.
func (t *Chip) GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error) {
	const what = "u2f: authenticatorGetAssertion over U2F_AUTHENTICATE"
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Options["uv"] || req.PINUVAuthParam != nil {
		return nil, fmt.Errorf("%s: U2F has no user verification: %w", what, ctap2.ErrUnsupportedOption)
	}
	control := ControlEnforcePresence
	if up, ok := req.Options["up"]; ok && !up {
		control = ControlDontEnforcePresence
	}
	app := ctap2.RPIDHash(req.RPID)
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	for _, c := range req.AllowList {
		if !usable(c) {
			continue
		}
		known, err := t.c.CheckKeyHandle(ctx, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if !known {
			continue
		}
		resp, err := t.c.Authenticate(ctx, control, challenge, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return AssertionFromAuthenticate(app, c.ID, resp)
	}
	if len(req.AllowList) == 0 {
		return nil, fmt.Errorf("%s: U2F has no discoverable credentials: an allowList is needed: %w", what, ctap2.ErrNoCredentials)
	}
	return nil, fmt.Errorf("%s: no key handle in the allowList is known to the authenticator: %w", what, ctap2.ErrNoCredentials)
}

// AssertionFromAuthenticate builds the CTAP2 answer to a getAssertion from
// a U2F authenticate response for application app and the key handle that
// signed (CTAP 2.1 §10.3): authenticator data of rpIdHash = app, the
// presence byte as flags and the counter as sign count; the signature as
// it is; the key handle as the credential.
//
// It returns an error wrapping ctap2.ErrInvalidResponse when the presence
// byte has bits that are not authenticator data flags of an assertion.
func AssertionFromAuthenticate(app [32]byte, keyHandle []byte, resp *AuthenticateResponse) (*ctap2.Assertion, error) {
	ad := &ctap2.AuthData{RPIDHash: app, Flags: resp.UserPresence, SignCount: resp.Counter}
	raw, err := ad.Encode()
	if err != nil {
		return nil, fmt.Errorf("u2f: %w: presence byte %02X: %v", ctap2.ErrInvalidResponse, resp.UserPresence, err)
	}
	return &ctap2.Assertion{
		Credential: &ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: append([]byte(nil), keyHandle...)},
		AuthData:   raw,
		Signature:  append([]byte(nil), resp.Signature...),
	}, nil
}
