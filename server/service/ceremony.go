package service

import (
	"context"
	"encoding/binary"
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
// base64url characters and never contain a dot. ("t2." tokens held the
// ceremony as JSON.)
const tokenPrefix = "t3."

// maxTokenLen bounds the login tokens accepted (a real one is about 150
// characters), maxRegistrationLen the registration tokens (which carry
// the label: at most about 900 characters).
const (
	maxTokenLen        = 512
	maxRegistrationLen = 2048
)

// loginCeremony is the sealed content of a login token, in the binary
// form of marshal.
type loginCeremony struct {
	Stage string
	// Password is the ID of the password proven (password logins).
	Password string
	// PasswordPending: the password's success is not written yet; the
	// login's last write records it (it had no failures to reset).
	PasswordPending bool
	// Factor is the authenticator to check next (stageFactor), and Kind
	// its kind as the ceremony began.
	Factor    string
	Kind      device.Kind
	Challenge []byte
	Expires   int64 // Unix nanoseconds
}

// The sealed form of a login ceremony (its plaintext; the seal makes it
// tamper-evident, and it is small so that the token is short): a version
// byte, the stage, the flags, then Password, Factor, Kind and Challenge
// each as a length byte and its bytes, then Expires as 8 bytes, big
// endian. IDs and kinds are at most 64 bytes (CheckID), a challenge 32.
const (
	ceremonyVersion     = 1
	flagPasswordPending = 1 << 0
)

// The stages, as their byte.
var stageCodes = map[string]byte{stagePassword: 1, stageFactor: 2}

// marshal returns the sealed form of c.
func (c *loginCeremony) marshal() ([]byte, error) {
	code, ok := stageCodes[c.Stage]
	if !ok {
		return nil, fmt.Errorf("service: a login ceremony at unknown stage %q", c.Stage)
	}
	var flags byte
	if c.PasswordPending {
		flags |= flagPasswordPending
	}
	b := make([]byte, 0, 3+4+len(c.Password)+len(c.Factor)+len(c.Kind)+len(c.Challenge)+8)
	b = append(b, ceremonyVersion, code, flags)
	for _, f := range [][]byte{[]byte(c.Password), []byte(c.Factor), []byte(c.Kind), c.Challenge} {
		if len(f) > 255 {
			return nil, errors.New("service: a login ceremony field is longer than 255 bytes")
		}
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(c.Expires)), nil
}

// errMalformedCeremony is unmarshal's refusal.
var errMalformedCeremony = errors.New("service: a malformed login ceremony")

// unmarshal reads the sealed form of a login ceremony into c, refusing
// anything marshal does not write.
func (c *loginCeremony) unmarshal(b []byte) error {
	bad := errMalformedCeremony
	if len(b) < 3+4+8 || b[0] != ceremonyVersion || b[2]&^flagPasswordPending != 0 {
		return bad
	}
	switch b[1] {
	case 1:
		c.Stage = stagePassword
	case 2:
		c.Stage = stageFactor
	default:
		return bad
	}
	c.PasswordPending = b[2]&flagPasswordPending != 0
	rest := b[3:]
	field := func() ([]byte, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, false
		}
		f := rest[1 : 1+int(rest[0])]
		rest = rest[1+int(rest[0]):]
		return f, true
	}
	pw, ok1 := field()
	factor, ok2 := field()
	kind, ok3 := field()
	ch, ok4 := field()
	if !ok1 || !ok2 || !ok3 || !ok4 || len(rest) != 8 {
		return bad
	}
	c.Password, c.Factor, c.Kind = string(pw), string(factor), knownKind(kind)
	c.Challenge = nil
	if len(ch) > 0 {
		c.Challenge = append([]byte(nil), ch...)
	}
	c.Expires = int64(binary.BigEndian.Uint64(rest))
	return nil
}

// knownKind returns b as a Kind, the constant itself when b names one
// (which saves a copy per token), else a copy.
func knownKind(b []byte) device.Kind {
	for _, k := range device.Kinds {
		if string(k) == string(b) {
			return k
		}
	}
	return device.Kind(b)
}

func (c *loginCeremony) expires() time.Time { return time.Unix(0, c.Expires).UTC() }

func tokenAD(identityID string) []byte {
	return secrets.AssociatedData("authbench login ceremony", identityID)
}

// sealCeremony returns the login token of c for identity identityID, valid
// for CeremonyTTL from now (c.Expires is set).
func (s *Service) sealCeremony(identityID string, c *loginCeremony) (string, error) {
	c.Expires = s.clock().Add(s.ceremonyTT).UnixNano()
	raw, err := c.marshal()
	if err != nil {
		return "", err
	}
	return s.sealToken(tokenPrefix, tokenAD(identityID), raw)
}

// sealToken returns raw sealed with the keyring for associated data ad,
// as a token that starts with prefix.
func (s *Service) sealToken(prefix string, ad, raw []byte) (string, error) {
	sl, err := s.keys.Seal(raw, ad)
	if err != nil {
		return "", fmt.Errorf("service: sealing a ceremony: %w", err)
	}
	// prefix, base64url(key ID), ".", base64url(blob), in one buffer, on
	// the stack when it fits (a login token does).
	var buf [256]byte
	tok := buf[:0]
	tok = append(tok, prefix...)
	tok = b64.AppendEncode(tok, []byte(sl.KeyID))
	tok = append(tok, '.')
	tok = b64.AppendEncode(tok, sl.Blob)
	return string(tok), nil
}

// openToken opens tok, sealed by sealToken with prefix and ad, and returns
// what was sealed. It reports whether tok was well formed (at most max
// bytes) and sealed for ad by the keyring.
func (s *Service) openToken(tok, prefix string, max int, ad []byte) ([]byte, bool) {
	if len(tok) > max || !strings.HasPrefix(tok, prefix) {
		return nil, false
	}
	kid, blob, ok := strings.Cut(tok[len(prefix):], ".")
	if !ok {
		return nil, false
	}
	var kb [32]byte
	k, err1 := b64.AppendDecode(kb[:0], []byte(kid))
	bl, err2 := b64.AppendDecode(make([]byte, 0, b64.DecodedLen(len(blob))), []byte(blob))
	if err1 != nil || err2 != nil {
		return nil, false
	}
	raw, err := s.keys.Open(secrets.Sealed{KeyID: string(k), Blob: bl}, ad)
	return raw, err == nil
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
	raw, ok := s.openToken(tok, tokenPrefix, maxTokenLen, tokenAD(identityID))
	if !ok || c.unmarshal(raw) != nil || c.Stage != stage {
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

// spentKey is the key of the ceremony record that marks challenge ch,
// of a ceremony that expires at exp, as used: "spent:", exp as a time key
// (appendTimeKey), ch in base64url. It has a colon, which no stored
// ceremony key has, and takeCeremony refuses such keys, so a client
// cannot take (and so revive) a spent mark. Both parts come from the
// sealed token, so every use of a token names the same mark; the expiry
// first puts the marks a commit writes side by side in their B-tree (and
// in the order the sweep deletes them). The SQLite and PostgreSQL
// migrations that introduced this form rewrote the marks of the earlier
// one ("spent:" and ch) with the same formula.
func spentKey(ch []byte, exp time.Time) string {
	const prefix = "spent:"
	k := make([]byte, 0, len(prefix)+timeKeyLen+b64.EncodedLen(len(ch)))
	k = appendTimeKey(append(k, prefix...), exp)
	return string(b64.AppendEncode(k, ch))
}

// spentMark is the ceremony record that marks challenge ch of identity
// identityID's ceremony expiring at exp as used (spentKey); it lives as
// long as the ceremony could.
func spentMark(identityID string, ch []byte, exp time.Time) store.Ceremony {
	return store.Ceremony{Key: spentKey(ch, exp), IdentityID: identityID, ExpiresAt: exp}
}

func spentCeremony(identityID string, c *loginCeremony) store.Ceremony {
	return spentMark(identityID, c.Challenge, c.expires())
}

// spend marks the challenge of login ceremony c as used. It returns an
// error wrapping ErrCeremonyExpired when it was used already, or the
// store's error.
func (s *Service) spend(ctx context.Context, identityID string, c *loginCeremony) error {
	return s.putSpent(ctx, spentCeremony(identityID, c), "login ceremony")
}

// putSpent stores mark (spentMark), the mark of a ceremony of kind what.
// It returns an error wrapping ErrCeremonyExpired when the ceremony was
// used already, or the store's error.
func (s *Service) putSpent(ctx context.Context, mark store.Ceremony, what string) error {
	err := s.st.PutCeremony(ctx, mark)
	if errors.Is(err, store.ErrDuplicate) {
		return errBeginAgain()
	}
	return storeErr(err, what)
}

// Registration ceremonies.
//
// A chip's registration keeps no state on the server either: AddAuthenticator
// hands the client a registration token, the registration (authenticator
// ID, label, challenge, expiry) sealed with the keyring for the identity,
// and Activate opens it. The token is single use: the registration stores
// the mark of its challenge (spentKey) in the transaction that stores the
// chip (store.CreateRegistered), and a registration the server refuses
// marks it too, so a token is never checked twice. Beginning and finishing
// a registration thus cost one durable write, not three.

// registrationPrefix starts every registration token. ("r1." tokens held
// the ceremony as JSON, with the identity, purpose and kind, which the
// token's associated data and prefix already say.)
const registrationPrefix = "r2."

func registrationAD(identityID string) []byte {
	return secrets.AssociatedData("authbench registration ceremony", identityID)
}

// registrationCeremony is the sealed content of a registration token, in the
// binary form of marshal: what Activate needs of AddAuthenticator. The
// token is a chip's registration (its prefix) for the identity of its
// associated data, so neither is repeated inside.
type registrationCeremony struct {
	AuthenticatorID string
	Label           string
	Challenge       []byte
	Expires         int64 // Unix nanoseconds
}

// The sealed form of a registration: a version byte, AuthenticatorID as a
// length byte and its bytes, Label as a two-byte length (big endian) and
// its bytes, Challenge as a length byte and its bytes, then Expires as 8
// bytes, big endian. IDs are at most 64 bytes (CheckID), labels at most
// MaxLabelLen characters, a challenge 32 bytes.
const registrationVersion = 1

// marshal returns the sealed form of r.
func (r *registrationCeremony) marshal() ([]byte, error) {
	if len(r.AuthenticatorID) > 255 || len(r.Label) > 0xffff || len(r.Challenge) > 255 {
		return nil, errors.New("service: a registration ceremony field is too long")
	}
	b := make([]byte, 0, 1+1+len(r.AuthenticatorID)+2+len(r.Label)+1+len(r.Challenge)+8)
	b = append(b, registrationVersion, byte(len(r.AuthenticatorID)))
	b = append(b, r.AuthenticatorID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Label)))
	b = append(b, r.Label...)
	b = append(b, byte(len(r.Challenge)))
	b = append(b, r.Challenge...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Expires)), nil
}

// unmarshal reads the sealed form of a registration into r, refusing
// anything marshal does not write.
func (r *registrationCeremony) unmarshal(b []byte) error {
	bad := errors.New("service: a malformed registration ceremony")
	if len(b) < 1 || b[0] != registrationVersion {
		return bad
	}
	rest := b[1:]
	field := func(lenBytes int) ([]byte, bool) {
		if len(rest) < lenBytes {
			return nil, false
		}
		n := int(rest[0])
		if lenBytes == 2 {
			n = int(binary.BigEndian.Uint16(rest))
		}
		rest = rest[lenBytes:]
		if len(rest) < n {
			return nil, false
		}
		f := rest[:n]
		rest = rest[n:]
		return f, true
	}
	aid, ok1 := field(1)
	label, ok2 := field(2)
	ch, ok3 := field(1)
	if !ok1 || !ok2 || !ok3 || len(rest) != 8 {
		return bad
	}
	r.AuthenticatorID, r.Label = string(aid), string(label)
	r.Challenge = nil
	if len(ch) > 0 {
		r.Challenge = append([]byte(nil), ch...)
	}
	r.Expires = int64(binary.BigEndian.Uint64(rest))
	return nil
}

// sealRegistration returns the registration token of r for identity
// identityID, valid for CeremonyTTL from now (r.Expires is set).
func (s *Service) sealRegistration(identityID string, r *registrationCeremony) (string, error) {
	r.Expires = s.clock().Add(s.ceremonyTT).UnixNano()
	raw, err := r.marshal()
	if err != nil {
		return "", err
	}
	return s.sealToken(registrationPrefix, registrationAD(identityID), raw)
}

// openRegistration returns the content of registration token tok for
// authenticator aid of identity identityID, with the mark that spends it.
// It returns an error wrapping ErrInvalid (no token, or a token of
// another authenticator) or ErrCeremonyExpired (malformed, not sealed for
// the identity or by this server's keys, or expired).
func (s *Service) openRegistration(tok, identityID, aid string) (registrationCeremony, store.Ceremony, error) {
	if tok == "" {
		return registrationCeremony{}, store.Ceremony{}, invalid("ceremony is missing")
	}
	var r registrationCeremony
	raw, ok := s.openToken(tok, registrationPrefix, maxRegistrationLen, registrationAD(identityID))
	if !ok || r.unmarshal(raw) != nil || len(r.Challenge) != challengeLen {
		return registrationCeremony{}, store.Ceremony{}, errBeginAgain()
	}
	if r.AuthenticatorID != aid {
		return registrationCeremony{}, store.Ceremony{}, invalid("the ceremony belongs to another operation or authenticator")
	}
	exp := time.Unix(0, r.Expires).UTC()
	if !s.clock().Before(exp) {
		return registrationCeremony{}, store.Ceremony{}, errBeginAgain()
	}
	return r, spentMark(identityID, r.Challenge, exp), nil
}
