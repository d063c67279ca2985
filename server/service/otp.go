package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// otpSkew is the number of time steps accepted before and after the
// current one (RFC 6238 §5.2 recommends one, for network delay).
const otpSkew = 1

// verifyCode checks a one-time code of code device a (RFC 6238 §5.2) and,
// when it matches a step above the highest one used, raises that
// watermark atomically and records the drift (§6). It returns the cause of
// a failed attempt (CauseWrongCode, CauseReplayedCode) or "" on success;
// an error wrapping ErrInvalid when code is not Digits digits; or an error
// of the store or the keyring.
func (s *Service) verifyCode(ctx context.Context, a *domain.Authenticator, code string) (domain.Cause, error) {
	cause, p, err := s.matchCode(ctx, a, code)
	if err != nil || cause != "" {
		return cause, err
	}
	ok, err := s.st.AdvanceOTPStep(ctx, a.ID, p.step, p.drift)
	if err != nil {
		return "", storeErr(err, "code device "+a.ID)
	}
	if !ok {
		// Another request (or replica) accepted this step a moment ago.
		return domain.CauseReplayedCode, nil
	}
	return "", nil
}

// matchCode is verifyCode without raising the watermark: on success the
// proof holds the matched step and drift, and the element as read. The
// caller must raise the watermark (AdvanceOTPStep, or CommitOTPLogin)
// before accepting the code.
func (s *Service) matchCode(ctx context.Context, a *domain.Authenticator, code string) (domain.Cause, proof, error) {
	el, err := s.st.Element(ctx, a.ID)
	if err != nil || el.Code == nil || el.Code.Secret.IsZero() {
		return "", proof{}, storeErr(errOr(err, store.ErrNotFound), "the secret of code device "+a.ID)
	}
	c := el.Code
	digits := c.Digits
	if digits == 0 {
		digits = otp.DefaultDigits
	}
	if len(code) != digits || !allDigits(code) {
		return "", proof{}, invalid("the code must be %d digits", digits)
	}
	secret, err := s.keys.Open(secrets.Sealed{KeyID: c.Secret.KeyID, Blob: c.Secret.Blob}, otpAD(a.ID))
	if err != nil {
		return "", proof{}, fmt.Errorf("service: the secret of code device %s: %w", a.ID, err)
	}
	defer clear(secret)
	t := otp.TOTP{Secret: secret, Digits: c.Digits, Period: c.Period, Algorithm: c.Algorithm}
	m, err := t.Verify(code, s.clock(), otpSkew, c.HighestStep)
	switch {
	case errors.Is(err, otp.ErrMismatch):
		return domain.CauseWrongCode, proof{}, nil
	case errors.Is(err, otp.ErrReplayed):
		return domain.CauseReplayedCode, proof{}, nil
	case err != nil:
		return "", proof{}, fmt.Errorf("service: code device %s: %w", a.ID, err)
	}
	return "", proof{el: el, step: m.Step, drift: m.Drift}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
