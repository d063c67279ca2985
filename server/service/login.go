package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// MitID's logins (DESIGN §1), each of which yields a two-factor session:
//
//   - the password, then a second factor (a code display's or an audio
//     code reader's one-time code, or the chip): LoginPassword checks the
//     password and hands out a ceremony for the second factor, chosen
//     with LoginPassword's Second or BeginSecondFactor; FinishLogin
//     checks it. The second factor is asked for only after the right
//     password, so nobody without the password can make a code device or
//     chip fail. A wrong password counts against the password (an
//     anonymous failure: it can suspend the password, never block it for
//     good); a wrong code or a bad assertion against that device.
//   - the app alone, whose device key and PIN are two factors: BeginApp
//     hands out a challenge, FinishLogin checks the app's signature over
//     it and then the PIN. A bad signature proves the caller does not
//     hold the phone and counts against nothing; a wrong PIN counts
//     against the app.
//
// Every check follows one loop (Service.prove): the lifecycle rule, the
// rate limit of the authenticator, the reservation of the attempt, the
// evaluation, and the outcome written together with the end of the
// reservation.

// PasswordLoginRequest is the body of POST .../login/password.
type PasswordLoginRequest struct {
	Password string `json:"password"`
	// Second, when set, chooses the second factor at once (as
	// BeginSecondFactor would).
	Second string `json:"second,omitempty"`
}

// SecondFactor is an authenticator that can be the second factor of a
// password login.
type SecondFactor struct {
	ID     string       `json:"id"`
	Kind   device.Kind  `json:"kind"`
	State  domain.State `json:"state"`
	Label  string       `json:"label,omitempty"`
	Serial string       `json:"serial,omitempty"`
}

// PasswordLoginResult is the answer to a right password: a ceremony for
// choosing the second factor, the second factors the identity has, and,
// when PasswordLoginRequest.Second was set, the ceremony of that factor.
type PasswordLoginResult struct {
	Ceremony      string         `json:"ceremony"`
	ExpiresAt     time.Time      `json:"expires_at"`
	SecondFactors []SecondFactor `json:"second_factors"`
	Next          *FactorLogin   `json:"next,omitempty"`
}

// SecondFactorRequest is the body of POST .../login/second.
type SecondFactorRequest struct {
	Ceremony      string `json:"ceremony"`
	Authenticator string `json:"authenticator"`
}

// AppLoginRequest is the body of POST .../login/app.
type AppLoginRequest struct {
	Authenticator string `json:"authenticator"`
}

// FactorLogin is the ceremony of the proof FinishLogin checks next, with
// what it needs: WebAuthn request options for a chip, a challenge to sign
// for an app, nothing for a code device.
type FactorLogin struct {
	Ceremony      string          `json:"ceremony"`
	ExpiresAt     time.Time       `json:"expires_at"`
	Authenticator string          `json:"authenticator"`
	Kind          device.Kind     `json:"kind"`
	PublicKey     *RequestOptions `json:"publicKey,omitempty"`
	Challenge     string          `json:"challenge,omitempty"`
}

// FinishLoginRequest is the body of .../login/finish; which fields apply
// depends on the kind of the factor (see FinishLogin).
type FinishLoginRequest struct {
	Ceremony   string                  `json:"ceremony"`
	Credential *AuthenticationResponse `json:"credential,omitempty"` // chip
	Code       string                  `json:"code,omitempty"`       // code device
	PIN        string                  `json:"pin,omitempty"`        // app
	Signature  string                  `json:"signature,omitempty"`  // app
}

// LoginResult is a successful login: a two-factor self-service session for
// the identity, proven with Authenticators (in the order they were
// checked); Authenticator is the one checked last, as it is now.
type LoginResult struct {
	Session        string            `json:"session"`
	SessionID      string            `json:"session_id"`
	Level          string            `json:"level"`
	ExpiresAt      time.Time         `json:"expires_at"`
	Authenticators []string          `json:"authenticators"`
	Authenticator  AuthenticatorView `json:"authenticator"`
}

// The level of the sessions a login yields.
const LevelTwoFactor = store.LevelTwoFactor

// loginActor attributes login bookkeeping to the server itself, as
// domain.RecordFailure does.
var loginActor = domain.System("login")

// LoginPassword checks the password of identity identityID, the first step
// of a password login (no credential needed). A right password yields no
// session, only a ceremony for the second factor and the list of the
// identity's active second factors; with req.Second the ceremony of that
// factor too. A wrong password is recorded against the password as an
// anonymous failure (domain.Failure.Anonymous: it suspends at the 3rd but
// never blocks for good).
//
// It returns an error wrapping ErrInvalid, ErrNotFound (no such identity,
// or it has no password), the refusal of a password (or identity) that
// takes no attempts (a *domain.TransitionError: suspended, blocked), a
// *FailureError (wrong password), a *RateLimitError, ErrAttemptsInFlight,
// or the store's error.
func (s *Service) LoginPassword(ctx context.Context, identityID string, req PasswordLoginRequest) (PasswordLoginResult, error) {
	if req.Password == "" {
		return PasswordLoginResult{}, invalid("password is missing")
	}
	if _, err := secrets.NormalizePassword(req.Password); err != nil {
		return PasswordLoginResult{}, passwordErr(err)
	}
	if req.Second != "" {
		if err := CheckID("second", req.Second); err != nil {
			return PasswordLoginResult{}, err
		}
	}
	// The identity, its authenticators and the verifiers of its
	// passwords in one read. The verifier is evaluated only once the
	// attempt is reserved (passwordKind.check).
	set, els, err := s.st.AuthenticatorSetWithPasswords(ctx, identityID)
	if err != nil {
		return PasswordLoginResult{}, storeErr(err, "identity "+identityID)
	}
	id, list := set.Identity, set.Authenticators
	i, ok := password(list)
	if !ok {
		return PasswordLoginResult{}, fmt.Errorf("service: %w: identity %s has no password; log in with the MitID app", ErrNotFound, identityID)
	}
	pw := list[i]
	p := &proof{password: req.Password}
	if i < len(els) {
		p.el = els[i] // nil when it has none: check reads it
	}
	v, att, err := s.prove(ctx, id, pw, true, func(reserve func() error) (verdict, error) {
		return s.kinds[device.KindPassword].check(ctx, &pw, nil, p, reserve)
	})
	if err != nil {
		return PasswordLoginResult{}, err
	}
	c := loginCeremony{Stage: stagePassword, Password: pw.ID}
	if pw.State == domain.StateActive && pw.Failures == 0 {
		// Nothing to reset: the password's success is written with the
		// second factor's, in the login's one write (FinishLogin), and
		// the attempt ends here without a write.
		att.release(ctx)
		c.PasswordPending = true
		// Counted now, when it was checked, as a written success is.
		s.countSuccess(pw, s.clock())
	} else if _, err := s.commitLogin(ctx, id, pw, "", att, v, nil, nil); err != nil {
		return PasswordLoginResult{}, err
	}
	tok, err := s.sealCeremony(identityID, &c)
	if err != nil {
		return PasswordLoginResult{}, err
	}
	r := PasswordLoginResult{Ceremony: tok, ExpiresAt: c.expires(), SecondFactors: []SecondFactor{}}
	for _, a := range list {
		// The chips and code devices that are active or suspended (a
		// suspended one is refused when chosen, with the answer that says
		// how to reactivate it).
		if secondFactor(a.Kind) && (a.State == domain.StateActive || a.State == domain.StateSuspended) {
			r.SecondFactors = append(r.SecondFactors, SecondFactor{ID: a.ID, Kind: a.Kind, State: a.State, Label: a.Label, Serial: a.Serial})
		}
	}
	if req.Second != "" {
		i := slices.IndexFunc(list, func(a domain.Authenticator) bool { return a.ID == req.Second })
		if i < 0 {
			return PasswordLoginResult{}, notSecondFactor(req.Second, identityID)
		}
		next, err := s.beginFactor(ctx, id, &c, list[i])
		if err != nil {
			return PasswordLoginResult{}, err
		}
		r.Next = &next
	}
	return r, nil
}

// password returns the position of the password of an identity's
// authenticators: the one that is not blocked (a blocked one when there
// is no other, so that the answer says so).
func password(list []domain.Authenticator) (int, bool) {
	found := -1
	for i := range list {
		if list[i].Kind != device.KindPassword {
			continue
		}
		if found < 0 || list[found].State == domain.StateBlocked {
			found = i
		}
	}
	return found, found >= 0
}

// secondFactor reports whether authenticators of kind k can be the second
// factor of a password login.
func secondFactor(k device.Kind) bool {
	return k == device.KindChip || k == device.KindCodeDisplay || k == device.KindAudioCodeReader
}

// BeginSecondFactor chooses the second factor of a password login: the
// chip or code device aid of identity identityID, for the ceremony of a
// right password (no credential needed). It returns the ceremony
// FinishLogin takes, with the WebAuthn request options for a chip.
//
// It returns an error wrapping ErrInvalid, ErrCeremonyExpired, ErrNotFound
// (no such authenticator of the identity, or not a chip or code device),
// the refusal of an authenticator that takes no attempts, or the store's
// error.
func (s *Service) BeginSecondFactor(ctx context.Context, identityID string, req SecondFactorRequest) (FactorLogin, error) {
	if err := CheckID("authenticator", req.Authenticator); err != nil {
		return FactorLogin{}, err
	}
	c, err := s.openCeremony(req.Ceremony, identityID, stagePassword)
	if err != nil {
		return FactorLogin{}, err
	}
	// The factor and its identity in one read.
	id, a, err := s.st.AuthenticatorWithIdentity(ctx, req.Authenticator)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return FactorLogin{}, storeErr(err, "authenticator "+req.Authenticator)
	}
	if err != nil || a.IdentityID != identityID {
		if id, err = s.st.Identity(ctx, identityID); err != nil {
			return FactorLogin{}, storeErr(err, "identity "+identityID)
		}
		return FactorLogin{}, notSecondFactor(req.Authenticator, identityID)
	}
	return s.beginFactor(ctx, id, &c, a)
}

// notSecondFactor is the answer to a second factor that is not a chip or
// code device of identity identityID.
func notSecondFactor(aid, identityID string) error {
	return fmt.Errorf("service: %w: %s is not a chip or code device of identity %s", ErrNotFound, aid, identityID)
}

// beginFactor starts the check of second factor a of identity id after
// the password of ceremony pc was proven.
func (s *Service) beginFactor(ctx context.Context, id domain.Identity, pc *loginCeremony, a domain.Authenticator) (FactorLogin, error) {
	if a.IdentityID != id.ID || !secondFactor(a.Kind) {
		return FactorLogin{}, notSecondFactor(a.ID, id.ID)
	}
	var err error
	if err := s.refusal(ctx, id, a); err != nil {
		return FactorLogin{}, err
	}
	c := loginCeremony{Stage: stageFactor, Password: pc.Password, PasswordPending: pc.PasswordPending, Factor: a.ID, Kind: a.Kind}
	if a.Kind == device.KindChip {
		if c.Challenge, err = s.random(challengeLen); err != nil {
			return FactorLogin{}, err
		}
	}
	tok, err := s.sealCeremony(id.ID, &c)
	if err != nil {
		return FactorLogin{}, err
	}
	f := FactorLogin{Ceremony: tok, ExpiresAt: c.expires(), Authenticator: a.ID, Kind: a.Kind}
	if a.Kind == device.KindChip {
		f.PublicKey = &RequestOptions{
			Challenge:        b64.EncodeToString(c.Challenge),
			RPID:             s.rpID,
			AllowCredentials: []CredentialDescriptor{{Type: "public-key", ID: a.CredentialID}},
			UserVerification: "discouraged",
			Timeout:          s.ceremonyTT.Milliseconds(),
		}
	}
	return f, nil
}

// BeginApp starts a login with the MitID app aid of identity identityID
// (no credential needed): the app signs the challenge, and FinishLogin
// checks the signature and the PIN. An ID that names no app of the
// identity is answered like an app's (a ceremony and a challenge), costs
// nobody anything, and fails at FinishLogin as a signature that does not
// verify.
//
// It returns an error wrapping ErrInvalid, ErrNotFound (no such identity),
// the refusal of an app that takes no attempts, or the store's error.
func (s *Service) BeginApp(ctx context.Context, identityID string, req AppLoginRequest) (FactorLogin, error) {
	if err := CheckID("authenticator", req.Authenticator); err != nil {
		return FactorLogin{}, err
	}
	id, err := s.st.Identity(ctx, identityID)
	if err != nil {
		return FactorLogin{}, storeErr(err, "identity "+identityID)
	}
	a, err := s.st.Authenticator(ctx, req.Authenticator)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return FactorLogin{}, storeErr(err, "authenticator "+req.Authenticator)
	case a.IdentityID == identityID && a.Kind == device.KindApp:
		if err := s.refusal(ctx, id, a); err != nil {
			return FactorLogin{}, err
		}
	}
	c := loginCeremony{Stage: stageFactor, Factor: req.Authenticator, Kind: device.KindApp}
	if c.Challenge, err = s.random(challengeLen); err != nil {
		return FactorLogin{}, err
	}
	tok, err := s.sealCeremony(identityID, &c)
	if err != nil {
		return FactorLogin{}, err
	}
	return FactorLogin{Ceremony: tok, ExpiresAt: c.expires(), Authenticator: req.Authenticator, Kind: device.KindApp,
		Challenge: b64.EncodeToString(c.Challenge)}, nil
}

// errAppSignature is the answer to an app login whose signature does not
// verify, or whose app does not exist: the same words either way, and
// nothing is counted.
var errAppSignature = fmt.Errorf("service: %w: the app's signature over the challenge did not verify; nothing was counted", ErrBadSignature)

// FinishLogin checks the proof of the factor a login ceremony chose (no
// credential needed): a chip's WebAuthn assertion (Credential) or a code
// device's code (Code) after a right password, or an app's signature over
// the challenge and its PIN (Signature, PIN). On success the factor's
// consecutive failure count goes back to zero and a two-factor session of
// SessionTTL is returned. A wrong proof is recorded against the factor
// (DESIGN §1: the 3rd consecutive failure suspends) and returned as a
// *FailureError. A chip whose non-zero signature counter does not
// increase fails with domain.ErrCloneSuspected (WebAuthn Level 2 §6.1.1).
//
// It returns an error wrapping ErrInvalid (malformed proof; not counted),
// ErrCeremonyExpired, ErrNotFound, ErrBadSignature (an app signature that
// does not verify; not counted), a *FailureError, the refusal of a factor
// (or password) that takes no attempts, a *RateLimitError,
// ErrAttemptsInFlight, or the store's error.
func (s *Service) FinishLogin(ctx context.Context, identityID string, req FinishLoginRequest) (LoginResult, error) {
	if err := checkLoginFields(req); err != nil {
		return LoginResult{}, err
	}
	c, err := s.openCeremony(req.Ceremony, identityID, stageFactor)
	if err != nil {
		return LoginResult{}, err
	}
	p := &proof{code: req.Code, pin: req.PIN, signature: req.Signature, credential: req.Credential}
	// The factor, its identity and its element in one read.
	id, a, el, err := s.st.AuthenticatorWithElement(ctx, c.Factor, c.Kind)
	p.el = el
	if errors.Is(err, store.ErrNotFound) || err == nil && (a.IdentityID != identityID || a.Kind != c.Kind) {
		if _, err := s.st.Identity(ctx, identityID); err != nil {
			return LoginResult{}, storeErr(err, "identity "+identityID)
		}
		if c.Kind == device.KindApp {
			// Answered as an app whose signature does not verify.
			if _, err := appProof(p); err != nil {
				return LoginResult{}, err
			}
			return LoginResult{}, errAppSignature
		}
		return LoginResult{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, c.Factor)
	}
	if err != nil {
		return LoginResult{}, storeErr(err, "authenticator "+c.Factor)
	}
	k := s.kinds[a.Kind]
	v, att, err := s.prove(ctx, id, a, false, func(reserve func() error) (verdict, error) {
		return k.check(ctx, &a, &c, p, reserve)
	})
	if err != nil {
		return LoginResult{}, err
	}
	var proofs []string
	if c.Password != "" {
		proofs = []string{c.Password, a.ID}
	} else {
		proofs = []string{a.ID}
	}
	now := s.clock()
	token, hash := secrets.NewToken(now)
	sid, err := s.newID("ses")
	if err != nil {
		att.release(ctx)
		return LoginResult{}, err
	}
	sess := &store.Session{TokenHash: hash, ID: sid, IdentityID: identityID, Level: store.LevelTwoFactor,
		Authenticators: proofs, CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL)}
	var spent *store.Ceremony
	if v.chip != nil {
		sc := spentCeremony(identityID, &c)
		spent = &sc
	}
	var prior string
	if c.PasswordPending {
		prior = c.Password
	}
	ch, err := s.commitLogin(ctx, id, a, prior, att, v, sess, spent)
	if err != nil {
		return LoginResult{}, err
	}
	view, err := s.loginView(ctx, &ch.Authenticator, v)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Session: token, SessionID: sid, Level: sess.Level, ExpiresAt: sess.ExpiresAt,
		Authenticators: proofs, Authenticator: view}, nil
}

// loginView is the view of a after a login checked with verdict v: the
// element as read, with the guard the login moved.
func (s *Service) loginView(ctx context.Context, a *domain.Authenticator, v verdict) (AuthenticatorView, error) {
	switch {
	case v.el.Code != nil && v.otp != nil:
		v.el.Code.HighestStep, v.el.Code.Drift = v.otp.Step, v.otp.Drift
		return viewAuthenticator(a, &v.el), nil
	case v.el.Chip != nil && v.chip != nil:
		v.el.Chip.SignCount = v.chip.Count
		return viewAuthenticator(a, &v.el), nil
	}
	return s.view(ctx, a)
}

// checkLoginFields refuses a request that mixes the proofs of several
// kinds in a way no kind accepts.
func checkLoginFields(req FinishLoginRequest) error {
	n := 0
	if req.Credential != nil {
		n++
	}
	if req.Code != "" {
		n++
	}
	if req.PIN != "" || req.Signature != "" {
		n++
	}
	if n > 1 {
		return invalid("the request mixes the proofs of different kinds")
	}
	return nil
}

// loadPair loads identity identityID and its authenticator aid, in one
// read.
func (s *Service) loadPair(ctx context.Context, identityID, aid string) (domain.Identity, domain.Authenticator, error) {
	id, a, err := s.st.AuthenticatorWithIdentity(ctx, aid)
	if err != nil {
		return domain.Identity{}, domain.Authenticator{}, storeErr(err, "authenticator "+aid)
	}
	if a.IdentityID != identityID {
		return domain.Identity{}, domain.Authenticator{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
	}
	return id, a, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
