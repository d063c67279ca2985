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

// Stateless login ceremonies.
//
// A chip or code-device login does not store its ceremony at Begin: the
// ceremony ID handed to the client is a login token, the ceremony data
// (kind, challenge, expiry) sealed with the keyring (XChaCha20-Poly1305,
// bound to the identity and authenticator), so any replica holding the
// master key can open it at Finish. What a stored ceremony gave besides
// the data is single use, and that is kept where replay matters:
//
//   - chip: the first Finish that uses a token records it as spent (a
//     ceremony record keyed by its challenge, see spentKey), in the same
//     transaction as the success; a second Finish with the token fails with
//     ErrCeremonyExpired, whether it would succeed or fail. Chips without a
//     signature counter rely on exactly this (WebAuthn Level 2 §13.4.3).
//   - code device: the token carries no challenge and may be finished more
//     than once until it expires; every code is still single use, because
//     the watermark of RFC 6238 §5.2 only moves up and is raised in the
//     transaction that accepts the code, and every wrong code still counts
//     towards suspension.
//
// Apps and passwords keep stored ceremonies.

// tokenPrefix starts every login token; stored ceremony keys are 22
// base64url characters and never contain a dot.
const tokenPrefix = "t1."

// maxTokenLen bounds the login tokens accepted (a real one is about 150
// characters).
const maxTokenLen = 512

// loginToken is the sealed content of a login token.
type loginToken struct {
	Kind      device.Kind `json:"k"`
	Challenge []byte      `json:"c,omitempty"`
	Expires   int64       `json:"e"` // Unix nanoseconds
}

// statelessLogin reports whether a login with kind uses a login token.
func statelessLogin(k device.Kind) bool {
	switch k {
	case device.KindChip, device.KindCodeDisplay, device.KindAudioCodeReader:
		return true
	}
	return false
}

func tokenAD(identityID, aid string) []byte {
	return secrets.AssociatedData("authbench login ceremony", identityID, aid)
}

// sealLoginToken returns the login token of d, valid until exp.
func (s *Service) sealLoginToken(d ceremonyData, exp time.Time) (string, error) {
	raw, err := jsonMarshal(loginToken{Kind: d.Kind, Challenge: d.Challenge, Expires: exp.UnixNano()})
	if err != nil {
		return "", err
	}
	sl, err := s.keys.Seal(raw, tokenAD(d.IdentityID, d.AuthenticatorID))
	if err != nil {
		return "", fmt.Errorf("service: sealing a login ceremony: %w", err)
	}
	return tokenPrefix + b64.EncodeToString([]byte(sl.KeyID)) + "." + b64.EncodeToString(sl.Blob), nil
}

// openLoginToken returns the ceremony data of login token tok for
// authenticator aid of identity identityID, and its expiry. It returns an
// error wrapping ErrCeremonyExpired when tok is malformed, was not sealed
// for them (or by this server's keys), or has expired.
func (s *Service) openLoginToken(tok, identityID, aid string) (ceremonyData, time.Time, error) {
	bad := fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	if len(tok) > maxTokenLen || !strings.HasPrefix(tok, tokenPrefix) {
		return ceremonyData{}, time.Time{}, bad
	}
	kid, blob, ok := strings.Cut(tok[len(tokenPrefix):], ".")
	if !ok {
		return ceremonyData{}, time.Time{}, bad
	}
	k, err1 := b64.DecodeString(kid)
	bl, err2 := b64.DecodeString(blob)
	if err1 != nil || err2 != nil {
		return ceremonyData{}, time.Time{}, bad
	}
	raw, err := s.keys.Open(secrets.Sealed{KeyID: string(k), Blob: bl}, tokenAD(identityID, aid))
	if err != nil {
		return ceremonyData{}, time.Time{}, bad
	}
	var t loginToken
	if err := jsonUnmarshal(raw, &t); err != nil || !statelessLogin(t.Kind) {
		return ceremonyData{}, time.Time{}, bad
	}
	if t.Kind == device.KindChip && len(t.Challenge) != 32 {
		return ceremonyData{}, time.Time{}, bad
	}
	exp := time.Unix(0, t.Expires).UTC()
	if !s.clock().Before(exp) {
		return ceremonyData{}, time.Time{}, bad
	}
	d := ceremonyData{Purpose: purposeLogin, IdentityID: identityID, AuthenticatorID: aid, Kind: t.Kind, Challenge: t.Challenge}
	return d, exp, nil
}

// spentKey is the key of the ceremony record that marks the chip login
// challenge ch as used. It has a colon, which no stored ceremony key has,
// and takeCeremony refuses such keys, so a client cannot take (and so
// revive) a spent mark.
func spentKey(ch []byte) string { return "spent:" + b64.EncodeToString(ch) }

// spend marks the chip login ceremony d (valid until exp) as used, for a
// Finish that ends in anything but a success. It returns an error wrapping
// ErrCeremonyExpired when it was used already, or the store's error.
func (s *Service) spend(ctx context.Context, d ceremonyData, exp time.Time) error {
	if d.Kind != device.KindChip {
		return nil
	}
	err := s.st.PutCeremony(ctx, spentCeremony(d, exp))
	if errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	}
	return err
}

func spentCeremony(d ceremonyData, exp time.Time) store.Ceremony {
	return store.Ceremony{Key: spentKey(d.Challenge), IdentityID: d.IdentityID, ExpiresAt: exp}
}

// proof is what a verified login still has to write: the new value of the
// element's replay guard. The element as read is kept for the answer.
type proof struct {
	el    store.Element
	step  uint64 // code device: the matched time step
	drift int
	count uint32 // chip: the assertion's signature counter
}
