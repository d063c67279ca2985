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

// MitID's logins (DESIGN §1). Each yields a two-factor session:
//
//   - the password, then a second factor: LoginPasswordChip,
//     LoginPasswordCode, LoginPasswordCodeDevice. The second factor is
//     asked for only after the right password;
//   - the MitID app alone (its key and its PIN): LoginApp.

// passwordThen sends the password and returns the ceremony of the second
// factor: the one with ID aid, or else the only one of kind (preferring an
// active one), or of a code device with serial when serial is set.
func passwordThen(ctx context.Context, c *Client, what, identityID, password, aid, kind, serial string) (*FactorChallenge, error) {
	step, err := c.PasswordLogin(ctx, identityID, password, aid)
	if err != nil {
		return nil, fail(what, "password", "", err)
	}
	if step.Next != nil {
		return step.Next, nil
	}
	var pick []SecondFactor
	for _, f := range step.SecondFactors {
		code := f.Kind == KindCodeDisplay || f.Kind == KindAudioCodeReader
		switch {
		case serial != "" && code && f.Serial == serial:
		case serial == "" && kind == KindChip && f.Kind == KindChip:
		case serial == "" && kind != KindChip && code:
		default:
			continue
		}
		pick = append(pick, f)
	}
	if len(pick) > 1 {
		var active []SecondFactor
		for _, f := range pick {
			if f.State == StateActive {
				active = append(active, f)
			}
		}
		if len(active) > 0 {
			pick = active
		}
	}
	switch len(pick) {
	case 1:
	case 0:
		need := "chip"
		if kind != KindChip {
			need = "code device"
			if serial != "" {
				need += " with serial " + serial
			}
		}
		return nil, fail(what, "second factor", "", fmt.Errorf("client: %w: the identity has no %s to log in with (it has %s)", ErrSecondFactor, need, describe(step.SecondFactors)))
	default:
		return nil, fail(what, "second factor", "", fmt.Errorf("client: %w: the identity has %d possible second factors (%s); say which", ErrSecondFactor, len(pick), describe(pick)))
	}
	next, err := c.SecondFactorLogin(ctx, identityID, step.Ceremony, pick[0].ID)
	if err != nil {
		return nil, fail(what, "second factor", pick[0].ID, err)
	}
	return next, nil
}

// ErrSecondFactor: the password was right, but the identity has no second
// factor that fits (no active chip or code device, or not the one given):
// nothing was counted. Log in with the MitID app, or add a second factor
// through support.
var ErrSecondFactor = errors.New("no fitting second factor")

// describe lists second factors for a message.
func describe(fs []SecondFactor) string {
	if len(fs) == 0 {
		return "none"
	}
	var parts []string
	for _, f := range fs {
		p := f.Kind + " " + f.ID
		if f.Serial != "" && f.Kind != KindChip {
			p += " (serial " + f.Serial + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// LoginPasswordChip logs in with the password and the chip (WebAuthn §7.2
// authentication, driven from the client side): the password, then a
// signature from the chip over the server's challenge (ChipAssertion),
// then finish. chipID names the chip authenticator; "" takes the
// identity's active chip. It returns the two-factor session.
//
// Errors: a *CeremonyError whose Step says where it failed ("password",
// "second factor", "getAssertion", "finish") and which unwraps to the API
// errors (ErrWrongPassword, ErrSuspended, ErrBlocked, ErrSignCount for a
// cloned chip, ErrBadSignature, ErrCredentialRevoked, ErrSecondFactor,
// ...) or the chip errors of ChipAssertion (ctap2.ErrNoCredentials when
// the chip does not hold the credential).
func LoginPasswordChip(ctx context.Context, c *Client, identityID, password, chipID string, chip device.Chip) (*Session, error) {
	const what = "log in with password and chip"
	next, err := passwordThen(ctx, c, what, identityID, password, chipID, KindChip, "")
	if err != nil {
		return nil, err
	}
	if next.PublicKey == nil {
		return nil, fail(what, "second factor", next.Authenticator, fmt.Errorf("client: %w: %s is not a chip", ErrBadResponse, next.Authenticator))
	}
	cctx, cancel := c.chipContext(ctx, next.PublicKey.Timeout)
	cred, err := ChipAssertion(cctx, chip, next.PublicKey, c.origin(next.PublicKey.RPID))
	cancel()
	if err != nil {
		return nil, fail(what, "getAssertion", next.Authenticator, err)
	}
	s, err := c.FinishLogin(ctx, identityID, FinishLoginRequest{Ceremony: next.Ceremony, Credential: cred})
	if err != nil {
		return nil, fail(what, "finish", next.Authenticator, err)
	}
	return s, nil
}

// LoginPasswordCode logs in with the password and a one-time code read
// from a code display or audio code reader. codeID names the code device;
// "" takes the identity's active code device. It returns the two-factor
// session.
//
// Errors: a *CeremonyError that unwraps to the API errors:
// ErrWrongPassword, ErrWrongCode (a failed attempt; see
// APIError.Failures), ErrCodeReplayed, ErrSuspended, ErrBlocked,
// ErrSecondFactor, ...
func LoginPasswordCode(ctx context.Context, c *Client, identityID, password, codeID, code string) (*Session, error) {
	const what = "log in with password and code"
	next, err := passwordThen(ctx, c, what, identityID, password, codeID, KindCodeDisplay, "")
	if err != nil {
		return nil, err
	}
	return finishCode(ctx, c, what, identityID, next, code)
}

// LoginPasswordCodeDevice logs in with the password and the code device
// dev: it asks the device for its serial, sends the password, picks the
// identity's code device with that serial, presses the button (or has the
// audio reader speak; the code is read from the device) and sends the
// code. It returns the two-factor session.
//
// Errors: those of LoginPasswordCode, and the device's (steps "identify",
// "press").
func LoginPasswordCodeDevice(ctx context.Context, c *Client, identityID, password string, dev device.CodeDevice) (*Session, error) {
	const what = "log in with password and code device"
	info, err := dev.Identify(ctx)
	if err != nil {
		return nil, fail(what, "identify", "", err)
	}
	next, err := passwordThen(ctx, c, what, identityID, password, "", KindCodeDisplay, info.Serial)
	if err != nil {
		return nil, err
	}
	code, err := dev.Press(ctx)
	if err != nil {
		return nil, fail(what, "press", next.Authenticator, err)
	}
	return finishCode(ctx, c, what, identityID, next, code.Digits)
}

func finishCode(ctx context.Context, c *Client, what, identityID string, next *FactorChallenge, code string) (*Session, error) {
	if next.Kind != KindCodeDisplay && next.Kind != KindAudioCodeReader {
		return nil, fail(what, "second factor", next.Authenticator, fmt.Errorf("client: %w: %s is a %s, not a code device", ErrBadResponse, next.Authenticator, next.Kind))
	}
	s, err := c.FinishLogin(ctx, identityID, FinishLoginRequest{Ceremony: next.Ceremony, Code: code})
	if err != nil {
		return nil, fail(what, "finish", next.Authenticator, err)
	}
	return s, nil
}

// LoginApp logs in with a MitID app alone (its key and PIN are two
// factors): begin, the app signs the challenge, finish with the PIN the
// person typed. It returns the two-factor session.
//
// Errors: a *CeremonyError that unwraps to the API errors (ErrWrongPIN, a
// failed attempt; ErrBadSignature, not counted; ErrSuspended; ErrBlocked;
// ...) or the app's signing error (step "sign").
func LoginApp(ctx context.Context, c *Client, identityID, authID string, app AppKey, pin string) (*Session, error) {
	const what = "log in with app"
	lc, err := c.AppLogin(ctx, identityID, authID)
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
	s, err := c.FinishLogin(ctx, identityID, FinishLoginRequest{Ceremony: lc.Ceremony, PIN: pin, Signature: sig})
	if err != nil {
		return nil, fail(what, "finish", authID, err)
	}
	return s, nil
}
