package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// Ceremonies between the steps of a login.
//
// A login keeps no state on the server between its steps: each step hands
// the client a login token, the step's state (what was proven, what comes
// next, the challenge, the expiry) sealed with the keyring
// (XChaCha20-Poly1305, bound to the identity), so any replica holding the
// master key can take the next step. Two stages:
//
//   - stagePassword: the password of the identity was right
//     (LoginPassword). It is good for choosing a second factor
//     (BeginSecondFactor), any number of times until it expires, and for
//     nothing else: it is not a session.
//   - stageFactor: the next proof to check (FinishLogin): a chip's
//     assertion or a code, after a password; or the app's signature and
//     PIN (BeginApp).
//
// What a stored ceremony gave besides the data is single use, and that is
// kept where replay matters: a chip or app challenge is recorded as spent
// (a ceremony record keyed by the challenge, see spentKey) by the first
// Finish that uses it, so a second Finish with the same token fails with
// ErrCeremonyExpired. A code device's token may be finished more than once
// until it expires: every code is still single use, because the watermark
// of RFC 6238 §5.2 only moves up, and every wrong code counts.
//
// Registering a chip takes a sealed token too (sealRegistration, below);
// activating an app keeps a stored ceremony (putCeremony, takeCeremony).

// The stages of a login token.
const (
	stagePassword = "password"
	stageFactor   = "factor"
)

// tokenPrefix starts every login token; stored ceremony keys are 22
// base64url characters and never contain a dot.
const tokenPrefix = "t2."

// maxTokenLen bounds the login tokens accepted (a real one is about 200
// characters), maxRegistrationLen the registration tokens (which carry
// the label: at most about 1,500 characters).
const (
	maxTokenLen        = 512
	maxRegistrationLen = 2048
)

// loginCeremony is the sealed content of a login token.
type loginCeremony struct {
	Stage string `json:"s"`
	// Password is the ID of the password proven (password logins).
	Password string `json:"p,omitempty"`
	// PasswordPending: the password's success is not written yet; the
	// login's last write records it (it had no failures to reset).
	PasswordPending bool `json:"pp,omitempty"`
	// Factor is the authenticator to check next (stageFactor), and Kind
	// its kind as the ceremony began.
	Factor    string      `json:"f,omitempty"`
	Kind      device.Kind `json:"k,omitempty"`
	Challenge []byte      `json:"c,omitempty"`
	Expires   int64       `json:"e"` // Unix nanoseconds
}

func (c *loginCeremony) expires() time.Time { return time.Unix(0, c.Expires).UTC() }

func tokenAD(identityID string) []byte {
	return secrets.AssociatedData("authbench login ceremony", identityID)
}

// sealCeremony returns the login token of c for identity identityID, valid
// for CeremonyTTL from now (c.Expires is set).
func (s *Service) sealCeremony(identityID string, c *loginCeremony) (string, error) {
	c.Expires = s.clock().Add(s.ceremonyTT).UnixNano()
	return s.sealToken(tokenPrefix, tokenAD(identityID), c)
}

// sealToken returns v as JSON sealed with the keyring for associated data
// ad, as a token that starts with prefix.
func (s *Service) sealToken(prefix string, ad []byte, v any) (string, error) {
	raw, err := jsonMarshal(v)
	if err != nil {
		return "", err
	}
	sl, err := s.keys.Seal(raw, ad)
	if err != nil {
		return "", fmt.Errorf("service: sealing a ceremony: %w", err)
	}
	// prefix, base64url(key ID), ".", base64url(blob), in one buffer.
	tok := make([]byte, 0, len(prefix)+b64.EncodedLen(len(sl.KeyID))+1+b64.EncodedLen(len(sl.Blob)))
	tok = append(tok, prefix...)
	tok = b64.AppendEncode(tok, []byte(sl.KeyID))
	tok = append(tok, '.')
	tok = b64.AppendEncode(tok, sl.Blob)
	return string(tok), nil
}

// openToken opens tok, sealed by sealToken with prefix and ad, into v. It
// reports whether tok was well formed (at most max bytes), sealed for ad by the keyring, and
// held JSON.
func (s *Service) openToken(tok, prefix string, max int, ad []byte, v any) bool {
	if len(tok) > max || !strings.HasPrefix(tok, prefix) {
		return false
	}
	kid, blob, ok := strings.Cut(tok[len(prefix):], ".")
	if !ok {
		return false
	}
	var kb [32]byte
	k, err1 := b64.AppendDecode(kb[:0], []byte(kid))
	bl, err2 := b64.AppendDecode(make([]byte, 0, b64.DecodedLen(len(blob))), []byte(blob))
	if err1 != nil || err2 != nil {
		return false
	}
	raw, err := s.keys.Open(secrets.Sealed{KeyID: string(k), Blob: bl}, ad)
	return err == nil && jsonUnmarshal(raw, v) == nil
}

// openCeremony returns the content of login token tok of identity
// identityID at stage. It returns an error wrapping ErrInvalid when tok is
// missing, or ErrCeremonyExpired when it is malformed, was not sealed for
// the identity (or by this server's keys), is at another stage, or has
// expired.
func (s *Service) openCeremony(tok, identityID, stage string) (loginCeremony, error) {
	if tok == "" {
		return loginCeremony{}, invalid("ceremony is missing")
	}
	var c loginCeremony
	if !s.openToken(tok, tokenPrefix, maxTokenLen, tokenAD(identityID), &c) || c.Stage != stage {
		return loginCeremony{}, errBeginAgain()
	}
	if stage == stageFactor && (c.Factor == "" || !c.Kind.Valid() ||
		(c.Kind == device.KindChip || c.Kind == device.KindApp) && len(c.Challenge) != challengeLen) {
		return loginCeremony{}, errBeginAgain()
	}
	if !s.clock().Before(c.expires()) {
		return loginCeremony{}, errBeginAgain()
	}
	return c, nil
}

// errBeginAgain is the answer to a ceremony token that is malformed, not
// this server's, for another identity or stage, or expired.
func errBeginAgain() error { return fmt.Errorf("service: %w; begin again", ErrCeremonyExpired) }

// challengeLen is the size of chip and app challenges.
const challengeLen = 32

// spentKey is the key of the ceremony record that marks the login
// challenge ch as used. It has a colon, which no stored ceremony key has,
// and takeCeremony refuses such keys, so a client cannot take (and so
// revive) a spent mark.
func spentKey(ch []byte) string {
	const prefix = "spent:"
	k := make([]byte, 0, len(prefix)+b64.EncodedLen(len(ch)))
	return string(b64.AppendEncode(append(k, prefix...), ch))
}

func spentCeremony(identityID string, c *loginCeremony) store.Ceremony {
	return store.Ceremony{Key: spentKey(c.Challenge), IdentityID: identityID, ExpiresAt: c.expires()}
}

// spend marks the challenge of login ceremony c as used. It returns an
// error wrapping ErrCeremonyExpired when it was used already, or the
// store's error.
func (s *Service) spend(ctx context.Context, identityID string, c *loginCeremony) error {
	err := s.st.PutCeremony(ctx, spentCeremony(identityID, c))
	if errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	}
	return storeErr(err, "login ceremony")
}

// Registration ceremonies.
//
// A chip's registration keeps no state on the server either: AddAuthenticator
// hands the client a registration token, the ceremonyData (identity,
// authenticator ID, label, challenge, expiry) sealed with the keyring,
// and Activate opens it. The token is single use: the registration stores
// the mark of its challenge (spentKey) in the transaction that stores the
// chip (store.CreateRegistered), and a registration the server refuses
// marks it too, so a token is never checked twice. Beginning and finishing
// a registration thus cost one durable write, not three.

// registrationPrefix starts every registration token.
const registrationPrefix = "r1."

func registrationAD(identityID string) []byte {
	return secrets.AssociatedData("authbench registration ceremony", identityID)
}

// sealRegistration returns the registration token of d, valid for
// CeremonyTTL from now (d.Expires is set).
func (s *Service) sealRegistration(d *ceremonyData) (string, error) {
	d.Expires = s.clock().Add(s.ceremonyTT).UnixNano()
	return s.sealToken(registrationPrefix, registrationAD(d.IdentityID), d)
}

// openRegistration returns the content of registration token tok for
// purpose on authenticator aid of identity identityID, with the mark that
// spends it. It returns an error wrapping ErrInvalid (no token, or a token
// of another operation or authenticator) or ErrCeremonyExpired (malformed,
// not sealed for the identity or by this server's keys, or expired).
func (s *Service) openRegistration(tok, purpose, identityID, aid string) (ceremonyData, store.Ceremony, error) {
	if tok == "" {
		return ceremonyData{}, store.Ceremony{}, invalid("ceremony is missing")
	}
	bad := fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	var d ceremonyData
	if !s.openToken(tok, registrationPrefix, maxRegistrationLen, registrationAD(identityID), &d) || len(d.Challenge) != challengeLen || d.IdentityID != identityID {
		return ceremonyData{}, store.Ceremony{}, bad
	}
	if d.Purpose != purpose || d.AuthenticatorID != aid {
		return ceremonyData{}, store.Ceremony{}, invalid("the ceremony belongs to another operation or authenticator")
	}
	exp := time.Unix(0, d.Expires).UTC()
	if !s.clock().Before(exp) {
		return ceremonyData{}, store.Ceremony{}, bad
	}
	return d, store.Ceremony{Key: spentKey(d.Challenge), IdentityID: identityID, ExpiresAt: exp}, nil
}

// spendRegistration marks the registration ceremony spent as used after
// a refused registration. It returns an error wrapping ErrCeremonyExpired
// when it was used already, or the store's error.
func (s *Service) spendRegistration(ctx context.Context, spent store.Ceremony) error {
	err := s.st.PutCeremony(ctx, spent)
	if errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	}
	return storeErr(err, "registration ceremony")
}
