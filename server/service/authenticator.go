package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
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
	Purpose         string      `json:"purpose"` // purposeActivate (a chip's registration is a sealed registrationCeremony)
	IdentityID      string      `json:"identity_id"`
	AuthenticatorID string      `json:"authenticator_id"`
	Kind            device.Kind `json:"kind"`
	Label           string      `json:"label,omitempty"`
	Challenge       []byte      `json:"challenge,omitempty"`
}

const (
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
// or a two-factor session of identityID), checking the quotas, revoked
// serials and credentials of DESIGN §1 before any costly work (a PIN or
// password is hashed only once the add is allowed):
//
//   - chip: nothing is stored yet; the result carries a WebAuthn
//     registration ceremony, finished by Activate with the chip's
//     credential;
//   - code-display, audio-code-reader: Serial is required and its secret
//     must have been imported (ImportPSKC); the authenticator is pending,
//     holding nothing of the secret, until Activate with a current code
//     proves possession;
//   - app: PublicKey (a P-256 SubjectPublicKeyInfo) and PIN are required;
//     pending until Activate with a signature over the challenge;
//   - password: Password is required; the authenticator is active at once.
//
// A pending authenticator of the identity that expired
// (domain.Policy.PendingExpiry) is cancelled first, so it does not hold a
// quota. It returns an error wrapping ErrForbidden, ErrInvalid, ErrNotFound
// (no such identity), ErrSerialLocked, a *domain.TransitionError
// (domain.ErrQuotaExceeded, ErrSerialRevoked, ErrCredentialRevoked,
// ErrAlreadyAdded, ErrIdentityBlocked, ErrNotAllowed), or the store's
// error.
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
	set, err := s.authenticatorSet(ctx, identityID)
	if err != nil {
		return AddResult{}, err
	}
	if set, err = s.cancelExpired(ctx, set); err != nil {
		return AddResult{}, err
	}
	aid, err := s.newID(idPrefix[kind])
	if err != nil {
		return AddResult{}, err
	}
	return s.kinds[kind].add(ctx, by, &set, aid, req)
}

// authenticatorSet reads identity identityID with its authenticators and
// the version of the set, in one store read: what an add or an activation
// works from.
func (s *Service) authenticatorSet(ctx context.Context, identityID string) (store.AuthenticatorSet, error) {
	set, err := s.st.AuthenticatorSet(ctx, identityID)
	if err != nil {
		return store.AuthenticatorSet{}, storeErr(err, "identity "+identityID)
	}
	return set, nil
}

// cancelExpired cancels the pending authenticators of the identity of set
// whose activation window closed (domain.Policy.PendingExpiry), and returns
// the set as it is then (read again when it cancelled any).
func (s *Service) cancelExpired(ctx context.Context, set store.AuthenticatorSet) (store.AuthenticatorSet, error) {
	now := s.clock()
	cancelled := false
	for _, a := range set.Authenticators {
		if !s.policy.PendingExpired(a, now) {
			continue
		}
		_, err := s.applyAuth(ctx, a.ID, domain.System("expiry"), func(a domain.Authenticator) (domain.Change, error) {
			return s.policy.Cancel(a, domain.System("expiry"), s.clock())
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return store.AuthenticatorSet{}, err
		}
		cancelled = true
	}
	if !cancelled {
		return set, nil
	}
	return s.authenticatorSet(ctx, set.Identity.ID)
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
	// spent, when set, is the mark of the single-use registration
	// ceremony, stored with the authenticator (store.CreateRegistered).
	spent *store.Ceremony
}

// candidates returns what domain.Policy.CheckAdd needs: the identity's
// authenticators (those of set) with those of any identity that share ref,
// and the tombstones of ref.
func (s *Service) candidates(ctx context.Context, set *store.AuthenticatorSet, ref domain.Ref) ([]domain.Authenticator, []domain.Tombstone, error) {
	own := set.Authenticators
	if ref.Serial == "" && ref.CredentialID == "" {
		return own, nil, nil
	}
	found, err := s.st.FindAuthenticators(ctx, ref)
	if err != nil {
		return nil, nil, err
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
		return nil, nil, err
	}
	return own, tombs, nil
}

// addChange runs domain.Policy.Add for n against set (and
// domain.Policy.Activate when n.activate), auditing a refusal. The change
// is checked against set.Version, which store.CreateAuthenticatorAt
// guards.
//
// A chip is checked against the identity's own authenticators only: its
// reference is a credential ID, new from the chip (or a placeholder while
// its registration is pending), and one that another authenticator holds
// or a tombstone revokes was registered before, which the store refuses
// for good (store.ErrDuplicate: create then says which rule refuses it).
// Only when the own authenticators refuse the add are the others and the
// tombstones read, so that the refusal names the first rule it breaks.
func (s *Service) addChange(ctx context.Context, set *store.AuthenticatorSet, n newAuth, by domain.Actor) (domain.Change, error) {
	id := set.Identity
	req := domain.AddRequest{ID: n.id, Kind: n.kind, Ref: n.ref, Label: n.label}
	now := s.clock()
	var (
		c   domain.Change
		err error
	)
	ownOnly := n.kind == device.KindChip
	if ownOnly {
		c, err = s.policy.Add(id, set.Authenticators, nil, req, by, now)
	}
	if !ownOnly || err != nil {
		existing, tombs, cerr := s.candidates(ctx, set, n.ref)
		if cerr != nil {
			return domain.Change{}, cerr
		}
		c, err = s.policy.Add(id, existing, tombs, req, by, now)
	}
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, err
	}
	if !n.activate {
		return c, nil
	}
	act, err := s.policy.Activate(id, c.Authenticator, by, now)
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, err
	}
	return domain.Change{Authenticator: act.Authenticator, Events: append(c.Events, act.Events...)}, nil
}

// create stores c, the change addChange made for n from set, with its
// element, and returns the change stored.
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
func (s *Service) create(ctx context.Context, set *store.AuthenticatorSet, n newAuth, c domain.Change, el store.Element, by domain.Actor) (domain.Change, error) {
	for try := 0; ; try++ {
		var err error
		if n.spent != nil {
			err = s.st.CreateRegistered(ctx, c, el, set.Version, *n.spent)
		} else {
			err = s.st.CreateAuthenticatorAt(ctx, c, el, set.Version)
		}
		if err == nil {
			s.logChange(ctx, c.Events)
			return c, nil
		}
		if errors.Is(err, store.ErrSpent) {
			return domain.Change{}, errBeginAgain()
		}
		switch {
		case errors.Is(err, store.ErrConflict) && try < s.retries:
			if *set, err = s.authenticatorSet(ctx, set.Identity.ID); err != nil {
				return domain.Change{}, err
			}
			if c, err = s.addChange(ctx, set, n, by); err != nil {
				return domain.Change{}, err
			}
			continue
		case !errors.Is(err, store.ErrDuplicate):
			return domain.Change{}, storeErr(err, "identity "+set.Identity.ID)
		}
		a := c.Authenticator
		existing, tombs, cerr := s.candidates(ctx, set, a.Ref)
		if cerr == nil {
			if cerr = s.policy.CheckAdd(set.Identity, existing, a.Kind, a.Ref, tombs); cerr != nil {
				s.auditRefusal(ctx, cerr, by)
				return domain.Change{}, cerr
			}
		}
		return domain.Change{}, fmt.Errorf("service: %w: %v", domain.ErrAlreadyAdded, err)
	}
}

// createActive adds and activates an authenticator in one store write
// (passwords, and chips once their attestation is verified).
func (s *Service) createActive(ctx context.Context, set *store.AuthenticatorSet, aid string, kind device.Kind, ref domain.Ref, label string, by domain.Actor, el store.Element, spent *store.Ceremony) (domain.Authenticator, error) {
	if aid == "" {
		var err error
		if aid, err = s.newID(idPrefix[kind]); err != nil {
			return domain.Authenticator{}, err
		}
	}
	n := newAuth{id: aid, kind: kind, ref: ref, label: label, activate: true, spent: spent}
	c, err := s.addChange(ctx, set, n, by)
	if err != nil {
		return domain.Authenticator{}, err
	}
	if c, err = s.create(ctx, set, n, c, el, by); err != nil {
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
		return ceremonyData{}, errBeginAgain()
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

// Activate activates authenticator aid of identity identityID (support, or
// a two-factor session of identityID) with its proof of possession: a chip
// with its WebAuthn registration (Ceremony and Credential), a code device
// with a current code (Code), an app with a signature over the challenge
// (Ceremony and Signature). It returns the active authenticator, or an
// error wrapping ErrForbidden, ErrInvalid, ErrNotFound,
// ErrCeremonyExpired, ErrAttestationUntrusted, ErrSerialLocked, a
// *RateLimitError, ErrAttemptsInFlight, a *FailureError (a wrong code,
// counted against the serial; a bad signature, not counted), a
// *domain.TransitionError (ErrExpired, ErrAlreadyAdded: another identity
// activated the serial, ...), or the store's error.
func (s *Service) Activate(ctx context.Context, by domain.Actor, identityID, aid string, req ActivateRequest) (AuthenticatorView, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AuthenticatorView{}, err
	}
	// The identity with its authenticators, in one read: aid among them,
	// or a chip whose registration stores it now.
	set, err := s.authenticatorSet(ctx, identityID)
	if err != nil {
		return AuthenticatorView{}, err
	}
	for i := range set.Authenticators {
		if a := &set.Authenticators[i]; a.ID == aid {
			return s.kinds[a.Kind].activate(ctx, by, &set, a, aid, req)
		}
	}
	if req.Credential != nil {
		return s.kinds[device.KindChip].activate(ctx, by, &set, nil, aid, req)
	}
	return AuthenticatorView{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
}

// activateWith applies domain.Policy.Activate to a, whose possession was
// proven (or which needs no proof), and returns its view. id is the
// identity as read for the request; a retry after a conflict reads it
// again.
func (s *Service) activateWith(ctx context.Context, by domain.Actor, id domain.Identity, a domain.Authenticator) (AuthenticatorView, error) {
	fresh := true
	c, err := s.applyAuth(ctx, a.ID, by, func(a domain.Authenticator) (domain.Change, error) {
		if !fresh {
			var err error
			if id, err = s.st.Identity(ctx, id.ID); err != nil {
				return domain.Change{}, storeErr(err, "identity "+id.ID)
			}
		}
		fresh = false
		return s.policy.Activate(id, a, by, s.clock())
	})
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &c.Authenticator)
}

// recordPendingFailure audits a failed activation attempt of pending
// authenticator a that counts against nothing (an app's bad signature:
// the app's key is bound at add time, so only the phone can sign) and
// returns the *FailureError. failures is what the failure error reports.
func (s *Service) recordPendingFailure(ctx context.Context, by domain.Actor, a *domain.Authenticator, cause domain.Cause, check string, failures int) error {
	ev := pendingFailureEvent(a, by, cause, check, s.clock())
	if err := s.st.AppendAudit(ctx, ev); err != nil {
		return storeErr(err, "audit")
	}
	s.log.InfoContext(ctx, "activation failed", "identity", a.IdentityID, "authenticator", a.ID, "cause", string(cause))
	return &FailureError{AuthenticatorID: a.ID, Kind: string(a.Kind), Cause: cause, Failures: failures, State: a.State}
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
// (support, or a two-factor session of identityID), with reason "lost" or
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
	return s.changedView(ctx, &c)
}

// Reactivate lifts the suspension of authenticator aid of identity
// identityID: by support, or self-service by a two-factor session of
// identityID proven with other authenticators, all active (DESIGN §1). It returns the active authenticator, or an error wrapping
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
		set, err := s.authenticatorSet(ctx, identityID)
		if err != nil {
			return domain.Change{}, err
		}
		return s.policy.Reactivate(set.Identity, a, by, set.Authenticators, s.clock())
	})
	if err != nil {
		return AuthenticatorView{}, err
	}
	return s.view(ctx, &c.Authenticator)
}

// CancelResult is the answer to Cancel.
type CancelResult struct {
	ID        string `json:"id"`
	Cancelled bool   `json:"cancelled"`
}

// Cancel withdraws pending authenticator aid of identity identityID
// (support, or a two-factor session of identityID): a code device added by
// mistake (or by somebody who does not hold it), an app never activated.
// Nothing was proven with it, so nothing is revoked: the serial or key can
// be added again. It returns an error wrapping ErrForbidden, ErrNotFound,
// a *domain.TransitionError (domain.ErrInvalidTransition for an active or
// suspended authenticator: block it instead; ErrBlocked), or the store's
// error.
func (s *Service) Cancel(ctx context.Context, by domain.Actor, identityID, aid string) (CancelResult, error) {
	if err := authorize(by, identityID, false); err != nil {
		return CancelResult{}, err
	}
	_, err := s.applyAuth(ctx, aid, by, func(a domain.Authenticator) (domain.Change, error) {
		if a.IdentityID != identityID {
			return domain.Change{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
		}
		return s.policy.Cancel(a, by, s.clock())
	})
	if err != nil {
		return CancelResult{}, err
	}
	return CancelResult{ID: aid, Cancelled: true}, nil
}
