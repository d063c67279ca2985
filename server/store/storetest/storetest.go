package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// Run runs the conformance suite, one subtest per behaviour. newStore must
// return a new, empty store whose audit Chainer is Chain; Run closes it at
// the end of the subtest (and some subtests close it earlier), so
// newStore must not close it itself.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"Identity/CreateGet", testIdentityCreateGet},
		{"Identity/Errors", testIdentityErrors},
		{"Identity/Update", testIdentityUpdate},
		{"Identity/ConcurrentUpdate", testIdentityConcurrentUpdate},
		{"Identity/CreateWithAuthenticators", testIdentityCreateWith},
		{"Authenticator/CreateGetList", testAuthCreateGetList},
		{"Authenticator/CreateErrors", testAuthCreateErrors},
		{"Authenticator/Find", testAuthFind},
		{"Authenticator/CredentialUniqueForever", testCredentialUniqueForever},
		{"Authenticator/SerialInUseAndRevoked", testSerialInUseAndRevoked},
		{"Authenticator/Update", testAuthUpdate},
		{"Authenticator/ConcurrentUpdate", testAuthConcurrentUpdate},
		{"Authenticator/SetVersion", testSetVersion},
		{"Authenticator/SetWithPasswords", testSetWithPasswords},
		{"Authenticator/ConcurrentCreateAt", testConcurrentCreateAt},
		{"Authenticator/QuotaUnderConcurrency", testQuotaUnderConcurrency},
		{"ApplyChange/Lifecycle", testApplyLifecycle},
		{"ApplyChange/BlockWipesAndTombstones", testApplyBlock},
		{"ApplyChange/Cancel", testApplyCancel},
		{"ApplyChange/Atomic", testApplyAtomic},
		{"OTPStep/Sequence", testOTPSequence},
		{"OTPStep/Concurrent", testOTPConcurrent},
		{"OTPStep/Errors", testOTPErrors},
		{"SignCount/Rule", testSignCountRule},
		{"SignCount/Concurrent", testSignCountConcurrent},
		{"Element/UpdateSecret", testUpdateSecret},
		{"Element/UpdateVerifier", testUpdateVerifier},
		{"Tombstones", testTombstones},
		{"Imports", testImports},
		{"Imports/ConcurrentTake", testImportsConcurrentTake},
		{"SealedKeys", testSealedKeys},
		{"Ceremonies", testCeremonies},
		{"Ceremonies/ConcurrentTake", testCeremoniesConcurrentTake},
		{"Sessions", testSessions},
		{"Sessions/Proofs", testSessionProofs},
		{"Sessions/EndWithAuthenticators", testSessionsEndWithAuthenticators},
		{"Sessions/EndWithIdentity", testSessionsEndWithIdentity},
		{"Attempts/Reserve", testAttemptsReserve},
		{"Attempts/Concurrent", testAttemptsConcurrent},
		{"Attempts/Import", testAttemptsImport},
		{"Logins/Commit", testCommitLogin},
		{"Logins/CommitPrior", testCommitLoginPrior},
		{"Logins/ActivateCodeDevice", testActivateCodeDevice},
		{"Logins/OTPConcurrent", testCommitLoginOTPConcurrent},
		{"Audit/AppendListHeads", testAuditAppendList},
		{"Audit/Concurrent", testAuditConcurrent},
		{"Audit/FailedAppend", testAuditFailedAppend},
		{"Audit/Checkpoints", testAuditCheckpoints},
		{"Audit/Seal", testAuditSeal},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			f := &fixture{t: t, ctx: t.Context(), s: s, now: T0}
			t.Cleanup(func() {
				if f.closed {
					return
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(f)
		})
	}
}

// T0 is the suite's clock: every record it makes is dated from it. It has
// nanoseconds, so stores must keep them.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// Concurrency is the number of goroutines of the concurrency checks.
const Concurrency = 100

type fixture struct {
	t      *testing.T
	ctx    context.Context
	s      store.Store
	p      domain.Policy
	now    time.Time
	closed bool
}

var sys = domain.System("storetest")

func (f *fixture) ok(err error, what string, args ...any) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// wantErr checks that err wraps want.
func (f *fixture) wantErr(err, want error, what string, args ...any) {
	f.t.Helper()
	if !errors.Is(err, want) {
		f.t.Errorf("%s: got error %v, want one wrapping %q", fmt.Sprintf(what, args...), err, want)
	}
}

// identity creates and returns an active identity.
func (f *fixture) identity(id string) domain.Identity {
	f.t.Helper()
	c, err := domain.NewIdentity(id, sys, f.now)
	f.ok(err, "NewIdentity")
	f.ok(f.s.CreateIdentity(f.ctx, c), "CreateIdentity %s", id)
	return c.Identity
}

// pending returns the Change that adds a pending authenticator, built
// directly (without domain.Policy.CheckAdd), so that the store's own
// uniqueness checks can be tested.
func (f *fixture) pending(identityID, id string, kind device.Kind, ref domain.Ref) domain.Change {
	a := domain.Authenticator{ID: id, IdentityID: identityID, Kind: kind, State: domain.StatePending, Ref: ref,
		Label: "label of " + id, CreatedAt: f.now, Version: 1}
	ev := domain.Event{Type: domain.EventAdded, IdentityID: identityID, AuthenticatorID: id, Actor: sys,
		Details: map[string]string{"kind": string(kind)}, At: f.now}
	return domain.Change{Authenticator: a, Events: []domain.Event{ev}}
}

// RefFor returns a reference that fits kind.
func RefFor(kind device.Kind, id string) domain.Ref {
	switch kind {
	case device.KindChip:
		return domain.Ref{CredentialID: "cred-" + id, Serial: "chip-serial-" + id}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return domain.Ref{Serial: "serial-" + id}
	case device.KindApp:
		return domain.Ref{CredentialID: "appkey-" + id}
	}
	return domain.Ref{}
}

// ElementFor returns a complete element of kind, with values derived from id.
func ElementFor(kind device.Kind, id string) store.Element {
	switch kind {
	case device.KindChip:
		return store.Element{Chip: &store.ChipElement{
			PublicKey:         []byte("COSE-KEY-" + id),
			AAGUID:            bytes.Repeat([]byte{0xA5}, 16),
			AttestationFormat: "packed",
			BackupEligible:    true,
		}}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return store.Element{Code: &store.CodeElement{
			Secret:    store.Sealed{KeyID: "k1", Blob: []byte("SEALED-OTP-" + id)},
			OTPParams: store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1},
		}}
	case device.KindApp:
		return store.Element{App: &store.AppElement{PublicKey: []byte("APP-KEY-" + id), PINVerifier: "$argon2id$pin-" + id}}
	case device.KindPassword:
		return store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$pw-" + id}}
	}
	return store.Element{}
}

// create adds a pending authenticator with a fitting reference and element.
func (f *fixture) create(identityID, id string, kind device.Kind) domain.Authenticator {
	f.t.Helper()
	c := f.pending(identityID, id, kind, RefFor(kind, id))
	f.ok(f.s.CreateAuthenticator(f.ctx, c, ElementFor(kind, id)), "CreateAuthenticator %s", id)
	return c.Authenticator
}

// apply stores the change c (err is the transition's error) and returns
// the new authenticator.
func (f *fixture) apply(c domain.Change, err error) domain.Authenticator {
	f.t.Helper()
	f.ok(err, "transition")
	f.ok(f.s.ApplyChange(f.ctx, c), "ApplyChange %s v%d", c.Authenticator.ID, c.Authenticator.Version)
	return c.Authenticator
}

// active creates an active authenticator.
func (f *fixture) active(id domain.Identity, aid string, kind device.Kind) domain.Authenticator {
	f.t.Helper()
	a := f.create(id.ID, aid, kind)
	return f.apply(f.p.Activate(id, a, sys, f.now))
}

// audit returns the whole audit log (chain by chain), checked with
// VerifyChain.
func (f *fixture) audit() []store.AuditRecord {
	f.t.Helper()
	var out []store.AuditRecord
	for r, err := range f.s.AuditRecords(f.ctx) {
		f.ok(err, "AuditRecords")
		out = append(out, r)
	}
	if err := VerifyChain(out); err != nil {
		f.t.Fatalf("audit chain: %v", err)
	}
	return out
}

// auditLen returns the number of audit records, of all chains.
func (f *fixture) auditLen() uint64 {
	f.t.Helper()
	n := uint64(0)
	for _, err := range f.s.AuditRecords(f.ctx) {
		f.ok(err, "AuditRecords")
		n++
	}
	return n
}

// sameAuth reports differences between two authenticators, comparing
// times with Equal.
func (f *fixture) sameAuth(got, want domain.Authenticator, what string) {
	f.t.Helper()
	if !reflect.DeepEqual(normAuth(got), normAuth(want)) {
		f.t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func normAuth(a domain.Authenticator) domain.Authenticator {
	for _, t := range []*time.Time{&a.CreatedAt, &a.ActivatedAt, &a.LastUsedAt, &a.SuspendedAt, &a.BlockedAt} {
		*t = t.UTC()
	}
	return a
}

func normIdentity(v domain.Identity) domain.Identity {
	v.BlockedAt = v.BlockedAt.UTC()
	v.CreatedAt = v.CreatedAt.UTC()
	return v
}

// race runs fn(i) in n goroutines released at once and returns their
// results.
func race[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// countWins counts nil errors and checks that every other error wraps loser.
func (f *fixture) countWins(errs []error, loser error, what string) int {
	f.t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			f.t.Errorf("%s: goroutine %d: %v, want nil or %q", what, i, err, loser)
		}
	}
	return wins
}
