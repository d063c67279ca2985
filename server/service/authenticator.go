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

// AddRequest is the body of POST /v1/identities/{id}/authenticators.
type AddRequest struct {
	Kind      string `json:"kind"`
	Label     string `json:"label,omitempty"`
	Serial    string `json:"serial,omitempty"`     // code devices: required
	PublicKey string `json:"public_key,omitempty"` // app: SubjectPublicKeyInfo DER, base64url
	PIN       string `json:"pin,omitempty"`        // app: 6 digits
	Password  string `json:"password,omitempty"`   // password: required
}

// AddResult is the answer to AddAuthenticator: the new authenticator and
// what its activation needs.
type AddResult struct {
	Authenticator AuthenticatorView `json:"authenticator"`
	// Activation is a ChipActivation, CodeActivation, AppActivation, or
	// an empty object for a password (already active).
	Activation any `json:"activation"`
}

// ChipActivation starts a chip's WebAuthn registration ceremony.
type ChipActivation struct {
	Ceremony  string          `json:"ceremony"`
	PublicKey CreationOptions `json:"publicKey"`
}

// CodeActivation says that a code device is activated with its first code.
type CodeActivation struct {
	Needs string `json:"needs"` // "code"
}

// AppActivation is the challenge an app signs to activate.
type AppActivation struct {
	Ceremony  string `json:"ceremony"`
	Challenge string `json:"challenge"`
}

// ActivateRequest is the body of .../authenticators/{aid}/activate; which
// fields apply depends on the kind (see AddAuthenticator).
type ActivateRequest struct {
	Ceremony   string                `json:"ceremony,omitempty"`
	Credential *RegistrationResponse `json:"credential,omitempty"` // chip
	Code       string                `json:"code,omitempty"`       // code device
	Signature  string                `json:"signature,omitempty"`  // app
}

// ceremonyData is what a ceremony keeps between its two steps (STYLE 17).
// It holds no secret: a challenge is public once sent.
type ceremonyData struct {
	Purpose         string      `json:"purpose"` // purposeRegister, purposeActivate, purposeLogin
	IdentityID      string      `json:"identity_id"`
	AuthenticatorID string      `json:"authenticator_id"`
	Kind            device.Kind `json:"kind"`
	Label           string      `json:"label,omitempty"`
	Challenge       []byte      `json:"challenge,omitempty"`
}

const (
	purposeRegister = "register" // a chip's WebAuthn registration
	purposeActivate = "activate" // an app's activation
	purposeLogin    = "login"
)

// idPrefix is the prefix of generated authenticator IDs, per kind.
var idPrefix = map[device.Kind]string{
	device.KindChip:            "chip",
	device.KindCodeDisplay:     "kv",
	device.KindAudioCodeReader: "ko",
	device.KindApp:             "app",
	device.KindPassword:        "pw",
}

// AddAuthenticator adds an authenticator to identity identityID (support,
// or a session of identityID), checking the quotas, revoked serials and
// credentials of DESIGN §1 first:
//
//   - chip: nothing is stored yet; the result carries a WebAuthn
//     registration ceremony, finished by Activate with the chip's
//     credential;
//   - code-display, audio-code-reader: Serial is required and its secret
//     must have been imported (ImportPSKC); the authenticator is pending
//     until Activate with a current code;
//   - app: PublicKey (a P-256 SubjectPublicKeyInfo) and PIN are required;
//     pending until Activate with a signature over the challenge;
//   - password: Password is required; the authenticator is active at once.
//
// It returns an error wrapping ErrForbidden, ErrInvalid, ErrNotFound (no
// such identity), a *domain.TransitionError (domain.ErrQuotaExceeded,
// ErrSerialRevoked, ErrCredentialRevoked, ErrAlreadyAdded,
// ErrIdentityBlocked, ErrNotAllowed), or the store's error.
func (s *Service) AddAuthenticator(ctx context.Context, by domain.Actor, identityID string, req AddRequest) (AddResult, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AddResult{}, err
	}
	kind, err := device.ParseKind(req.Kind)
	if err != nil {
		return AddResult{}, invalid("unknown kind %q (want chip, code-display, audio-code-reader, app or password)", trim(req.Kind))
	}
	if err := checkText("the label", req.Label, MaxLabelLen); err != nil {
		return AddResult{}, err
	}
	if err := checkFields(kind, req); err != nil {
		return AddResult{}, err
	}
	id, err := s.st.Identity(ctx, identityID)
	if err != nil {
		return AddResult{}, storeErr(err, "identity "+identityID)
	}
	aid, err := s.newID(idPrefix[kind])
	if err != nil {
		return AddResult{}, err
	}
	switch kind {
	case device.KindChip:
		return s.beginChip(ctx, by, id, aid, req.Label)
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return s.addCode(ctx, by, id, aid, kind, req)
	case device.KindApp:
		return s.addApp(ctx, by, id, aid, req)
	}
	verifier, err := s.hasher.Hash(req.Password)
	if err != nil {
		return AddResult{}, passwordErr(err)
	}
	a, err := s.createActive(ctx, id, aid, device.KindPassword, domain.Ref{}, req.Label, by,
		store.Element{Password: &store.PasswordElement{Verifier: verifier}})
	if err != nil {
		return AddResult{}, err
	}
	v, err := s.view(ctx, &a)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Authenticator: v, Activation: struct{}{}}, nil
}

// checkFields refuses fields that do not apply to kind and requires the
// ones that do.
func checkFields(kind device.Kind, req AddRequest) error {
	need := map[string]bool{}
	switch kind {
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		need["serial"] = true
	case device.KindApp:
		need["public_key"], need["pin"] = true, true
	case device.KindPassword:
		need["password"] = true
	}
	for name, v := range map[string]string{"serial": req.Serial, "public_key": req.PublicKey, "pin": req.PIN, "password": req.Password} {
		switch {
		case need[name] && v == "":
			return invalid("%s is required for a %s", name, kind)
		case !need[name] && v != "":
			return invalid("%s does not apply to a %s", name, kind)
		}
	}
	if req.Serial != "" {
		if err := checkText("the serial", req.Serial, MaxSerialLen); err != nil {
			return err
		}
	}
	return nil
}

// trim shortens v for an error message.
func trim(v string) string {
	if len(v) > 40 {
		return v[:40] + "..."
	}
	return v
}

// newAuth is an authenticator to add: what domain.Policy.Add needs besides
// the identity and the actor.
type newAuth struct {
	id       string
	kind     device.Kind
	ref      domain.Ref
	label    string
	activate bool // activated in the same store write (passwords, verified chips)
}

// candidates returns what domain.Policy.CheckAdd needs: the identity's
// authenticators with those of any identity that share ref, the
// tombstones of ref, and the version of the identity's authenticator set,
// which store.CreateAuthenticatorAt checks.
func (s *Service) candidates(ctx context.Context, identityID string, ref domain.Ref) ([]domain.Authenticator, []domain.Tombstone, uint64, error) {
	set, err := s.st.AuthenticatorSet(ctx, identityID)
	if err != nil {
		return nil, nil, 0, storeErr(err, "identity "+identityID)
	}
	own := set.Authenticators
	if ref.Serial == "" && ref.CredentialID == "" {
		return own, nil, set.Version, nil
	}
	found, err := s.st.FindAuthenticators(ctx, ref)
	if err != nil {
		return nil, nil, 0, err
	}
	seen := map[string]bool{}
	for _, a := range own {
		seen[a.ID] = true
	}
	for _, a := range found {
		if !seen[a.ID] {
			own = append(own, a)
		}
	}
	tombs, err := s.st.FindTombstones(ctx, ref)
	if err != nil {
		return nil, nil, 0, err
	}
	return own, tombs, set.Version, nil
}

// addChange runs domain.Policy.Add for n (and domain.Policy.Activate when
// n.activate), auditing a refusal. It returns the change with the version
// of the identity's authenticator set it was checked against.
func (s *Service) addChange(ctx context.Context, id domain.Identity, n newAuth, by domain.Actor) (domain.Change, uint64, error) {
	existing, tombs, version, err := s.candidates(ctx, id.ID, n.ref)
	if err != nil {
		return domain.Change{}, 0, err
	}
	now := s.clock()
	c, err := s.policy.Add(id, existing, tombs, domain.AddRequest{ID: n.id, Kind: n.kind, Ref: n.ref, Label: n.label}, by, now)
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, 0, err
	}
	if !n.activate {
		return c, version, nil
	}
	act, err := s.policy.Activate(id, c.Authenticator, by, now)
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, 0, err
	}
	return domain.Change{Authenticator: act.Authenticator, Events: append(c.Events, act.Events...)}, version, nil
}

// create stores c, the change addChange made for n from the authenticator
// set at version, with its element, and returns the change stored.
//
// Quotas (DESIGN §1) hold under concurrent adds, also across replicas:
// the store refuses c with store.ErrConflict when another authenticator
// was created for the identity after the set was read; create then reloads
// the identity and the set, runs the domain checks again (which now count
// the other add, so the quota may refuse this one with
// domain.ErrQuotaExceeded), and tries again, up to Options.MaxRetries
// times. A uniqueness conflict the checks did not see (a concurrent add of
// the same serial or credential to another identity) is reported as the
// domain error the checks give now.
func (s *Service) create(ctx context.Context, id domain.Identity, n newAuth, c domain.Change, version uint64, el store.Element, by domain.Actor) (domain.Change, error) {
	for try := 0; ; try++ {
		err := s.st.CreateAuthenticatorAt(ctx, c, el, version)
		if err == nil {
			s.logChange(ctx, c.Events)
			return c, nil
		}
		switch {
		case errors.Is(err, store.ErrConflict) && try < s.retries:
			identityID := id.ID
			if id, err = s.st.Identity(ctx, identityID); err != nil {
				return domain.Change{}, storeErr(err, "identity "+identityID)
			}
			if c, version, err = s.addChange(ctx, id, n, by); err != nil {
				return domain.Change{}, err
			}
			continue
		case !errors.Is(err, store.ErrDuplicate):
			return domain.Change{}, storeErr(err, "identity "+id.ID)
		}
		a := c.Authenticator
		existing, tombs, _, cerr := s.candidates(ctx, id.ID, a.Ref)
		if cerr == nil {
			if cerr = s.policy.CheckAdd(id, existing, a.Kind, a.Ref, tombs); cerr != nil {
				s.auditRefusal(ctx, cerr, by)
				return domain.Change{}, cerr
			}
		}
		return domain.Change{}, fmt.Errorf("service: %w: %v", domain.ErrAlreadyAdded, err)
	}
}

// createActive adds and activates an authenticator in one store write
// (passwords, and chips once their attestation is verified).
func (s *Service) createActive(ctx context.Context, id domain.Identity, aid string, kind device.Kind, ref domain.Ref, label string, by domain.Actor, el store.Element) (domain.Authenticator, error) {
	if aid == "" {
		var err error
		if aid, err = s.newID(idPrefix[kind]); err != nil {
			return domain.Authenticator{}, err
		}
	}
	n := newAuth{id: aid, kind: kind, ref: ref, label: label, activate: true}
	c, version, err := s.addChange(ctx, id, n, by)
	if err != nil {
		return domain.Authenticator{}, err
	}
	if c, err = s.create(ctx, id, n, c, version, el, by); err != nil {
		return domain.Authenticator{}, err
	}
	return c.Authenticator, nil
}

// putCeremony stores a new ceremony and returns its ID.
func (s *Service) putCeremony(ctx context.Context, d ceremonyData) (string, error) {
	raw, err := s.random(16)
	if err != nil {
		return "", err
	}
	key := b64.EncodeToString(raw)
	data, err := jsonMarshal(d)
	if err != nil {
		return "", err
	}
	err = s.st.PutCeremony(ctx, store.Ceremony{Key: key, IdentityID: d.IdentityID, Data: data, ExpiresAt: s.clock().Add(s.ceremonyTT)})
	if err != nil {
		return "", err
	}
	return key, nil
}

// takeCeremony takes ceremony key for purpose on authenticator aid of
// identity identityID. It returns an error wrapping ErrCeremonyExpired or
// ErrInvalid.
func (s *Service) takeCeremony(ctx context.Context, key, purpose, identityID, aid string) (ceremonyData, error) {
	if key == "" {
		return ceremonyData{}, invalid("ceremony is missing")
	}
	if len(key) > 64 || strings.ContainsRune(key, ':') {
		// A colon marks a spent login token (spentKey), never a
		// ceremony that can be taken.
		return ceremonyData{}, fmt.Errorf("service: %w", ErrCeremonyExpired)
	}
	c, err := s.st.TakeCeremony(ctx, key, s.clock())
	if errors.Is(err, store.ErrNotFound) {
		return ceremonyData{}, fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	}
	if err != nil {
		return ceremonyData{}, err
	}
	var d ceremonyData
	if err := jsonUnmarshal(c.Data, &d); err != nil {
		return ceremonyData{}, fmt.Errorf("service: ceremony data: %w", err)
	}
	if d.Purpose != purpose || d.IdentityID != identityID || d.AuthenticatorID != aid {
		return ceremonyData{}, invalid("the ceremony belongs to another operation or authenticator")
	}
	return d, nil
}

// beginChip checks that a chip may be added and starts its registration.
func (s *Service) beginChip(ctx context.Context, by domain.Actor, id domain.Identity, aid, label string) (AddResult, error) {
	// The credential ID is not known yet; a placeholder lets the domain
	// check the actor, the identity's state and the quota now. Activate
	// checks again with the real credential.
	c, _, err := s.addChange(ctx, id, newAuth{id: aid, kind: device.KindChip, ref: domain.Ref{CredentialID: "pending:" + aid}, label: label}, by)
	if err != nil {
		return AddResult{}, err
	}
	challenge, err := s.random(32)
	if err != nil {
		return AddResult{}, err
	}
	key, err := s.putCeremony(ctx, ceremonyData{Purpose: purposeRegister, IdentityID: id.ID, AuthenticatorID: aid,
		Kind: device.KindChip, Label: label, Challenge: challenge})
	if err != nil {
		return AddResult{}, err
	}
	own, err := s.st.ListAuthenticators(ctx, id.ID)
	if err != nil {
		return AddResult{}, err
	}
	opts := s.creationOptions(id.ID, challenge, own)
	pending := c.Authenticator
	pending.CredentialID = ""
	return AddResult{
		Authenticator: viewAuthenticator(&pending, nil),
		Activation:    ChipActivation{Ceremony: key, PublicKey: opts},
	}, nil
}

// addCode adds a pending code device whose secret was imported.
func (s *Service) addCode(ctx context.Context, by domain.Actor, id domain.Identity, aid string, kind device.Kind, req AddRequest) (AddResult, error) {
	n := newAuth{id: aid, kind: kind, ref: domain.Ref{Serial: req.Serial}, label: req.Label}
	c, version, err := s.addChange(ctx, id, n, by)
	if err != nil {
		return AddResult{}, err
	}
	im, err := s.st.Import(ctx, req.Serial)
	if errors.Is(err, store.ErrNotFound) {
		return AddResult{}, invalid("no secret was imported for serial %s; import the device's PSKC document first", req.Serial)
	}
	if err != nil {
		return AddResult{}, err
	}
	secret, err := s.keys.Open(secrets.Sealed{KeyID: im.Secret.KeyID, Blob: im.Secret.Blob}, importAD(req.Serial))
	if err != nil {
		return AddResult{}, fmt.Errorf("service: the imported secret of serial %s: %w", req.Serial, err)
	}
	sealed, err := s.keys.Seal(secret, otpAD(aid))
	clear(secret)
	if err != nil {
		return AddResult{}, err
	}
	el := store.Element{Code: &store.CodeElement{
		Secret:    store.Sealed{KeyID: sealed.KeyID, Blob: sealed.Blob},
		OTPParams: im.OTPParams,
	}}
	if c, err = s.create(ctx, id, n, c, version, el, by); err != nil {
		return AddResult{}, err
	}
	v, err := s.view(ctx, &c.Authenticator)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Authenticator: v, Activation: CodeActivation{Needs: "code"}}, nil
}

// importAD and otpAD bind sealed OTP secrets to their row.
func importAD(serial string) []byte { return secrets.AssociatedData("pskc-import", serial) }
func otpAD(aid string) []byte       { return secrets.AssociatedData("otp-secret", aid) }

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

// addApp adds a pending app and starts its activation.
func (s *Service) addApp(ctx context.Context, by domain.Actor, id domain.Identity, aid string, req AddRequest) (AddResult, error) {
	_, der, err := parseAppKey("public_key", req.PublicKey)
	if err != nil {
		return AddResult{}, err
	}
	verifier, err := secrets.HashPIN(req.PIN, s.hasher)
	switch {
	case errors.Is(err, secrets.ErrBadPIN):
		return AddResult{}, invalid("the PIN must be exactly 6 digits")
	case errors.Is(err, secrets.ErrWeakPIN):
		return AddResult{}, invalid("the PIN is too easy to guess (%s); choose another", strings.TrimPrefix(err.Error(), "secrets: "+secrets.ErrWeakPIN.Error()+": "))
	case err != nil:
		return AddResult{}, err
	}
	n := newAuth{id: aid, kind: device.KindApp, ref: domain.Ref{CredentialID: appKeyID(der)}, label: req.Label}
	c, version, err := s.addChange(ctx, id, n, by)
	if err != nil {
		return AddResult{}, err
	}
	if c, err = s.create(ctx, id, n, c, version, store.Element{App: &store.AppElement{PublicKey: der, PINVerifier: verifier}}, by); err != nil {
		return AddResult{}, err
	}
	challenge, err := s.random(32)
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

// Activate activates authenticator aid of identity identityID (support, or
// a session of identityID): a chip with its WebAuthn registration
// (Ceremony and Credential), a code device with a current code (Code), an
// app with a signature over the challenge (Ceremony and Signature). It
// returns the active authenticator, or an error wrapping ErrForbidden,
// ErrInvalid, ErrNotFound, ErrCeremonyExpired, ErrAttestationUntrusted, a
// *FailureError (wrong code, replayed code, bad signature; nothing is
// counted for a pending authenticator), a *domain.TransitionError, or the
// store's error.
func (s *Service) Activate(ctx context.Context, by domain.Actor, identityID, aid string, req ActivateRequest) (AuthenticatorView, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AuthenticatorView{}, err
	}
	a, err := s.st.Authenticator(ctx, aid)
	if errors.Is(err, store.ErrNotFound) && req.Credential != nil {
		return s.finishChip(ctx, by, identityID, aid, req)
	}
	if err != nil {
		return AuthenticatorView{}, storeErr(err, "authenticator "+aid)
	}
	if a.IdentityID != identityID {
		return AuthenticatorView{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
	}
	switch a.Kind {
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		if req.Ceremony != "" || req.Credential != nil || req.Signature != "" {
			return AuthenticatorView{}, invalid("a code device is activated with a code only")
		}
		if a.State == domain.StatePending {
			if err := s.checkActivationCode(ctx, by, &a, req.Code); err != nil {
				return AuthenticatorView{}, err
			}
		}
	case device.KindApp:
		if req.Code != "" || req.Credential != nil {
			return AuthenticatorView{}, invalid("an app is activated with a ceremony and a signature")
		}
		if a.State == domain.StatePending {
			if err := s.checkActivationSignature(ctx, by, &a, req); err != nil {
				return AuthenticatorView{}, err
			}
		}
	default:
		if req.Code != "" || req.Signature != "" {
			return AuthenticatorView{}, invalid("a %s is not activated with a code or a signature", a.Kind)
		}
	}
	c, err := s.applyAuth(ctx, aid, by, func(a domain.Authenticator) (domain.Change, error) {
		id, err := s.st.Identity(ctx, identityID)
		if err != nil {
			return domain.Change{}, storeErr(err, "identity "+identityID)
		}
		return s.policy.Activate(id, a, by, s.clock())
	})
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &c.Authenticator)
}

// finishChip verifies a chip's registration and stores it, active.
func (s *Service) finishChip(ctx context.Context, by domain.Actor, identityID, aid string, req ActivateRequest) (AuthenticatorView, error) {
	if req.Code != "" || req.Signature != "" {
		return AuthenticatorView{}, invalid("a chip is activated with a ceremony and a credential")
	}
	d, err := s.takeCeremony(ctx, req.Ceremony, purposeRegister, identityID, aid)
	if err != nil {
		return AuthenticatorView{}, err
	}
	reg, err := s.verifyRegistration(req.Credential, d.Challenge)
	if err != nil {
		s.log.InfoContext(ctx, "chip registration refused", "identity", identityID, "authenticator", aid, "err", err)
		return AuthenticatorView{}, err
	}
	id, err := s.st.Identity(ctx, identityID)
	if err != nil {
		return AuthenticatorView{}, storeErr(err, "identity "+identityID)
	}
	format := reg.Format
	if !reg.Trusted {
		format += untrustedSuffix
	}
	el := store.Element{Chip: &store.ChipElement{
		PublicKey:         reg.PublicKey,
		AAGUID:            reg.AAGUID[:],
		SignCount:         reg.SignCount,
		AttestationFormat: format,
		BackupEligible:    reg.BackupEligible,
		BackupState:       reg.BackupState,
	}}
	// A chip is told apart by its credential ID, which the store keeps
	// unique forever. A serial number in the attestation certificate is
	// not used: by default a certificate is a batch certificate shared by
	// every chip of a model (FIDO's privacy rules), so it names no chip.
	ref := domain.Ref{CredentialID: domain.EncodeCredentialID(reg.CredentialID)}
	a, err := s.createActive(ctx, id, aid, device.KindChip, ref, d.Label, by, el)
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &a)
}

// recordPendingFailure audits a failed activation attempt of a pending
// authenticator (nothing is counted: it is not active) and returns the
// *FailureError.
func (s *Service) recordPendingFailure(ctx context.Context, by domain.Actor, a *domain.Authenticator, cause domain.Cause, check string) error {
	d := map[string]string{"op": string(domain.OpActivate), "cause": string(cause), "kind": string(a.Kind)}
	if check != "" {
		d["check"] = check
	}
	ev := domain.Event{Type: domain.EventRefused, IdentityID: a.IdentityID, AuthenticatorID: a.ID, Actor: by,
		Reason: string(cause), Details: d, At: s.clock()}
	if err := s.st.AppendAudit(ctx, ev); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "activation failed", "identity", a.IdentityID, "authenticator", a.ID, "cause", string(cause))
	return &FailureError{AuthenticatorID: a.ID, Kind: string(a.Kind), Cause: cause, Failures: a.Failures, State: a.State}
}

// checkActivationCode verifies the first code of a pending code device and
// raises its watermark.
func (s *Service) checkActivationCode(ctx context.Context, by domain.Actor, a *domain.Authenticator, code string) error {
	if code == "" {
		return invalid("code is missing")
	}
	cause, err := s.verifyCode(ctx, a, code)
	if err != nil {
		return err
	}
	if cause != "" {
		return s.recordPendingFailure(ctx, by, a, cause, "")
	}
	return nil
}

// checkActivationSignature verifies an app's signature over its
// activation challenge.
func (s *Service) checkActivationSignature(ctx context.Context, by domain.Actor, a *domain.Authenticator, req ActivateRequest) error {
	sig, err := decodeB64("signature", req.Signature)
	if err != nil {
		return err
	}
	d, err := s.takeCeremony(ctx, req.Ceremony, purposeActivate, a.IdentityID, a.ID)
	if err != nil {
		return err
	}
	el, err := s.st.Element(ctx, a.ID)
	if err != nil || el.App == nil {
		return storeErr(errOr(err, store.ErrNotFound), "the key of app "+a.ID)
	}
	if !verifyAppSignature(el.App.PublicKey, d.Challenge, sig) {
		return s.recordPendingFailure(ctx, by, a, domain.CauseBadSignature, "signature")
	}
	return nil
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

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// BlockRequest is the body of .../authenticators/{aid}/block.
type BlockRequest struct {
	Reason string `json:"reason"`
}

// Block blocks authenticator aid of identity identityID permanently
// (support, or a session of identityID), with reason "lost" or
// "compromised" ("misuse" too, for support). Its security element is wiped
// and a tombstone kept (DESIGN §1). It returns the blocked authenticator,
// or an error wrapping ErrForbidden, ErrInvalid, ErrNotFound, a
// *domain.TransitionError (domain.ErrBlocked when already blocked), or the
// store's error.
func (s *Service) Block(ctx context.Context, by domain.Actor, identityID, aid string, req BlockRequest) (AuthenticatorView, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AuthenticatorView{}, err
	}
	reason := domain.Reason(req.Reason)
	switch {
	case reason == domain.ReasonLost, reason == domain.ReasonCompromised:
	case reason == domain.ReasonMisuse && by.Kind == domain.ActorSupport:
	default:
		return AuthenticatorView{}, invalid("the reason must be lost or compromised")
	}
	c, err := s.applyAuth(ctx, aid, by, func(a domain.Authenticator) (domain.Change, error) {
		if a.IdentityID != identityID {
			return domain.Change{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
		}
		return s.policy.Block(a, by, reason, s.clock())
	})
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &c.Authenticator)
}

// Reactivate lifts the suspension of authenticator aid of identity
// identityID: by support, or self-service by a session of identityID that
// was obtained by logging in with another active authenticator (DESIGN
// §1). It returns the active authenticator, or an error wrapping
// ErrForbidden, ErrNotFound, a *domain.TransitionError
// (domain.ErrSelfServiceRefused, ErrIdentityBlocked, ErrInvalidTransition,
// ErrBlocked), or the store's error.
func (s *Service) Reactivate(ctx context.Context, by domain.Actor, identityID, aid string) (AuthenticatorView, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AuthenticatorView{}, err
	}
	c, err := s.applyAuth(ctx, aid, by, func(a domain.Authenticator) (domain.Change, error) {
		if a.IdentityID != identityID {
			return domain.Change{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
		}
		id, err := s.st.Identity(ctx, identityID)
		if err != nil {
			return domain.Change{}, storeErr(err, "identity "+identityID)
		}
		others, err := s.st.ListAuthenticators(ctx, identityID)
		if err != nil {
			return domain.Change{}, err
		}
		return s.policy.Reactivate(id, a, by, others, s.clock())
	})
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &c.Authenticator)
}
