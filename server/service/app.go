package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// appKind is the MitID app: a P-256 device key on the phone and a
// six-digit PIN, two factors in one. It is added with its public key and
// PIN, activated by a signature over a challenge, and logs in alone: the
// signature over the login challenge first (a bad one proves the caller
// does not hold the phone and counts against nothing), then the PIN (a
// wrong one counts; its failures are not anonymous, so they escalate).
type appKind struct{ s *Service }

var _ kind = (*appKind)(nil)

// add adds a pending app and starts its activation. The PIN's format and
// strength and the lifecycle rules are checked before the PIN is hashed.
func (k *appKind) add(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, aid string, req AddRequest) (AddResult, error) {
	s := k.s
	id := &set.Identity
	_, der, err := parseAppKey("public_key", req.PublicKey)
	if err != nil {
		return AddResult{}, err
	}
	switch err := secrets.CheckPIN(req.PIN); {
	case errors.Is(err, secrets.ErrBadPIN):
		return AddResult{}, invalid("the PIN must be exactly 6 digits")
	case errors.Is(err, secrets.ErrWeakPIN):
		return AddResult{}, invalid("the PIN is too easy to guess (%s); choose another", strings.TrimPrefix(err.Error(), "secrets: "+secrets.ErrWeakPIN.Error()+": "))
	case err != nil:
		return AddResult{}, err
	}
	n := newAuth{id: aid, kind: device.KindApp, ref: domain.Ref{CredentialID: appKeyID(der)}, label: req.Label}
	c, err := s.addChange(ctx, set, n, by)
	if err != nil {
		return AddResult{}, err
	}
	verifier, err := secrets.HashPIN(req.PIN, s.hasher)
	if err != nil {
		return AddResult{}, err
	}
	if c, err = s.create(ctx, set, n, c, store.Element{App: &store.AppElement{PublicKey: der, PINVerifier: verifier}}, by); err != nil {
		return AddResult{}, err
	}
	challenge, err := s.random(challengeLen)
	if err != nil {
		return AddResult{}, err
	}
	key, err := s.putCeremony(ctx, ceremonyData{Purpose: purposeActivate, IdentityID: id.ID, AuthenticatorID: aid, Kind: device.KindApp, Challenge: challenge})
	if err != nil {
		return AddResult{}, err
	}
	v, err := s.view(ctx, &c.Authenticator)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Authenticator: v, Activation: AppActivation{Ceremony: key, Challenge: b64.EncodeToString(challenge)}}, nil
}

// activate checks the app's signature over its activation challenge.
func (k *appKind) activate(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, a *domain.Authenticator, aid string, req ActivateRequest) (AuthenticatorView, error) {
	s := k.s
	if req.Code != "" || req.Credential != nil {
		return AuthenticatorView{}, invalid("an app is activated with a ceremony and a signature")
	}
	if a.State == domain.StatePending {
		sig, err := decodeB64("signature", req.Signature)
		if err != nil {
			return AuthenticatorView{}, err
		}
		d, err := s.takeCeremony(ctx, req.Ceremony, purposeActivate, a.IdentityID, a.ID)
		if err != nil {
			return AuthenticatorView{}, err
		}
		el, err := s.st.ElementOfKind(ctx, a.ID, a.Kind)
		if err != nil || el.App == nil {
			return AuthenticatorView{}, storeErr(errOr(err, store.ErrNotFound), "the key of app "+a.ID)
		}
		if !verifyAppSignature(el.App.PublicKey, d.Challenge, sig) {
			return AuthenticatorView{}, s.recordPendingFailure(ctx, by, a, domain.CauseBadSignature, "signature", 0)
		}
	}
	return s.activateWith(ctx, by, set.Identity, *a)
}

// check verifies the app's signature over the login challenge, then its
// PIN. Only the PIN is a guess at a secret: the attempt is reserved before
// it is compared.
func (k *appKind) check(ctx context.Context, a *domain.Authenticator, c *loginCeremony, p *proof, reserve func() error) (verdict, error) {
	s := k.s
	sig, err := appProof(p)
	if err != nil {
		return verdict{}, err
	}
	el, err := s.elementOf(ctx, a, p)
	if err != nil || el.App == nil || len(el.App.PublicKey) == 0 {
		return verdict{}, storeErr(errOr(err, store.ErrNotFound), "the key of app "+a.ID)
	}
	if !verifyAppSignature(el.App.PublicKey, c.Challenge, sig) {
		return verdict{}, errAppSignature
	}
	// The signature is good: nobody may replay it with other PINs.
	if err := s.spend(ctx, a.IdentityID, c); err != nil {
		return verdict{}, err
	}
	if err := reserve(); err != nil {
		return verdict{}, err
	}
	// appProof checked the PIN's form; rehash is relative to the
	// server's parameters, as for a password.
	ok, rehash, err := s.hasher.Verify(el.App.PINVerifier, p.pin)
	if err != nil {
		return verdict{}, fmt.Errorf("service: the PIN verifier of app %s: %w", a.ID, err)
	}
	// Counted once evaluated: a *BusyError (no room under the argon2id
	// memory budget) evaluated nothing.
	s.checked(device.KindApp)
	if !ok {
		return failed(domain.CauseWrongPIN, ""), nil
	}
	if rehash {
		s.rehash(ctx, a.ID, el.App.PINVerifier, p.pin)
	}
	return verdict{el: el}, nil
}

// appProof checks the form of an app's login proof and returns the
// signature. It returns an error wrapping ErrInvalid.
func appProof(p *proof) ([]byte, error) {
	sig, err := decodeB64("signature", p.signature)
	if err != nil {
		return nil, err
	}
	if len(p.pin) != secrets.PINLen || !allDigits(p.pin) {
		return nil, invalid("the PIN must be %d digits", secrets.PINLen)
	}
	return sig, nil
}

// parseAppKey decodes an app's P-256 SubjectPublicKeyInfo.
func parseAppKey(field, v string) (*ecdsa.PublicKey, []byte, error) {
	der, err := decodeB64(field, v)
	if err != nil {
		return nil, nil, err
	}
	if len(der) > 512 {
		return nil, nil, invalid("%s is too long for a P-256 key", field)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, invalid("%s is not a SubjectPublicKeyInfo", field)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, nil, invalid("%s is not a P-256 key", field)
	}
	return pub, der, nil
}

// appKeyID is the Ref.CredentialID of an app key: the SHA-256 of its
// SubjectPublicKeyInfo, base64url.
func appKeyID(der []byte) string {
	h := sha256.Sum256(der)
	return b64.EncodeToString(h[:])
}

// verifyAppSignature checks an ECDSA P-256 signature (ASN.1 DER) over
// SHA-256(challenge) with the app key in der.
func verifyAppSignature(der, challenge, sig []byte) bool {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return false
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	h := sha256.Sum256(challenge)
	return ecdsa.VerifyASN1(pub, h[:], sig)
}
