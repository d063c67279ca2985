package pcsc

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// CTAP2 over U2F for U2F-only cards (CTAP 2.1 §10, "Interoperating with
// CTAP1/U2F authenticators").

// Parameters of the dummy U2F_REGISTER that makes a U2F-only card wait for a
// touch before the chip reports an excluded credential (CTAP 2.1 §10.2):
// the user sees the card react, and no credential is made for a real RP.
var (
	dummyApplication = [32]byte{0: 'a', 1: 'u', 2: 't', 3: 'h', 4: 'b', 5: 'e', 6: 'n', 7: 'c', 8: 'h', 31: 0x01}
	dummyChallenge   = [32]byte{0: 'e', 1: 'x', 2: 'c', 3: 'l', 4: 'u', 5: 'd', 6: 'e', 7: 'd', 31: 0x02}
)

// u2fInfo is what a U2F-only card offers, in getInfo form (CTAP 2.1 §6.4).
func u2fInfo() *ctap2.Info {
	return &ctap2.Info{
		Versions:              []string{"U2F_V2"},
		AAGUID:                make([]byte, ctap2.AAGUIDSize),
		Options:               map[string]bool{"rk": false, "up": true, "plat": false},
		MaxCredentialIDLength: u2f.MaxKeyHandleLen,
		Algorithms:            []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
	}
}

// u2fMakeCredential maps authenticatorMakeCredential to U2F_REGISTER (CTAP
// 2.1 §10.2): the rpIdHash is the U2F application parameter, the
// clientDataHash the challenge, the key handle the credential ID, and the
// register response becomes a "fido-u2f" attestation (WebAuthn §8.6) with
// a zero AAGUID and a sign count of 0.
func (ch *Chip) u2fMakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error) {
	const what = "pcsc: authenticatorMakeCredential over U2F"
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
	if req.Options["rk"] || req.Options["uv"] || len(req.PINUVAuthParam) > 0 {
		return nil, fmt.Errorf("%s: U2F has no resident keys and no user verification: %w", what, ctap2.ErrUnsupportedOption)
	}
	app := ctap2.RPIDHash(req.RP.ID)
	for _, c := range req.ExcludeList {
		if c.Type != ctap2.CredentialTypePublicKey || len(c.ID) == 0 || len(c.ID) > u2f.MaxKeyHandleLen {
			continue // cannot be a key handle of this card
		}
		known, err := ch.u2f.CheckKeyHandle(ctx, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: excludeList: %w", what, err)
		}
		if known {
			if _, err := ch.u2f.Register(ctx, dummyChallenge, dummyApplication); err != nil {
				return nil, fmt.Errorf("%s: excludeList: %w", what, err)
			}
			return nil, fmt.Errorf("%s: %w", what, ctap2.ErrCredentialExcluded)
		}
	}
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	resp, err := ch.u2f.Register(ctx, challenge, app)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return attestationFromU2F(app, resp)
}

// attestationFromU2F builds the "fido-u2f" attestation of a U2F register
// response (WebAuthn §8.6: authenticator data with the AT flag, the key
// handle as credential ID, the public key as a COSE EC2 key; the statement
// holds the signature and the attestation certificate).
func attestationFromU2F(app [32]byte, resp *u2f.RegisterResponse) (*ctap2.Attestation, error) {
	if len(resp.KeyHandle) == 0 {
		return nil, fmt.Errorf("%w: U2F register response with an empty key handle", ctap2.ErrInvalidResponse)
	}
	pub, err := resp.Key()
	if err != nil {
		return nil, fmt.Errorf("%w: U2F register response: %v", ctap2.ErrInvalidResponse, err)
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
		return nil, fmt.Errorf("%w: %v", ctap2.ErrInvalidResponse, err)
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

// u2fGetAssertion maps authenticatorGetAssertion to U2F_AUTHENTICATE (CTAP
// 2.1 §10.3): each allowList entry is checked with a check-only
// authenticate, and the first key handle the card knows signs. The U2F
// signature covers application | presence byte | counter | challenge, which
// is exactly authenticatorData | clientDataHash, so it verifies as a
// WebAuthn assertion signature.
func (ch *Chip) u2fGetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error) {
	const what = "pcsc: authenticatorGetAssertion over U2F"
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Options["uv"] || len(req.PINUVAuthParam) > 0 {
		return nil, fmt.Errorf("%s: U2F has no user verification: %w", what, ctap2.ErrUnsupportedOption)
	}
	control := u2f.ControlEnforcePresence
	if up, ok := req.Options["up"]; ok && !up {
		control = u2f.ControlDontEnforcePresence
	}
	app := ctap2.RPIDHash(req.RPID)
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	for _, c := range req.AllowList {
		if c.Type != ctap2.CredentialTypePublicKey || len(c.ID) == 0 || len(c.ID) > u2f.MaxKeyHandleLen {
			continue
		}
		known, err := ch.u2f.CheckKeyHandle(ctx, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if !known {
			continue
		}
		resp, err := ch.u2f.Authenticate(ctx, control, challenge, app, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return assertionFromU2F(app, c.ID, resp)
	}
	return nil, fmt.Errorf("%s: no key handle in allowList is known to the card: %w", what, ctap2.ErrNoCredentials)
}

// assertionFromU2F builds the assertion of a U2F authenticate response.
func assertionFromU2F(app [32]byte, keyHandle []byte, resp *u2f.AuthenticateResponse) (*ctap2.Assertion, error) {
	ad := &ctap2.AuthData{RPIDHash: app, Flags: resp.UserPresence, SignCount: resp.Counter}
	raw, err := ad.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: U2F presence byte %02X: %v", ctap2.ErrInvalidResponse, resp.UserPresence, err)
	}
	return &ctap2.Assertion{
		Credential: &ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: append([]byte(nil), keyHandle...)},
		AuthData:   raw,
		Signature:  append([]byte(nil), resp.Signature...),
	}, nil
}
