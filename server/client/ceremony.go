package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
)

// Kinds of authenticator, as the API names them (device.Kind values).
const (
	KindChip            = string(device.KindChip)
	KindCodeDisplay     = string(device.KindCodeDisplay)
	KindAudioCodeReader = string(device.KindAudioCodeReader)
	KindApp             = string(device.KindApp)
	KindPassword        = string(device.KindPassword)
)

// CeremonyError is a ceremony that failed at one step. It says which
// authenticator the server already holds for it (AuthenticatorID; a chip,
// code device or app added but not activated stays pending on the
// server), and unwraps to the error of the step: an *APIError, a chip's
// *ctap2.StatusError, a device error, and so on.
type CeremonyError struct {
	Ceremony        string // "enroll chip", "log in with chip", ...
	Step            string // "add", "makeCredential", "activate", "begin", "getAssertion", "press", "finish", ...
	AuthenticatorID string // "" when the server holds none yet
	Err             error
}

// Error returns "client: enroll chip: makeCredential: ...".
func (e *CeremonyError) Error() string {
	return fmt.Sprintf("client: %s: %s: %s", e.Ceremony, e.Step, strings.TrimPrefix(e.Err.Error(), "client: "))
}

// Unwrap returns the step's error.
func (e *CeremonyError) Unwrap() error { return e.Err }

func fail(ceremony, step, aid string, err error) error {
	return &CeremonyError{Ceremony: ceremony, Step: step, AuthenticatorID: aid, Err: err}
}

// origin returns the WebAuthn origin for rpID.
func (c *Client) origin(rpID string) string {
	if c.opts.Origin != "" {
		return c.opts.Origin
	}
	return "https://" + rpID
}

// chipContext bounds a chip operation by the ceremony's timeout (WebAuthn
// options timeout, in milliseconds; 0 for none) and routes keepalives to
// Options.Keepalive.
func (c *Client) chipContext(ctx context.Context, timeoutMS int64) (context.Context, context.CancelFunc) {
	if c.opts.Keepalive != nil {
		ctx = ctap2.WithKeepalive(ctx, c.opts.Keepalive)
	}
	if timeoutMS > 0 {
		return context.WithTimeout(ctx, time.Duration(timeoutMS)*time.Millisecond)
	}
	return context.WithCancel(ctx)
}

// The WebAuthn types of the API are those of device/webauthn, the one
// WebAuthn package of the tree (WebAuthn Level 3 §5.1 JSON forms; binary
// members are base64url strings).
type (
	CreationOptions        = webauthn.CreationOptions        // PublicKeyCredentialCreationOptionsJSON
	RequestOptions         = webauthn.RequestOptions         // PublicKeyCredentialRequestOptionsJSON
	CredentialDescriptor   = webauthn.CredentialDescriptor   // PublicKeyCredentialDescriptorJSON
	RegistrationResponse   = webauthn.RegistrationResponse   // RegistrationResponseJSON
	AuthenticationResponse = webauthn.AuthenticationResponse // AuthenticationResponseJSON
)

// ChipRegistration is webauthn.Create, the client platform's part of
// WebAuthn §5.1.3 for a chip, with creation options from the server: it
// returns RegistrationResponseJSON for opts' challenge as sent from origin.
//
// Errors: an error wrapping ErrBadResponse when opts lack a challenge or
// hold IDs that are not base64url; otherwise those of webauthn.Create: the
// chip's error, wrapped (a *ctap2.StatusError such as
// ctap2.ErrCredentialExcluded when the chip already holds an excluded
// credential, ctap2.ErrOperationDenied when the touch was refused,
// ctap2.ErrKeepaliveCancel or a context error when nobody touched it in
// time, device.ErrRemoved and the like from the transport).
func ChipRegistration(ctx context.Context, chip device.Chip, opts *CreationOptions, origin string) (*RegistrationResponse, error) {
	r, err := webauthn.Create(ctx, chip, opts, origin)
	return r, badOptions(err)
}

// ChipAssertion is webauthn.Get, the client platform's part of WebAuthn
// §5.1.4 for a chip, with request options from the server: it returns
// AuthenticationResponseJSON for opts' challenge as sent from origin.
//
// Errors: an error wrapping ErrBadResponse when opts lack a challenge or
// hold IDs that are not base64url; otherwise those of webauthn.Get
// (ctap2.ErrNoCredentials when the chip holds none of the allowed
// credentials, and those listed on ChipRegistration).
func ChipAssertion(ctx context.Context, chip device.Chip, opts *RequestOptions, origin string) (*AuthenticationResponse, error) {
	r, err := webauthn.Get(ctx, chip, opts, origin)
	return r, badOptions(err)
}

// badOptions reports WebAuthn options the server sent that cannot be used
// as ErrBadResponse.
func badOptions(err error) error {
	if errors.Is(err, webauthn.ErrInvalid) {
		return fmt.Errorf("client: %w: %v", ErrBadResponse, err)
	}
	return err
}

// EnrollChip adds a chip to an identity and activates it (WebAuthn §7.1
// registration, driven from the client side): it adds a pending chip
// authenticator, has the chip create a credential for the server's
// creation options (ChipRegistration, with c's origin and keepalive
// callback), and sends the attestation to the activate endpoint. It
// returns the active authenticator.
//
// Errors: a *CeremonyError that says the step and unwraps to its error:
// the API errors of AddAuthenticator and Activate (ErrQuotaExceeded,
// ErrAttestationUntrusted, ErrAlreadyRegistered, ErrCredentialRevoked,
// ...) and the chip errors of ChipRegistration (ctap2.ErrCredentialExcluded
// when the chip is already enrolled for this identity).
func EnrollChip(ctx context.Context, c *Client, identityID, label string, chip device.Chip) (*Authenticator, error) {
	const what = "enroll chip"
	added, err := c.AddAuthenticator(ctx, identityID, AddRequest{Kind: KindChip, Label: label})
	if err != nil {
		return nil, fail(what, "add", "", err)
	}
	aid := added.Authenticator.ID
	opts := added.Activation.PublicKey
	if added.Activation.Ceremony == "" || opts == nil {
		return nil, fail(what, "add", aid, fmt.Errorf("client: %w: no ceremony or creation options for the chip", ErrBadResponse))
	}
	cctx, cancel := c.chipContext(ctx, opts.Timeout)
	cred, err := ChipRegistration(cctx, chip, opts, c.origin(opts.RP.ID))
	cancel()
	if err != nil {
		return nil, fail(what, "makeCredential", aid, err)
	}
	a, err := c.Activate(ctx, identityID, aid, ActivateRequest{Ceremony: added.Activation.Ceremony, Credential: cred})
	if err != nil {
		return nil, fail(what, "activate", aid, err)
	}
	return a, nil
}

// LoginChip logs in with a chip (WebAuthn §7.2 authentication, driven
// from the client side): begin, a signature from the chip over the
// server's challenge (ChipAssertion), finish. It returns the session.
//
// Errors: a *CeremonyError that unwraps to the API errors of BeginLogin
// and FinishLogin (ErrSuspended, ErrBlocked, ErrSignCount for a cloned
// chip, ErrBadSignature, ErrCredentialRevoked, ...) or the chip errors of
// ChipAssertion (ctap2.ErrNoCredentials when the chip does not hold the
// credential).
func LoginChip(ctx context.Context, c *Client, identityID, authID string, chip device.Chip) (*Session, error) {
	const what = "log in with chip"
	lc, err := c.BeginLogin(ctx, identityID, authID)
	if err != nil {
		return nil, fail(what, "begin", authID, err)
	}
	if lc.PublicKey == nil {
		return nil, fail(what, "begin", authID, fmt.Errorf("client: %w: no request options for a chip", ErrBadResponse))
	}
	cctx, cancel := c.chipContext(ctx, lc.PublicKey.Timeout)
	cred, err := ChipAssertion(cctx, chip, lc.PublicKey, c.origin(lc.PublicKey.RPID))
	cancel()
	if err != nil {
		return nil, fail(what, "getAssertion", authID, err)
	}
	s, err := c.FinishLogin(ctx, identityID, authID, FinishLoginRequest{Ceremony: lc.Ceremony, Credential: cred})
	if err != nil {
		return nil, fail(what, "finish", authID, err)
	}
	return s, nil
}

// EnrollCodeDevice adds a code display or audio code reader to an
// identity and activates it: it asks the device who it is (kind and
// serial number), adds it, and activates it with a fresh code
// (ActivateCodeDevice). The server must already hold the device's secret
// (a PSKC import). It returns the active authenticator.
//
// Errors: a *CeremonyError that unwraps to the device's error (step
// "identify" or "press") or the API's (ErrSerialRevoked for a serial that
// was blocked for good, ErrQuotaExceeded, ErrNotFound or ErrBadRequest for
// a serial the server has no secret for, ErrWrongCode).
func EnrollCodeDevice(ctx context.Context, c *Client, identityID, label string, dev device.CodeDevice) (*Authenticator, error) {
	const what = "enroll code device"
	info, err := dev.Identify(ctx)
	if err != nil {
		return nil, fail(what, "identify", "", err)
	}
	if info.Kind != device.KindCodeDisplay && info.Kind != device.KindAudioCodeReader {
		return nil, fail(what, "identify", "", fmt.Errorf("client: the device is a %q, not a code device: %w", info.Kind, device.ErrNotSupported))
	}
	added, err := c.AddAuthenticator(ctx, identityID, AddRequest{Kind: string(info.Kind), Label: label, Serial: info.Serial})
	if err != nil {
		return nil, fail(what, "add", "", err)
	}
	a, err := ActivateCodeDevice(ctx, c, identityID, added.Authenticator.ID, dev)
	if err != nil {
		var ce *CeremonyError
		if errors.As(err, &ce) {
			ce.Ceremony = what
		}
		return nil, err
	}
	return a, nil
}

// ActivateCodeDevice activates a pending code device: it presses the
// button and sends the code. It returns the active authenticator.
//
// Errors: a *CeremonyError that unwraps to the device's error (step
// "press") or the API's (step "activate": ErrWrongCode, ErrCodeReplayed,
// ...).
func ActivateCodeDevice(ctx context.Context, c *Client, identityID, authID string, dev device.CodeDevice) (*Authenticator, error) {
	const what = "activate code device"
	code, err := dev.Press(ctx)
	if err != nil {
		return nil, fail(what, "press", authID, err)
	}
	a, err := c.Activate(ctx, identityID, authID, ActivateRequest{Code: code.Digits})
	if err != nil {
		return nil, fail(what, "activate", authID, err)
	}
	return a, nil
}

// LoginCode logs in with a code device's one-time code: begin, then
// finish with code. It returns the session.
//
// Errors: a *CeremonyError that unwraps to the API errors of BeginLogin
// and FinishLogin: ErrWrongCode (a failed attempt; see APIError.Failures),
// ErrCodeReplayed, ErrSuspended, ErrBlocked, ...
func LoginCode(ctx context.Context, c *Client, identityID, authID, code string) (*Session, error) {
	const what = "log in with code"
	lc, err := c.BeginLogin(ctx, identityID, authID)
	if err != nil {
		return nil, fail(what, "begin", authID, err)
	}
	s, err := c.FinishLogin(ctx, identityID, authID, FinishLoginRequest{Ceremony: lc.Ceremony, Code: code})
	if err != nil {
		return nil, fail(what, "finish", authID, err)
	}
	return s, nil
}

// LoginCodeDevice presses a code device's button and logs in with the code
// (LoginCode). Errors: those of LoginCode, and the device's (step
// "press").
func LoginCodeDevice(ctx context.Context, c *Client, identityID, authID string, dev device.CodeDevice) (*Session, error) {
	code, err := dev.Press(ctx)
	if err != nil {
		return nil, fail("log in with code", "press", authID, err)
	}
	return LoginCode(ctx, c, identityID, authID, code.Digits)
}

// AppKey is what the app ceremonies need of a MitID app: its public key
// and signatures over the SHA-256 hash of a challenge. *app.App (sim/app)
// implements it.
type AppKey interface {
	// PublicKeyDER returns the P-256 public key as a DER
	// SubjectPublicKeyInfo.
	PublicKeyDER() []byte
	// Sign returns the DER ECDSA signature of SHA-256(challenge).
	Sign(challenge []byte) ([]byte, error)
}

// EnrollApp adds a MitID app with its public key and PIN, then activates
// it by signing the server's challenge. It returns the active
// authenticator.
//
// Errors: a *CeremonyError that unwraps to the API errors (ErrQuotaExceeded
// for a fourth app, ErrBadRequest for a PIN that is not six digits,
// ErrBadSignature) or the app's signing error (step "sign").
func EnrollApp(ctx context.Context, c *Client, identityID, label string, app AppKey, pin string) (*Authenticator, error) {
	const what = "enroll app"
	added, err := c.AddAuthenticator(ctx, identityID, AddRequest{Kind: KindApp, Label: label, PublicKey: app.PublicKeyDER(), PIN: pin})
	if err != nil {
		return nil, fail(what, "add", "", err)
	}
	aid := added.Authenticator.ID
	if added.Activation.Ceremony == "" || len(added.Activation.Challenge) == 0 {
		return nil, fail(what, "add", aid, fmt.Errorf("client: %w: no ceremony or challenge for the app", ErrBadResponse))
	}
	sig, err := app.Sign(added.Activation.Challenge)
	if err != nil {
		return nil, fail(what, "sign", aid, err)
	}
	a, err := c.Activate(ctx, identityID, aid, ActivateRequest{Ceremony: added.Activation.Ceremony, Signature: sig})
	if err != nil {
		return nil, fail(what, "activate", aid, err)
	}
	return a, nil
}

// LoginApp logs in with a MitID app: begin, the app signs the challenge,
// finish with the PIN the person typed. It returns the session.
//
// Errors: a *CeremonyError that unwraps to the API errors (ErrWrongPIN, a
// failed attempt; ErrBadSignature; ErrSuspended; ErrBlocked; ...) or the
// app's signing error (step "sign").
func LoginApp(ctx context.Context, c *Client, identityID, authID string, app AppKey, pin string) (*Session, error) {
	const what = "log in with app"
	lc, err := c.BeginLogin(ctx, identityID, authID)
	if err != nil {
		return nil, fail(what, "begin", authID, err)
	}
	if len(lc.Challenge) == 0 {
		return nil, fail(what, "begin", authID, fmt.Errorf("client: %w: no challenge for the app", ErrBadResponse))
	}
	sig, err := app.Sign(lc.Challenge)
	if err != nil {
		return nil, fail(what, "sign", authID, err)
	}
	s, err := c.FinishLogin(ctx, identityID, authID, FinishLoginRequest{Ceremony: lc.Ceremony, PIN: pin, Signature: sig})
	if err != nil {
		return nil, fail(what, "finish", authID, err)
	}
	return s, nil
}

// AddPassword adds a password authenticator; it is active at once. It
// returns the authenticator.
//
// Errors: a *CeremonyError that unwraps to the API errors
// (ErrQuotaExceeded when the identity has a password, ErrBadRequest for
// one the server's rules refuse).
func AddPassword(ctx context.Context, c *Client, identityID, label, password string) (*Authenticator, error) {
	added, err := c.AddAuthenticator(ctx, identityID, AddRequest{Kind: KindPassword, Label: label, Password: password})
	if err != nil {
		return nil, fail("add password", "add", "", err)
	}
	return &added.Authenticator, nil
}

// LoginPassword logs in with the password: begin, then finish with it. It
// returns the session.
//
// Errors: a *CeremonyError that unwraps to the API errors
// (ErrWrongPassword, a failed attempt; ErrSuspended; ErrBlocked; ...).
func LoginPassword(ctx context.Context, c *Client, identityID, authID, password string) (*Session, error) {
	const what = "log in with password"
	lc, err := c.BeginLogin(ctx, identityID, authID)
	if err != nil {
		return nil, fail(what, "begin", authID, err)
	}
	s, err := c.FinishLogin(ctx, identityID, authID, FinishLoginRequest{Ceremony: lc.Ceremony, Password: password})
	if err != nil {
		return nil, fail(what, "finish", authID, err)
	}
	return s, nil
}
