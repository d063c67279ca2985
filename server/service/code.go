package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// codeKind is the code display and the audio code reader: a TOTP token
// (RFC 6238) whose secret comes from a PSKC import (RFC 6030) by serial.
//
// Adding one by serial stores a pending authenticator that holds nothing
// of the secret: several identities may add one serial, and only the one
// that proves possession with a right code takes the secret
// (store.Logins.ActivateCodeDevice), so adding somebody else's serial
// achieves nothing. Wrong activation codes count against the serial's
// import, from everybody together, rate limited like logins and reserved
// before they are checked; after domain.Policy.MaxActivationFailures the
// serial is locked until support imports it again. A pending add expires
// (domain.Policy.PendingExpiry) and can be cancelled without revoking the
// serial. Once active, it logs in as the second factor of a password login:
// a code is accepted within ±1 time step and only above the highest step
// used (RFC 6238 §5.2), which the store raises atomically; the drift is
// recorded (§6).
type codeKind struct{ s *Service }

var _ kind = (*codeKind)(nil)

// add adds a pending code device whose secret was imported.
func (k *codeKind) add(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, aid string, req AddRequest) (AddResult, error) {
	s := k.s
	kind, _ := device.ParseKind(req.Kind)
	n := newAuth{id: aid, kind: kind, ref: domain.Ref{Serial: req.Serial}, label: req.Label}
	c, err := s.addChange(ctx, set, n, by)
	if err != nil {
		return AddResult{}, err
	}
	im, err := s.st.Import(ctx, req.Serial)
	if errors.Is(err, store.ErrNotFound) {
		return AddResult{}, invalid("no secret was imported for serial %s; import the device's PSKC document first", req.Serial)
	}
	if err != nil {
		return AddResult{}, storeErr(err, "the import of serial "+req.Serial)
	}
	if err := s.unlocked(&im); err != nil {
		return AddResult{}, err
	}
	if c, err = s.create(ctx, set, n, c, store.Element{}, by); err != nil {
		return AddResult{}, err
	}
	v := viewAuthenticator(&c.Authenticator, nil)
	return AddResult{Authenticator: v, Activation: CodeActivation{Needs: "code"}}, nil
}

// unlocked returns ErrSerialLocked when im took too many wrong activation
// codes.
func (s *Service) unlocked(im *store.Import) error {
	if max := s.policy.ActivationFailures(); max >= 0 && im.Failures >= max {
		return fmt.Errorf("service: %w: serial %s took %d wrong activation codes; support must import it again", ErrSerialLocked, im.Serial, im.Failures)
	}
	return nil
}

// activate proves possession of pending code device a with a current code:
// the attempt is reserved against the serial's import, the code is
// checked against the imported secret, and the activation takes the
// secret in the same write.
func (k *codeKind) activate(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, a *domain.Authenticator, aid string, req ActivateRequest) (AuthenticatorView, error) {
	id := set.Identity
	s := k.s
	if req.Ceremony != "" || req.Credential != nil || req.Signature != "" {
		return AuthenticatorView{}, invalid("a code device is activated with a code only")
	}
	if a.State != domain.StatePending {
		return s.activateWith(ctx, by, id, *a)
	}
	if req.Code == "" {
		return AuthenticatorView{}, invalid("code is missing")
	}
	// The lifecycle rules first (expired, identity blocked, ...).
	if _, err := s.policy.Activate(id, *a, by, s.clock()); err != nil {
		s.auditRefusal(ctx, err, by)
		return AuthenticatorView{}, err
	}
	im, err := s.st.Import(ctx, a.Serial)
	if errors.Is(err, store.ErrNotFound) {
		return AuthenticatorView{}, s.importGone(ctx, id, a)
	}
	if err != nil {
		return AuthenticatorView{}, storeErr(err, "the import of serial "+a.Serial)
	}
	if err := s.unlocked(&im); err != nil {
		return AuthenticatorView{}, err
	}
	t, err := s.totp(&im.Secret, importAD(im.Serial), im.OTPParams)
	if err != nil {
		return AuthenticatorView{}, err
	}
	defer clear(t.Secret)
	if err := checkDigits(req.Code, t.Digits); err != nil {
		return AuthenticatorView{}, err
	}
	att := &attempt{s: s, op: "activate", identityID: id.ID, aid: a.ID, serial: a.Serial, max: s.policy.ActivationFailures(),
		recheck: func(ctx context.Context) error {
			im, err := s.st.Import(ctx, a.Serial)
			if errors.Is(err, store.ErrNotFound) {
				return s.importGone(ctx, id, a)
			}
			if err != nil {
				return storeErr(err, "the import of serial "+a.Serial)
			}
			return s.unlocked(&im)
		}}
	if err := att.reserve(ctx); err != nil {
		return AuthenticatorView{}, err
	}
	s.checked(a.Kind)
	m, err := t.Verify(req.Code, s.clock(), otpSkew, 0)
	if errors.Is(err, otp.ErrMismatch) {
		return AuthenticatorView{}, s.failActivation(ctx, by, a, att)
	}
	if err != nil {
		att.release(ctx)
		return AuthenticatorView{}, fmt.Errorf("service: code device %s: %w", a.ID, err)
	}
	sealed, err := s.keys.Seal(t.Secret, otpAD(a.ID))
	if err != nil {
		att.release(ctx)
		return AuthenticatorView{}, err
	}
	el := store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: sealed.KeyID, Blob: sealed.Blob},
		OTPParams: im.OTPParams, HighestStep: m.Step, Drift: m.Drift}}
	for try := 0; ; try++ {
		c, err := s.policy.Activate(id, *a, by, s.clock())
		if err != nil {
			att.release(ctx)
			s.auditRefusal(ctx, err, by)
			return AuthenticatorView{}, err
		}
		err = s.st.ActivateCodeDevice(ctx, store.CodeActivation{Attempt: att.id, Change: c, Element: el, Import: im})
		switch {
		case err == nil:
			att.ended()
			s.logChange(ctx, c.Events)
			return viewAuthenticator(&c.Authenticator, &el), nil
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDuplicate):
			att.release(ctx)
			return AuthenticatorView{}, s.importGone(ctx, id, a)
		case errors.Is(err, store.ErrConflict) && try < s.retries:
			if *a, err = s.st.Authenticator(ctx, a.ID); err != nil {
				att.release(ctx)
				return AuthenticatorView{}, storeErr(err, "authenticator "+a.ID)
			}
		default:
			att.release(ctx)
			return AuthenticatorView{}, storeErr(err, "authenticator "+a.ID)
		}
	}
}

// importGone explains why the secret of pending code device a is not
// there: another identity activated the serial, or nobody imported it.
func (s *Service) importGone(ctx context.Context, id domain.Identity, a *domain.Authenticator) error {
	found, err := s.st.FindAuthenticators(ctx, domain.Ref{Serial: a.Serial})
	if err != nil {
		return storeErr(err, "serial "+a.Serial)
	}
	for _, o := range found {
		if o.ID != a.ID && o.State != domain.StatePending && o.State != domain.StateBlocked && (o.Kind == device.KindCodeDisplay || o.Kind == device.KindAudioCodeReader) {
			te := &domain.TransitionError{IdentityID: id.ID, AuthenticatorID: a.ID, Kind: a.Kind, From: string(a.State), Event: domain.OpActivate,
				Reason: domain.ErrAlreadyAdded, Detail: "serial " + a.Serial + " was activated by another identity; cancel this one"}
			s.auditRefusal(ctx, te, domain.System("activation"))
			return te
		}
	}
	return invalid("no secret is imported for serial %s; support imports the device's PSKC document", a.Serial)
}

// failActivation records a wrong activation code of pending code device a
// against its serial's import, ending attempt att, and returns the
// *FailureError (whose Failures are the serial's).
func (s *Service) failActivation(ctx context.Context, by domain.Actor, a *domain.Authenticator, att *attempt) error {
	ev := pendingFailureEvent(a, by, domain.CauseWrongCode, "", s.clock())
	n, err := s.st.FailImportAttempt(ctx, att.id, a.Serial, []domain.Event{ev})
	if err != nil {
		att.release(ctx)
		return storeErr(err, "the import of serial "+a.Serial)
	}
	att.id = ""
	att.ended()
	s.log.InfoContext(ctx, "activation failed", "identity", a.IdentityID, "authenticator", a.ID, "cause", string(domain.CauseWrongCode), "serial_failures", n)
	return &FailureError{AuthenticatorID: a.ID, Kind: string(a.Kind), Cause: domain.CauseWrongCode, Failures: n, State: a.State,
		MaxFailures: s.policy.ActivationFailures(), activation: true}
}

// pendingFailureEvent is the audit event of a failed activation attempt of
// pending authenticator a.
func pendingFailureEvent(a *domain.Authenticator, by domain.Actor, cause domain.Cause, check string, now time.Time) domain.Event {
	d := map[string]string{"op": string(domain.OpActivate), "cause": string(cause), "kind": string(a.Kind)}
	if check != "" {
		d["check"] = check
	}
	if a.Serial != "" {
		d["serial"] = a.Serial
	}
	return domain.Event{Type: domain.EventRefused, IdentityID: a.IdentityID, AuthenticatorID: a.ID, Actor: by,
		Reason: string(cause), Details: d, At: now}
}

// check checks the code of a login with code device a; the watermark is
// raised when the success is written (the OTP guard).
func (k *codeKind) check(ctx context.Context, a *domain.Authenticator, _ *loginCeremony, p *proof, reserve func() error) (verdict, error) {
	s := k.s
	if p.code == "" {
		return verdict{}, invalid("code is missing")
	}
	el, err := s.elementOf(ctx, a, p)
	if err != nil || el.Code == nil || el.Code.Secret.IsZero() {
		return verdict{}, storeErr(errOr(err, store.ErrNotFound), "the secret of code device "+a.ID)
	}
	c := el.Code
	t, err := s.totp(&c.Secret, otpAD(a.ID), c.OTPParams)
	if err != nil {
		return verdict{}, err
	}
	defer clear(t.Secret)
	if err := checkDigits(p.code, t.Digits); err != nil {
		return verdict{}, err
	}
	if err := reserve(); err != nil {
		return verdict{}, err
	}
	s.checked(a.Kind)
	m, err := t.Verify(p.code, s.clock(), otpSkew, c.HighestStep)
	switch {
	case errors.Is(err, otp.ErrMismatch):
		return failed(domain.CauseWrongCode, ""), nil
	case errors.Is(err, otp.ErrReplayed):
		return failed(domain.CauseReplayedCode, ""), nil
	case err != nil:
		return verdict{}, fmt.Errorf("service: code device %s: %w", a.ID, err)
	}
	return verdict{otp: &store.OTPGuard{Step: m.Step, Drift: m.Drift}, el: el}, nil
}

// otpSkew is the number of time steps accepted before and after the
// current one (RFC 6238 §5.2 recommends one, for network delay).
const otpSkew = 1

// totp opens the sealed secret (bound to ad) of a TOTP generator with
// params; the caller clears its Secret.
func (s *Service) totp(sealed *store.Sealed, ad []byte, params store.OTPParams) (otp.TOTP, error) {
	secret, err := s.keys.Open(secrets.Sealed{KeyID: sealed.KeyID, Blob: sealed.Blob}, ad)
	if err != nil {
		return otp.TOTP{}, fmt.Errorf("service: an OTP secret: %w", err)
	}
	t := otp.TOTP{Secret: secret, Digits: params.Digits, Period: params.Period, Algorithm: params.Algorithm}
	if t.Digits == 0 {
		t.Digits = otp.DefaultDigits
	}
	return t, nil
}

// checkDigits refuses a code that is not digits digits. It returns an
// error wrapping ErrInvalid.
func checkDigits(code string, digits int) error {
	if len(code) != digits || !allDigits(code) {
		return invalid("the code must be %d digits", digits)
	}
	return nil
}

// importAD and otpAD bind sealed OTP secrets to their row.
func importAD(serial string) []byte { return secrets.AssociatedData("pskc-import", serial) }
func otpAD(aid string) []byte       { return secrets.AssociatedData("otp-secret", aid) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
