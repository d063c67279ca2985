package storetest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// OTPLoginRace has n logins present the OTP step step of code device kvID
// at once, login i through stores[i%len(stores)] (replicas of one
// database): each reads the device's record, records its success and
// commits it with the step (CommitLogin), and on store.ErrConflict (the
// record moved meanwhile) reads it again and retries, as a server does.
// It returns how many were accepted and how many refused (CommitLogin's
// false: the step was used); any other outcome is an error of the result.
// Exactly one acceptance is RFC 6238 §5.2; the retries reach the record's
// new version, so the refusals are the guard's, not the version check's.
func OTPLoginRace(ctx context.Context, stores []store.Store, kvID string, step uint64, n int, now time.Time) (accepted, refused int, err error) {
	res := race(n, func(i int) error {
		s := stores[i%len(stores)]
		p := domain.DefaultPolicy()
		for range 1000 {
			kv, err := s.Authenticator(ctx, kvID)
			if err != nil {
				return err
			}
			c, err := p.RecordSuccess(kv, now)
			if err != nil {
				return err
			}
			ok, err := s.CommitLogin(ctx, store.Login{Change: c, OTP: &store.OTPGuard{Step: step, Drift: i%3 - 1}})
			switch {
			case errors.Is(err, store.ErrConflict):
				continue
			case err != nil:
				return err
			case !ok:
				return domain.ErrCodeReplayed
			}
			return nil
		}
		return fmt.Errorf("login %d: still in conflict after 1000 tries", i)
	})
	var errs []error
	for i, err := range res {
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, domain.ErrCodeReplayed):
			refused++
		default:
			errs = append(errs, fmt.Errorf("login %d: %w", i, err))
		}
	}
	return accepted, refused, errors.Join(errs...)
}

// testCommitLoginOTPConcurrent: Concurrency logins present one OTP step
// at once, retrying on conflicts; exactly one is accepted and the others
// are refused as replays, for one step after another; the watermark ends
// at the last step.
func testCommitLoginOTPConcurrent(f *fixture) {
	id := f.identity("id-1")
	f.active(id, "kv-1", device.KindCodeDisplay)
	for _, step := range []uint64{58_000_000, 58_000_001, 58_000_003} {
		acc, ref, err := OTPLoginRace(f.ctx, []store.Store{f.s}, "kv-1", step, Concurrency, f.now)
		f.ok(err, "step %d", step)
		if acc != 1 || acc+ref != Concurrency {
			f.t.Errorf("step %d: %d of %d logins accepted, %d refused; want exactly 1 accepted, the rest refused", step, acc, Concurrency, ref)
		}
		el, err := f.s.Element(f.ctx, "kv-1")
		f.ok(err, "Element")
		if el.Code == nil || el.Code.HighestStep != step {
			f.t.Errorf("after step %d: element %+v, want the watermark at the step", step, el.Code)
		}
	}
}
