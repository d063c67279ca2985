package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// BeginLoginResult starts a login ceremony (STYLE 17): the client answers
// within ExpiresAt with FinishLogin.
type BeginLoginResult struct {
	Ceremony  string    `json:"ceremony"`
	ExpiresAt time.Time `json:"expires_at"`
	// PublicKey is set for a chip: the WebAuthn request options.
	PublicKey *RequestOptions `json:"publicKey,omitempty"`
	// Challenge is set for an app: the bytes its key signs (SHA-256 of
	// them, ECDSA P-256).
	Challenge string `json:"challenge,omitempty"`
}

// FinishLoginRequest is the body of .../login/finish; which fields apply
// depends on the kind (see FinishLogin).
type FinishLoginRequest struct {
	Ceremony   string                  `json:"ceremony"`
	Credential *AuthenticationResponse `json:"credential,omitempty"` // chip
	Code       string                  `json:"code,omitempty"`       // code device
	PIN        string                  `json:"pin,omitempty"`        // app
	Signature  string                  `json:"signature,omitempty"`  // app
	Password   string                  `json:"password,omitempty"`   // password
}

// LoginResult is a successful login: a self-service session for the
// identity, proven with Authenticator.
type LoginResult struct {
	Session       string            `json:"session"`
	ExpiresAt     time.Time         `json:"expires_at"`
	Authenticator AuthenticatorView `json:"authenticator"`
}

// loginActor attributes login bookkeeping to the server itself, as
// domain.RecordFailure does.
var loginActor = domain.System("login")

// BeginLogin starts a login with authenticator aid of identity identityID.
// It needs no credential. It returns an error wrapping ErrNotFound, or the
// *domain.TransitionError of domain.Policy.CanLogin (identity blocked,
// authenticator pending, suspended or blocked), or the store's error.
func (s *Service) BeginLogin(ctx context.Context, identityID, aid string) (BeginLoginResult, error) {
	id, a, err := s.loadPair(ctx, identityID, aid)
	if err != nil {
		return BeginLoginResult{}, err
	}
	if err := s.policy.CanLogin(id, a, s.clock()); err != nil {
		return BeginLoginResult{}, err
	}
	d := ceremonyData{Purpose: purposeLogin, IdentityID: identityID, AuthenticatorID: aid, Kind: a.Kind}
	if a.Kind == device.KindChip || a.Kind == device.KindApp {
		if d.Challenge, err = s.random(32); err != nil {
			return BeginLoginResult{}, err
		}
	}
	exp := s.clock().Add(s.ceremonyTT)
	var key string
	if statelessLogin(a.Kind) {
		key, err = s.sealLoginToken(d, exp)
	} else {
		key, err = s.putCeremony(ctx, d)
	}
	if err != nil {
		return BeginLoginResult{}, err
	}
	r := BeginLoginResult{Ceremony: key, ExpiresAt: exp}
	switch a.Kind {
	case device.KindChip:
		r.PublicKey = &RequestOptions{
			Challenge:        b64.EncodeToString(d.Challenge),
			RPID:             s.rpID,
			AllowCredentials: []CredentialDescriptor{{Type: "public-key", ID: a.CredentialID}},
			UserVerification: "discouraged",
			Timeout:          s.ceremonyTT.Milliseconds(),
		}
	case device.KindApp:
		r.Challenge = b64.EncodeToString(d.Challenge)
	}
	return r, nil
}

// loadPair loads identity identityID and its authenticator aid.
func (s *Service) loadPair(ctx context.Context, identityID, aid string) (domain.Identity, domain.Authenticator, error) {
	a, err := s.st.Authenticator(ctx, aid)
	if err != nil {
		return domain.Identity{}, domain.Authenticator{}, storeErr(err, "authenticator "+aid)
	}
	if a.IdentityID != identityID {
		return domain.Identity{}, domain.Authenticator{}, fmt.Errorf("service: %w: authenticator %s", ErrNotFound, aid)
	}
	id, err := s.st.Identity(ctx, identityID)
	if err != nil {
		return domain.Identity{}, domain.Authenticator{}, storeErr(err, "identity "+identityID)
	}
	return id, a, nil
}

// FinishLogin finishes a login ceremony with the proof for the kind: a
// chip's WebAuthn assertion (Credential), a code device's code (Code), an
// app's signature over the challenge and its PIN (Signature, PIN), or a
// password (Password). On success the consecutive failure count goes back
// to zero and a session of SessionTTL is returned. A wrong proof is
// recorded (DESIGN §1: the 3rd consecutive failure suspends) and returned
// as a *FailureError. A chip whose non-zero signature counter does not
// increase fails with domain.ErrCloneSuspected (WebAuthn Level 2 §6.1.1).
//
// It returns an error wrapping ErrInvalid (malformed proof; not counted),
// ErrCeremonyExpired, ErrNotFound, a *FailureError, a
// *domain.TransitionError (identity blocked, authenticator pending,
// suspended or blocked), or the store's error.
func (s *Service) FinishLogin(ctx context.Context, identityID, aid string, req FinishLoginRequest) (LoginResult, error) {
	if err := checkLoginFields(req); err != nil {
		return LoginResult{}, err
	}
	var (
		d         ceremonyData
		exp       time.Time
		stateless = strings.HasPrefix(req.Ceremony, tokenPrefix)
		err       error
	)
	if stateless {
		d, exp, err = s.openLoginToken(req.Ceremony, identityID, aid)
	} else {
		d, err = s.takeCeremony(ctx, req.Ceremony, purposeLogin, identityID, aid)
	}
	if err != nil {
		return LoginResult{}, err
	}
	id, a, err := s.loadPair(ctx, identityID, aid)
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.policy.CanLogin(id, a, s.clock()); err != nil {
		if stateless {
			if serr := s.spend(ctx, d, exp); serr != nil {
				return LoginResult{}, serr
			}
		}
		s.auditRefusal(ctx, err, loginActor)
		return LoginResult{}, err
	}
	if a.Kind != d.Kind {
		return LoginResult{}, invalid("the ceremony was for another kind of authenticator")
	}
	if statelessLogin(a.Kind) != stateless {
		return LoginResult{}, fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
	}
	var (
		f *domain.Failure
		p proof
	)
	switch a.Kind {
	case device.KindPassword:
		f, err = s.checkPassword(ctx, &a, req)
	case device.KindApp:
		f, err = s.checkApp(ctx, &a, d.Challenge, req)
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		f, p, err = s.checkCode(ctx, &a, req)
	case device.KindChip:
		f, p, err = s.checkChip(ctx, &a, d.Challenge, req)
	default:
		err = invalid("unknown kind %q", a.Kind)
	}
	if err != nil {
		return LoginResult{}, err
	}
	if f != nil {
		if stateless {
			if err := s.spend(ctx, d, exp); err != nil {
				return LoginResult{}, err
			}
		}
		return LoginResult{}, s.recordFailure(ctx, aid, *f)
	}
	token, hash := secrets.NewToken()
	now := s.clock()
	sess := store.Session{TokenHash: hash, IdentityID: identityID, Via: aid, CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL)}
	var c domain.Change
	if statelessLogin(a.Kind) {
		c, err = s.commitLogin(ctx, a, sess, d, exp, p)
	} else {
		c, err = s.commitPlainLogin(ctx, a, sess)
	}
	if err != nil {
		return LoginResult{}, err
	}
	var v AuthenticatorView
	switch {
	case p.el.Code != nil:
		p.el.Code.HighestStep, p.el.Code.Drift = p.step, p.drift
		v = viewAuthenticator(&c.Authenticator, &p.el)
	case p.el.Chip != nil:
		p.el.Chip.SignCount = p.count
		v = viewAuthenticator(&c.Authenticator, &p.el)
	default:
		if v, err = s.view(ctx, &c.Authenticator); err != nil {
			return LoginResult{}, err
		}
	}
	return LoginResult{Session: token, ExpiresAt: sess.ExpiresAt, Authenticator: v}, nil
}

// commitLogin writes the success of a verified chip or code-device login
// with proof p through the store's Logins: the replay guard, the
// success transition of a (domain.Policy.RecordSuccess, retried on
// store.ErrConflict) and session sess in one transaction. A guard that
// does not move is the failure it means (a replayed code, a possible
// clone). It returns the change stored, or the errors of FinishLogin.
func (s *Service) commitLogin(ctx context.Context, a domain.Authenticator, sess store.Session, d ceremonyData, exp time.Time, p proof) (domain.Change, error) {
	chip := a.Kind == device.KindChip
	for try := 0; ; try++ {
		c, err := s.policy.RecordSuccess(a, s.clock())
		if err != nil {
			s.auditRefusal(ctx, err, loginActor)
			return domain.Change{}, err
		}
		var ok bool
		if chip {
			ok, err = s.st.CommitChipLogin(ctx, c, sess, spentCeremony(d, exp), p.count)
		} else {
			ok, err = s.st.CommitOTPLogin(ctx, c, sess, p.step, p.drift)
		}
		switch {
		case err == nil && ok:
			s.logChange(ctx, c.Events)
			return c, nil
		case err == nil && chip:
			return domain.Change{}, s.cloneFailure(ctx, a.ID, d, exp, p)
		case err == nil:
			// Another request (or replica) accepted this step a moment ago.
			return domain.Change{}, s.recordFailure(ctx, a.ID, *failure(domain.CauseReplayedCode, ""))
		case chip && errors.Is(err, store.ErrDuplicate):
			return domain.Change{}, fmt.Errorf("service: %w; begin again", ErrCeremonyExpired)
		case errors.Is(err, store.ErrConflict) && try < s.retries:
			if a, err = s.st.Authenticator(ctx, a.ID); err != nil {
				return domain.Change{}, storeErr(err, "authenticator "+a.ID)
			}
		default:
			return domain.Change{}, storeErr(err, "authenticator "+a.ID)
		}
	}
}

// commitPlainLogin writes the success of an app or password login, which
// have no replay guard of their own (their ceremony was taken once): the
// success transition, then the session.
func (s *Service) commitPlainLogin(ctx context.Context, a domain.Authenticator, sess store.Session) (domain.Change, error) {
	c, err := s.applyAuth(ctx, a.ID, loginActor, func(a domain.Authenticator) (domain.Change, error) {
		return s.policy.RecordSuccess(a, s.clock())
	})
	if err != nil {
		return domain.Change{}, err
	}
	if err := s.st.PutSession(ctx, sess); err != nil {
		return domain.Change{}, err
	}
	return c, nil
}

// cloneFailure spends the chip login ceremony d (when it is a login token)
// and records the failure of a signature counter that did not increase
// (WebAuthn Level 2 §6.1.1: a possible clone). The stored counter may have
// moved on meanwhile; the one read at verification is reported.
func (s *Service) cloneFailure(ctx context.Context, aid string, d ceremonyData, exp time.Time, p proof) error {
	if d.Challenge != nil {
		if err := s.spend(ctx, d, exp); err != nil {
			return err
		}
	}
	var stored uint32
	if p.el.Chip != nil {
		stored = p.el.Chip.SignCount
	}
	se := &domain.SignCountError{Stored: stored, Received: p.count}
	return s.recordFailure(ctx, aid, se.Failure())
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
	if req.Password != "" {
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

// recordFailure records failed attempt f with authenticator aid and
// returns the *FailureError describing the outcome (or the refusal when
// the authenticator stopped being active meanwhile).
func (s *Service) recordFailure(ctx context.Context, aid string, f domain.Failure) error {
	var a domain.Authenticator
	c, err := s.applyAuth(ctx, aid, loginActor, func(cur domain.Authenticator) (domain.Change, error) {
		c, err := s.policy.RecordFailure(cur, f, s.clock())
		if err == nil && !c.WipeSecret && c.Authenticator.State == cur.State && c.Authenticator.Failures == cur.Failures {
			// An attempt that does not count (a replayed code, by
			// default) changes nothing but the audit log: append the
			// event without a versioned write, so that a burst of
			// replays does not contend for the record.
			a = cur
			return c, errAuditOnly
		}
		return c, err
	})
	switch {
	case errors.Is(err, errAuditOnly):
		if err := s.st.AppendAudit(ctx, c.Events...); err != nil {
			return err
		}
		s.logChange(ctx, c.Events)
	case err != nil:
		return err
	default:
		a = c.Authenticator
	}
	max := s.policy.MaxFailures
	if max == 0 {
		max = domain.DefaultMaxFailures
	}
	return &FailureError{AuthenticatorID: a.ID, Kind: string(a.Kind), Cause: f.Cause, Failures: a.Failures, State: a.State, MaxFailures: max}
}

func failure(c domain.Cause, check string) *domain.Failure {
	f := &domain.Failure{Cause: c}
	if check != "" {
		f.Details = map[string]string{"check": check}
	}
	return f
}

func (s *Service) checkPassword(ctx context.Context, a *domain.Authenticator, req FinishLoginRequest) (*domain.Failure, error) {
	if req.Password == "" {
		return nil, invalid("password is missing")
	}
	if _, err := secrets.NormalizePassword(req.Password); err != nil {
		return nil, passwordErr(err)
	}
	el, err := s.st.Element(ctx, a.ID)
	if err != nil || el.Password == nil || el.Password.Verifier == "" {
		return nil, storeErr(errOr(err, store.ErrNotFound), "the verifier of password "+a.ID)
	}
	ok, rehash, err := secrets.VerifyPassword(el.Password.Verifier, req.Password)
	if err != nil {
		return nil, fmt.Errorf("service: the verifier of password %s: %w", a.ID, err)
	}
	if !ok {
		return failure(domain.CauseWrongPassword, ""), nil
	}
	if rehash {
		s.rehash(ctx, a.ID, el.Password.Verifier, req.Password)
	}
	return nil, nil
}

// rehash replaces a verifier made with old parameters; a failure only
// means it is tried again at the next login.
func (s *Service) rehash(ctx context.Context, aid, old, secret string) {
	v, err := s.hasher.Hash(secret)
	if err == nil {
		err = s.st.UpdateVerifier(ctx, aid, old, v)
	}
	if err != nil {
		s.log.DebugContext(ctx, "verifier not rehashed", "authenticator", aid, "err", err)
	}
}

func (s *Service) checkApp(ctx context.Context, a *domain.Authenticator, challenge []byte, req FinishLoginRequest) (*domain.Failure, error) {
	sig, err := decodeB64("signature", req.Signature)
	if err != nil {
		return nil, err
	}
	if len(req.PIN) != secrets.PINLen || !allDigits(req.PIN) {
		return nil, invalid("the PIN must be %d digits", secrets.PINLen)
	}
	el, err := s.st.Element(ctx, a.ID)
	if err != nil || el.App == nil || len(el.App.PublicKey) == 0 {
		return nil, storeErr(errOr(err, store.ErrNotFound), "the key of app "+a.ID)
	}
	if !verifyAppSignature(el.App.PublicKey, challenge, sig) {
		return failure(domain.CauseBadSignature, "signature"), nil
	}
	ok, rehash, err := secrets.VerifyPIN(el.App.PINVerifier, req.PIN)
	if err != nil {
		return nil, fmt.Errorf("service: the PIN verifier of app %s: %w", a.ID, err)
	}
	if !ok {
		return failure(domain.CauseWrongPIN, ""), nil
	}
	if rehash {
		s.rehash(ctx, a.ID, el.App.PINVerifier, req.PIN)
	}
	return nil, nil
}

// checkCode checks the code of a login with code device a; the watermark
// is raised when the success is written.
func (s *Service) checkCode(ctx context.Context, a *domain.Authenticator, req FinishLoginRequest) (*domain.Failure, proof, error) {
	if req.Code == "" {
		return nil, proof{}, invalid("code is missing")
	}
	cause, p, err := s.matchCode(ctx, a, req.Code)
	if err != nil || cause == "" {
		return nil, p, err
	}
	return failure(cause, ""), proof{}, nil
}

// checkChip verifies the assertion of a login with chip a; the signature
// counter is advanced when the success is written.
func (s *Service) checkChip(ctx context.Context, a *domain.Authenticator, challenge []byte, req FinishLoginRequest) (*domain.Failure, proof, error) {
	if req.Credential == nil {
		return nil, proof{}, invalid("credential is missing")
	}
	el, err := s.st.Element(ctx, a.ID)
	if err != nil || el.Chip == nil || len(el.Chip.PublicKey) == 0 {
		return nil, proof{}, storeErr(errOr(err, store.ErrNotFound), "the credential of chip "+a.ID)
	}
	if id := req.Credential.RawID; id != "" && id != a.CredentialID {
		// A credential of this chip that was blocked for good: say so
		// rather than "not this authenticator's".
		ts, err := s.st.FindTombstones(ctx, domain.Ref{CredentialID: id})
		if err != nil {
			return nil, proof{}, storeErr(err, "tombstones")
		}
		for _, t := range ts {
			if t.IdentityID == a.IdentityID {
				return nil, proof{}, fmt.Errorf("service: %w: blocked on %s; log in with the chip's new credential",
					domain.ErrCredentialRevoked, t.BlockedAt.UTC().Format("2006-01-02"))
			}
		}
	}
	as, err := s.verifyAssertion(req.Credential, challenge, a.CredentialID, el.Chip.PublicKey, el.Chip.BackupEligible)
	var fail *errAssertion
	if errors.As(err, &fail) {
		return failure(domain.CauseBadSignature, fail.check), proof{}, nil
	}
	if err != nil {
		return nil, proof{}, err
	}
	return nil, proof{el: el, count: as.SignCount}, nil
}

// Authenticate returns the owner actor of the self-service session whose
// bearer token is token: domain.Owner(identity, the authenticator the
// session was proven with). It returns an error wrapping ErrUnauthorized
// for an unknown or expired session, or the store's error.
func (s *Service) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	if token == "" || len(token) > 128 {
		return domain.Actor{}, fmt.Errorf("service: %w", ErrUnauthorized)
	}
	se, err := s.st.Session(ctx, secrets.TokenHash(token), s.clock())
	if errors.Is(err, store.ErrNotFound) {
		return domain.Actor{}, fmt.Errorf("service: %w: unknown or expired session", ErrUnauthorized)
	}
	if err != nil {
		return domain.Actor{}, err
	}
	return domain.Owner(se.IdentityID, se.Via), nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
