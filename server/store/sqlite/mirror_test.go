package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
	"github.com/authbench/authbench/server/store/storetest"
)

// The tests of the mirror (sqlcore.Mirror, changes.go): whatever the
// writes, loads and forgets, and in whatever order they race, the writing
// Store answers exactly what the database holds, as a read-only Store on
// the same file (which has no mirror) reads it; and no read that begins
// after a write returned answers the state before it, so a blocked or
// suspended authenticator is refused at once and no more guesses than the
// limit are ever reserved.

// mirrorT0 is the clock of these tests.
var mirrorT0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

var (
	mirrorSys     = domain.System("mirror-test")
	mirrorSupport = domain.Support("op-1")
)

// mirrorKinds are the kinds of authenticators the tests make.
var mirrorKinds = []device.Kind{device.KindChip, device.KindCodeDisplay, device.KindApp, device.KindPassword}

// openMirrored opens a writing Store on a new database file and a
// read-only Store on the same file.
func openMirrored(t *testing.T) (w, ro *Store, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "mirror.db")
	w = openWriter(t, path)
	ro, err := Open(context.Background(), path, Options{Chain: storetest.Chain{}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	if w.mirror == nil {
		t.Fatal("the writing store holds no mirror")
	}
	return w, ro, path
}

func openWriter(t *testing.T, path string) *Store {
	t.Helper()
	w, err := Open(context.Background(), path, Options{Chain: storetest.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// pendingChange is the change that adds a pending authenticator aid of
// kind to identity id, created at created.
func pendingChange(id, aid string, kind device.Kind, created time.Time) domain.Change {
	a := domain.Authenticator{ID: aid, IdentityID: id, Kind: kind, State: domain.StatePending, Ref: storetest.RefFor(kind, aid),
		Label: "label of " + aid, CreatedAt: created, Version: 1}
	ev := domain.Event{Type: domain.EventAdded, IdentityID: id, AuthenticatorID: aid, Actor: mirrorSys,
		Details: map[string]string{"kind": string(kind)}, At: created}
	return domain.Change{Authenticator: a, Events: []domain.Event{ev}}
}

// makeIdentity creates identity id with an active authenticator of each
// kind in kinds (IDs id-<kind>) and returns the identity.
func makeIdentity(t *testing.T, s *Store, id string, kinds ...device.Kind) domain.Identity {
	t.Helper()
	ctx := context.Background()
	p := domain.DefaultPolicy()
	ic, err := domain.NewIdentity(id, mirrorSys, mirrorT0)
	if err != nil {
		t.Fatal(err)
	}
	var first []store.NewAuthenticator
	for i, k := range kinds {
		aid := fmt.Sprintf("%s-%s", id, k)
		add := pendingChange(id, aid, k, mirrorT0.Add(time.Duration(i)*time.Second))
		act, err := p.Activate(ic.Identity, add.Authenticator, mirrorSys, mirrorT0)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, store.NewAuthenticator{
			Change:  domain.Change{Authenticator: act.Authenticator, Events: append(add.Events, act.Events...)},
			Element: storetest.ElementFor(k, aid),
		})
	}
	if err := s.CreateIdentity(ctx, ic, first...); err != nil {
		t.Fatal(err)
	}
	return ic.Identity
}

// render is what a read answered, as text to compare: the value, or the
// class of its error.
func render(v any, err error) string {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "not found"
	case err != nil:
		return "error: " + err.Error()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "cannot render: " + err.Error()
	}
	return string(b)
}

// readAll returns what s answers about identities ids and authenticators
// auths, by every read the mirror answers, keyed by the read.
func readAll(ctx context.Context, s *Store, ids, auths []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		set, err := s.AuthenticatorSet(ctx, id)
		out["AuthenticatorSet("+id+")"] = render(set, err)
		set, els, err := s.AuthenticatorSetWithPasswords(ctx, id)
		out["AuthenticatorSetWithPasswords("+id+")"] = render([]any{set, els}, err)
		v, err := s.Identity(ctx, id)
		out["Identity("+id+")"] = render(v, err)
		list, err := s.ListAuthenticators(ctx, id)
		out["ListAuthenticators("+id+")"] = render(list, err)
	}
	for _, aid := range auths {
		a, err := s.Authenticator(ctx, aid)
		out["Authenticator("+aid+")"] = render(a, err)
		v, a, err := s.AuthenticatorWithIdentity(ctx, aid)
		out["AuthenticatorWithIdentity("+aid+")"] = render([]any{v, a}, err)
		el, err := s.Element(ctx, aid)
		out["Element("+aid+")"] = render(el, err)
		for _, k := range mirrorKinds {
			v, a, el, err := s.AuthenticatorWithElement(ctx, aid, k)
			out["AuthenticatorWithElement("+aid+", "+string(k)+")"] = render([]any{v, a, el}, err)
			el2, err := s.ElementOfKind(ctx, aid, k)
			out["ElementOfKind("+aid+", "+string(k)+")"] = render(el2, err)
		}
	}
	return out
}

// sameAsDatabase fails t when the writing store w answers anything about
// ids and auths other than what the read-only store ro reads from the
// file. It reads w first, so that what w's mirror holds answers (a read it
// misses loads what the database has now).
func sameAsDatabase(t *testing.T, w, ro *Store, ids, auths []string, when string) {
	t.Helper()
	ctx := context.Background()
	got := readAll(ctx, w, ids, auths)
	want := readAll(ctx, ro, ids, auths)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			if bad++; bad <= 8 {
				t.Errorf("%s: %s\n store    %s\n database %s", when, k, got[k], want[k])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d reads of the store differ from the database", when, bad)
	}
}

// mirrorWorld runs random valid changes against identities of one store,
// as concurrent clients would.
type mirrorWorld struct {
	w    *Store
	ro   *Store // the database, read without a mirror
	p    domain.Policy
	ids  []string
	seq  atomic.Int64
	mu   sync.Mutex
	seen []string // every authenticator ID ever created
	// done counts the changes that were stored, activations the code
	// devices activated with their imported secret.
	done, activations atomic.Int64
}

func (wd *mirrorWorld) next() int64 { return wd.seq.Add(1) }

func (wd *mirrorWorld) auths() []string {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	return slices.Clone(wd.seen)
}

func (wd *mirrorWorld) saw(aid string) {
	wd.mu.Lock()
	wd.seen = append(wd.seen, aid)
	wd.mu.Unlock()
}

// expected reports whether err is what a change computed from a read can
// meet when others change the same records meanwhile.
func expected(err error) bool {
	var te *domain.TransitionError
	return err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExhausted) ||
		errors.Is(err, store.ErrNotFound) || errors.As(err, &te)
}

// step applies one random change to one random identity; it returns an
// error only when the store answered what no race explains.
func (wd *mirrorWorld) step(ctx context.Context, r *rand.Rand) error {
	s, p, now := wd.w, wd.p, mirrorT0
	id := wd.ids[r.IntN(len(wd.ids))]
	set, err := s.AuthenticatorSet(ctx, id)
	if err != nil {
		return fmt.Errorf("AuthenticatorSet(%s): %w", id, err)
	}
	live := 0
	for _, a := range set.Authenticators {
		if a.State != domain.StateBlocked {
			live++
		}
	}
	x := r.IntN(100)
	switch {
	case x < 12 && live < 6 || len(set.Authenticators) == 0:
		k := mirrorKinds[r.IntN(len(mirrorKinds))]
		aid := fmt.Sprintf("%s-a%d", id, wd.next())
		// Some share a creation time, to check the order by ID too.
		c := pendingChange(id, aid, k, now.Add(time.Duration(r.IntN(3))*time.Millisecond))
		if r.IntN(5) == 0 {
			c.Authenticator.CreatedAt = time.Time{} // none: first in the set's order
		}
		el := storetest.ElementFor(k, aid)
		if k == device.KindCodeDisplay && r.IntN(2) == 0 {
			// A code device whose secret waits in an import: it gets its
			// element when activated (ActivateCodeDevice).
			im := store.Import{Serial: c.Authenticator.Serial, Secret: el.Code.Secret, OTPParams: el.Code.OTPParams, ImportedAt: now}
			if err := s.PutImport(ctx, im); err != nil {
				return err
			}
			el = store.Element{}
		}
		wd.saw(aid)
		if err := s.CreateAuthenticatorAt(ctx, c, el, set.Version); err != nil {
			return wd.result(err)
		}
		if err := wd.acknowledged(ctx, c); err != nil {
			return err
		}
		got, err := s.AuthenticatorSet(ctx, id)
		if err != nil || got.Version <= set.Version {
			return fmt.Errorf("after an add to set version %d returned, AuthenticatorSet(%s) answers version %d (%v)", set.Version, id, got.Version, err)
		}
		return nil
	case x < 16:
		var ic domain.IdentityChange
		if set.Identity.State == domain.IdentityActive {
			ic, err = p.BlockIdentity(set.Identity, mirrorSupport, domain.ReasonMisuse, now)
		} else {
			ic, err = p.UnblockIdentity(set.Identity, mirrorSupport, "checked", now)
		}
		if err != nil {
			return wd.result(err)
		}
		if err := s.UpdateIdentity(ctx, ic); err != nil {
			return wd.result(err)
		}
		got, err := s.Identity(ctx, id)
		if err != nil || got.Version < ic.Identity.Version {
			return fmt.Errorf("after identity %s version %d was stored, Identity answers version %d (%v)", id, ic.Identity.Version, got.Version, err)
		}
		return wd.result(nil)
	}
	a := set.Authenticators[r.IntN(len(set.Authenticators))]
	y := r.IntN(100)
	var c domain.Change
	switch a.State {
	case domain.StatePending:
		if a.Kind == device.KindCodeDisplay && y < 70 {
			im, err := s.Import(ctx, a.Serial)
			if err == nil {
				return wd.activateCode(ctx, set.Identity, a, im)
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if y < 70 {
			c, err = p.Activate(set.Identity, a, mirrorSupport, now)
		} else {
			c, err = p.Cancel(a, mirrorSupport, now)
		}
	case domain.StateSuspended:
		if y < 80 {
			c, err = p.Reactivate(set.Identity, a, mirrorSupport, set.Authenticators, now)
		} else {
			c, err = p.Block(a, mirrorSupport, domain.ReasonLost, now)
		}
	case domain.StateActive:
		switch {
		case y < 8:
			c, err = p.Suspend(a, mirrorSupport, domain.ReasonMisuse, now)
		case y < 12:
			c, err = p.Block(a, mirrorSupport, domain.ReasonLost, now)
		case y < 50:
			return wd.guess(ctx, a, false)
		case y < 85:
			return wd.guess(ctx, a, true)
		default:
			return wd.element(ctx, a)
		}
	default:
		return nil // blocked: nothing moves it
	}
	if err != nil {
		return wd.result(err)
	}
	if err := s.ApplyChange(ctx, c); err != nil {
		return wd.result(err)
	}
	return wd.acknowledged(ctx, c)
}

// acknowledged checks that a read begun after the change c was stored
// answers c or a later version: never the state before it.
func (wd *mirrorWorld) acknowledged(ctx context.Context, c domain.Change) error {
	wd.done.Add(1)
	a := &c.Authenticator
	got, err := wd.w.Authenticator(ctx, a.ID)
	_, got2, _, err2 := wd.w.AuthenticatorWithElement(ctx, a.ID, a.Kind)
	if c.Remove {
		if !errors.Is(err, store.ErrNotFound) || !errors.Is(err2, store.ErrNotFound) {
			return fmt.Errorf("after %s was removed, reads answer %+v (%v), %+v (%v)", a.ID, got, err, got2, err2)
		}
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err2, store.ErrNotFound) {
		// Another client cancelled it meanwhile (IDs are never reused):
		// the database must say so too.
		if _, dbErr := wd.ro.Authenticator(ctx, a.ID); !errors.Is(dbErr, store.ErrNotFound) {
			return fmt.Errorf("after %s version %d was stored, the store answers not found (%v, %v), the database %v", a.ID, a.Version, err, err2, dbErr)
		}
		return nil
	}
	if err != nil || err2 != nil || got.Version < a.Version || got2.Version < a.Version {
		return fmt.Errorf("after %s version %d (%s) was stored, reads answer version %d %s (%v), version %d %s (%v)",
			a.ID, a.Version, a.State, got.Version, got.State, err, got2.Version, got2.State, err2)
	}
	if c.WipeSecret {
		el, err := wd.w.Element(ctx, a.ID)
		if err != nil || el.WipedAt.IsZero() {
			return fmt.Errorf("after %s was blocked, its element reads %s (%v), not wiped", a.ID, render(el, nil), err)
		}
	}
	return nil
}

func (wd *mirrorWorld) result(err error) error {
	if err == nil {
		wd.done.Add(1)
	}
	if expected(err) {
		return nil
	}
	return err
}

// activateCode activates pending code device a with its secret from
// import im, as the first right code does.
func (wd *mirrorWorld) activateCode(ctx context.Context, id domain.Identity, a domain.Authenticator, im store.Import) error {
	s, now := wd.w, mirrorT0
	c, err := wd.p.Activate(id, a, mirrorSupport, now)
	if err != nil {
		return wd.result(err)
	}
	at := store.Attempt{ID: fmt.Sprint("activation-", wd.next()), Serial: im.Serial, ExpiresAt: now.Add(time.Hour)}
	if err := s.ReserveAttempt(ctx, at, 9, now); err != nil {
		return wd.result(err)
	}
	el := store.Element{Code: &store.CodeElement{Secret: im.Secret, OTPParams: im.OTPParams, HighestStep: 7}}
	if err := s.ActivateCodeDevice(ctx, store.CodeActivation{Attempt: at.ID, Change: c, Element: el, Import: im}); err != nil {
		return errors.Join(wd.result(err), s.EndAttempt(ctx, at.ID, nil))
	}
	wd.activations.Add(1)
	if err := wd.acknowledged(ctx, c); err != nil {
		return err
	}
	return wd.guardMoved(ctx, c.Authenticator, 7)
}

// guess reserves an attempt against a and ends it with a failure, or
// with a login that moves the replay guard of a chip or code device.
func (wd *mirrorWorld) guess(ctx context.Context, a domain.Authenticator, right bool) error {
	s, p, now := wd.w, wd.p, mirrorT0
	at := store.Attempt{ID: fmt.Sprint("attempt-", wd.next()), AuthenticatorID: a.ID, ExpiresAt: now.Add(time.Hour)}
	if err := s.ReserveAttempt(ctx, at, p.Failures(), now); err != nil {
		return wd.result(err)
	}
	if !right {
		cause := map[device.Kind]domain.Cause{device.KindChip: domain.CauseBadSignature, device.KindCodeDisplay: domain.CauseWrongCode,
			device.KindApp: domain.CauseWrongPIN, device.KindPassword: domain.CauseWrongPassword}[a.Kind]
		c, err := p.RecordFailure(a, domain.Failure{Cause: cause}, now)
		if err != nil {
			return errors.Join(wd.result(err), s.EndAttempt(ctx, at.ID, nil))
		}
		if err := s.EndAttempt(ctx, at.ID, &c); err != nil {
			return errors.Join(wd.result(err), s.EndAttempt(ctx, at.ID, nil))
		}
		return wd.acknowledged(ctx, c)
	}
	c, err := p.RecordSuccess(a, now)
	if err != nil {
		return errors.Join(wd.result(err), s.EndAttempt(ctx, at.ID, nil))
	}
	l := store.Login{Attempt: at.ID, Change: c}
	n := wd.next()
	switch a.Kind {
	case device.KindChip:
		l.Chip = &store.ChipGuard{Count: uint32(n), Spent: store.Ceremony{Key: fmt.Sprint("challenge-", n), ExpiresAt: now.Add(time.Hour)}}
	case device.KindCodeDisplay:
		l.OTP = &store.OTPGuard{Step: uint64(n), Drift: int(n % 3)}
	}
	ok, err := s.CommitLogin(ctx, l)
	if err != nil || !ok {
		// Nothing was written, and the attempt is still reserved.
		return errors.Join(wd.result(err), s.EndAttempt(ctx, at.ID, nil))
	}
	if err := wd.acknowledged(ctx, c); err != nil || l.Chip == nil && l.OTP == nil {
		return err
	}
	return wd.guardMoved(ctx, a, n)
}

// element changes a's element the way logins and key rotations do, and
// checks that a read begun after the change returned sees it.
func (wd *mirrorWorld) element(ctx context.Context, a domain.Authenticator) error {
	s := wd.w
	n := wd.next()
	switch a.Kind {
	case device.KindChip:
		ok, err := s.AdvanceSignCount(ctx, a.CredentialID, uint32(n))
		if err != nil || !ok {
			return wd.result(err)
		}
		wd.done.Add(1)
		return wd.guardMoved(ctx, a, n)
	case device.KindCodeDisplay:
		ok, err := s.AdvanceOTPStep(ctx, a.ID, uint64(n), -1)
		if err != nil || !ok {
			return wd.result(err)
		}
		wd.done.Add(1)
		return wd.guardMoved(ctx, a, n)
	}
	el, err := s.ElementOfKind(ctx, a.ID, a.Kind)
	if err != nil {
		return wd.result(err)
	}
	var from string
	switch {
	case el.Password != nil && el.Password.Verifier != "":
		from = el.Password.Verifier
	case el.App != nil && el.App.PINVerifier != "":
		from = el.App.PINVerifier
	default:
		return nil
	}
	if err := s.UpdateVerifier(ctx, a.ID, from, fmt.Sprint("$argon2id$new-", n)); err != nil {
		return wd.result(err)
	}
	wd.done.Add(1)
	// Verifiers are never used twice: after the change returned, none
	// reads the old one.
	el, err = s.ElementOfKind(ctx, a.ID, a.Kind)
	_, _, el2, err2 := s.AuthenticatorWithElement(ctx, a.ID, a.Kind)
	if err != nil || err2 != nil || el2 == nil {
		return fmt.Errorf("after the verifier of %s was replaced: %v, %v", a.ID, err, err2)
	}
	for _, e := range []store.Element{el, *el2} {
		if e.Password != nil && e.Password.Verifier == from || e.App != nil && e.App.PINVerifier == from {
			return fmt.Errorf("after the verifier of %s was replaced, a read answers the old one %q", a.ID, from)
		}
	}
	return nil
}

// guardMoved checks that a read begun after the replay guard of a moved
// to n sees n or more.
func (wd *mirrorWorld) guardMoved(ctx context.Context, a domain.Authenticator, n int64) error {
	el, err := wd.w.ElementOfKind(ctx, a.ID, a.Kind)
	_, _, el2, err2 := wd.w.AuthenticatorWithElement(ctx, a.ID, a.Kind)
	if err != nil || err2 != nil || el2 == nil {
		return fmt.Errorf("after the guard of %s moved to %d: %v, %v", a.ID, n, err, err2)
	}
	for _, e := range []store.Element{el, *el2} {
		switch {
		case e.Chip != nil && int64(e.Chip.SignCount) < n, e.Code != nil && int64(e.Code.HighestStep) < n:
			return fmt.Errorf("after the guard of %s moved to %d, a read answers %s", a.ID, n, render(e, nil))
		}
	}
	return nil
}

// reader reads through s at random until stop is closed, and makes s
// forget all it holds in memory now and then, so that reads miss and load
// while others commit.
func reader(ctx context.Context, s *Store, wd *mirrorWorld, seed uint64, stop <-chan struct{}) error {
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		if r.IntN(6) == 0 {
			forgetMirror(s)
		}
		var err error
		if auths := wd.auths(); r.IntN(2) == 0 && len(auths) > 0 {
			aid := auths[r.IntN(len(auths))]
			switch r.IntN(4) {
			case 0:
				_, err = s.Authenticator(ctx, aid)
			case 1:
				_, _, err = s.AuthenticatorWithIdentity(ctx, aid)
			case 2:
				_, _, _, err = s.AuthenticatorWithElement(ctx, aid, mirrorKinds[r.IntN(len(mirrorKinds))])
			default:
				_, err = s.Element(ctx, aid)
			}
		} else {
			id := wd.ids[r.IntN(len(wd.ids))]
			switch r.IntN(3) {
			case 0:
				_, err = s.AuthenticatorSet(ctx, id)
			case 1:
				_, err = s.Identity(ctx, id)
			default:
				_, err = s.ListAuthenticators(ctx, id)
			}
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
}

// TestMirrorDifferential: clients apply random valid changes (adds,
// activations, suspensions, reactivations, blocks, cancellations, failed
// and successful logins with their replay guards, element updates,
// identity blocks) to a few identities while readers read through the
// same store and make it forget what it holds at random moments, so that
// loads race commits. At the end of every round, each identity's and
// authenticator's every read from the store equals what a read-only store
// reads from the file.
func TestMirrorDifferential(t *testing.T) {
	w, ro, _ := openMirrored(t)
	ctx := context.Background()
	wd := &mirrorWorld{w: w, ro: ro, p: domain.DefaultPolicy()}
	for i := range 6 {
		id := fmt.Sprint("id-", i)
		wd.ids = append(wd.ids, id)
		kinds := mirrorKinds[:i%len(mirrorKinds)+1]
		makeIdentity(t, w, id, kinds...)
		for _, k := range kinds {
			wd.saw(fmt.Sprintf("%s-%s", id, k))
		}
	}
	wd.saw("nobody") // never created
	const (
		rounds  = 4
		writers = 4
		readers = 3
		steps   = 30
		// extra rounds run while no code device has been activated yet:
		// the random workload reaches that path through a code device
		// added with an import, and races can keep it from it.
		extra = 8
	)
	for round := 0; round < rounds || wd.activations.Load() == 0 && round < rounds+extra; round++ {
		stop := make(chan struct{})
		errs := make(chan error, writers+readers)
		var wg, rg sync.WaitGroup
		for g := range readers {
			rg.Go(func() { errs <- reader(ctx, w, wd, uint64(round*100+g), stop) })
		}
		for g := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for range steps {
					if err := wd.step(ctx, r); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			})
		}
		wg.Wait()
		close(stop)
		rg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		sameAsDatabase(t, w, ro, append(wd.ids, "id-none"), wd.auths(), fmt.Sprintf("after round %d", round))
	}
	if n := wd.done.Load(); n < rounds*writers*steps/4 || wd.activations.Load() == 0 {
		t.Errorf("only %d changes of %d were stored, %d code devices activated: the workload hardly changed anything",
			n, rounds*writers*steps, wd.activations.Load())
	}
	t.Logf("%d changes stored; the mirror loaded %d times", wd.done.Load(), w.mirror.Loads())
}

// current returns authenticator aid as the database has it.
func current(t *testing.T, ro *Store, aid string) domain.Authenticator {
	t.Helper()
	a, err := ro.Authenticator(context.Background(), aid)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// applyTo returns a function that stores the change of a transition
// through s and returns the new authenticator, failing t on any error.
func applyTo(t *testing.T, s *Store) func(c domain.Change, err error) domain.Authenticator {
	return func(c domain.Change, err error) domain.Authenticator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyChange(context.Background(), c); err != nil {
			t.Fatalf("ApplyChange %s v%d: %v", c.Authenticator.ID, c.Authenticator.Version, err)
		}
		return c.Authenticator
	}
}

// churn reads through each of stores at random, making them forget what
// they hold now and then, until the returned function is called (once
// or more).
func churn(t *testing.T, ids, auths []string, stores ...*Store) (stop func()) {
	t.Helper()
	wd := &mirrorWorld{ids: ids, seen: auths}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(stores))
	for i, s := range stores {
		for g := range 2 {
			wg.Go(func() { errs <- reader(context.Background(), s, wd, uint64(10*i+g), done) })
		}
	}
	var once sync.Once
	return func() {
		t.Helper()
		once.Do(func() {
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// refused checks that a login with authenticator aid, begun after a
// write returned that took it out of service, is refused at every step:
// the records read with its element say so and no attempt is reserved.
func refused(t *testing.T, s *Store, aid string, kind device.Kind, want domain.Authenticator, what string) {
	t.Helper()
	ctx := context.Background()
	v, a, el, err := s.AuthenticatorWithElement(ctx, aid, kind)
	if err != nil {
		t.Fatalf("%s: AuthenticatorWithElement: %v", what, err)
	}
	if a.State != want.State || a.Version != want.Version {
		t.Fatalf("%s: AuthenticatorWithElement answers %s version %d, want %s version %d", what, a.State, a.Version, want.State, want.Version)
	}
	if err := domain.DefaultPolicy().CanLogin(v, a, mirrorT0); err == nil {
		t.Fatalf("%s: the login check lets %s (%s) in", what, aid, a.State)
	}
	if want.State == domain.StateBlocked && (el == nil || el.WipedAt.IsZero() || el.Chip != nil && el.Chip.PublicKey != nil) {
		t.Fatalf("%s: the element of blocked %s reads %s, not wiped", what, aid, render(el, nil))
	}
	at := store.Attempt{ID: "refused-" + aid + what, AuthenticatorID: aid, ExpiresAt: mirrorT0.Add(time.Hour)}
	if err := s.ReserveAttempt(ctx, at, domain.DefaultPolicy().Failures(), mirrorT0); !errors.Is(err, store.ErrExhausted) {
		s.EndAttempt(ctx, at.ID, nil)
		t.Fatalf("%s: ReserveAttempt against %s: %v, want ErrExhausted", what, aid, err)
	}
}

// admitted checks the opposite of refused: an authenticator back in
// service reads active and takes an attempt.
func admitted(t *testing.T, s *Store, aid string, kind device.Kind, want domain.Authenticator, what string) {
	t.Helper()
	ctx := context.Background()
	v, a, el, err := s.AuthenticatorWithElement(ctx, aid, kind)
	if err != nil || el == nil {
		t.Fatalf("%s: AuthenticatorWithElement: %v, element %v", what, err, el)
	}
	if a.State != domain.StateActive || a.Version != want.Version {
		t.Fatalf("%s: AuthenticatorWithElement answers %s version %d, want active version %d", what, a.State, a.Version, want.Version)
	}
	if err := domain.DefaultPolicy().CanLogin(v, a, mirrorT0); err != nil {
		t.Fatalf("%s: the login check refuses %s: %v", what, aid, err)
	}
	at := store.Attempt{ID: "admitted-" + aid + what, AuthenticatorID: aid, ExpiresAt: mirrorT0.Add(time.Hour)}
	if err := s.ReserveAttempt(ctx, at, domain.DefaultPolicy().Failures(), mirrorT0); err != nil {
		t.Fatalf("%s: ReserveAttempt against %s: %v", what, aid, err)
	}
	if err := s.EndAttempt(ctx, at.ID, nil); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorAcknowledgedRefusal: right after ApplyChange returns a
// suspension, a block of the authenticator or of its identity, the next
// login's reads (AuthenticatorWithElement) and its attempt reservation
// see it, in a tight loop, while readers read the same records and make
// the store forget them, so that loads race every one of the writes.
func TestMirrorAcknowledgedRefusal(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		w, ro, _ := openMirrored(t)
		acknowledgedRefusal(t, w, ro)
	})
	// An in-memory database has no read connections: its loads read on
	// the write connection, between the batches.
	t.Run("memory", func(t *testing.T) {
		w, err := Open(context.Background(), ":memory:", Options{Chain: storetest.Chain{}})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		acknowledgedRefusal(t, w, w)
	})
}

// acknowledgedRefusal is TestMirrorAcknowledgedRefusal on w; ro reads
// the database without the mirror (w itself when there is no file to
// open twice).
func acknowledgedRefusal(t *testing.T, w, ro *Store) {
	ctx := context.Background()
	p := domain.DefaultPolicy()
	id := makeIdentity(t, w, "id-1", device.KindChip, device.KindPassword)
	const chip = "id-1-chip"
	stop := churn(t, []string{"id-1"}, []string{chip, "id-1-password"}, w)
	defer stop()
	a := current(t, ro, chip)
	for i := range 60 {
		what := fmt.Sprint("round ", i)
		a = applyTo(t, w)(p.Suspend(a, mirrorSupport, domain.ReasonMisuse, mirrorT0))
		refused(t, w, chip, device.KindChip, a, what+", suspended")
		a = applyTo(t, w)(p.Reactivate(id, a, mirrorSupport, nil, mirrorT0))
		admitted(t, w, chip, device.KindChip, a, what+", reactivated")

		ic, err := p.BlockIdentity(id, mirrorSupport, domain.ReasonMisuse, mirrorT0)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.UpdateIdentity(ctx, ic); err != nil {
			t.Fatal(err)
		}
		id = ic.Identity
		if v, _, _, err := w.AuthenticatorWithElement(ctx, chip, device.KindChip); err != nil || v.State != domain.IdentityBlocked || p.CanLogin(v, a, mirrorT0) == nil {
			t.Fatalf("%s: after the identity was blocked, AuthenticatorWithElement answers identity %s version %d (%v)", what, v.State, v.Version, err)
		}
		if ic, err = p.UnblockIdentity(id, mirrorSupport, "checked", mirrorT0); err != nil {
			t.Fatal(err)
		}
		if err := w.UpdateIdentity(ctx, ic); err != nil {
			t.Fatal(err)
		}
		id = ic.Identity
		admitted(t, w, chip, device.KindChip, a, what+", identity unblocked")

		if i%10 == 0 {
			// A chip of its own, blocked for good: its key is gone at once.
			cid := fmt.Sprint("chip-b", i)
			add := pendingChange("id-1", cid, device.KindChip, mirrorT0)
			if err := w.CreateAuthenticator(ctx, add, storetest.ElementFor(device.KindChip, cid)); err != nil {
				t.Fatal(err)
			}
			b := applyTo(t, w)(p.Activate(id, add.Authenticator, mirrorSupport, mirrorT0))
			admitted(t, w, cid, device.KindChip, b, what+", new chip")
			b = applyTo(t, w)(p.Block(b, mirrorSupport, domain.ReasonLost, mirrorT0))
			refused(t, w, cid, device.KindChip, b, what+", new chip blocked")
		}
	}
	stop()
	if ro != w {
		sameAsDatabase(t, w, ro, []string{"id-1"}, []string{chip, "id-1-password", "chip-b0", "chip-b50"}, "at the end")
	}
}

// TestMirrorGuessLimit is the attacker who sends many wrong guesses at
// once, while the store forgets what it holds and reloads it: of the
// guesses reserved before the authenticator is suspended, no more than the
// limit are ever let through to be checked, in every round.
func TestMirrorGuessLimit(t *testing.T) {
	w, ro, _ := openMirrored(t)
	ctx := context.Background()
	p := domain.DefaultPolicy()
	id := makeIdentity(t, w, "id-1", device.KindPassword, device.KindChip)
	const pw = "id-1-password"
	stop := churn(t, []string{"id-1"}, []string{pw}, w)
	defer stop()
	var seq atomic.Int64
	for round := range 8 {
		var granted atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				for {
					at := store.Attempt{ID: fmt.Sprint("guess-", seq.Add(1)), AuthenticatorID: pw, ExpiresAt: mirrorT0.Add(time.Hour)}
					err := w.ReserveAttempt(ctx, at, p.Failures(), mirrorT0)
					if errors.Is(err, store.ErrExhausted) {
						if a, err := ro.Authenticator(ctx, pw); err != nil || a.State != domain.StateActive {
							errs <- err
							return // suspended: the guesses are over
						}
						continue // the others' guesses are in flight
					}
					if err != nil {
						errs <- err
						return
					}
					granted.Add(1)
					// The guess is wrong: record it, as the service does,
					// on the authenticator as the store reads it now.
					for try := 0; ; try++ {
						a, err := w.Authenticator(ctx, pw)
						if err != nil {
							errs <- err
							return
						}
						// Anonymous: the suspension does not count toward
						// a block, so every round ends suspended.
						c, err := p.RecordFailure(a, domain.Failure{Cause: domain.CauseWrongPassword, Anonymous: true}, mirrorT0)
						if err != nil {
							errs <- fmt.Errorf("a guess was let through beyond the limit: reserved against %s %s with %d failures: %w", a.State, pw, a.Failures, err)
							w.EndAttempt(ctx, at.ID, nil)
							return
						}
						err = w.EndAttempt(ctx, at.ID, &c)
						if err == nil {
							break
						}
						if !errors.Is(err, store.ErrConflict) || try > 1000 {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		a := current(t, ro, pw)
		if n := granted.Load(); n > int64(p.Failures()) || a.State != domain.StateSuspended {
			t.Fatalf("round %d: %d guesses were let through, the limit is %d; %s is %s with %d failures", round, n, p.Failures(), pw, a.State, a.Failures)
		}
		refused(t, w, pw, device.KindPassword, a, fmt.Sprint("round ", round))
		applyTo(t, w)(p.Reactivate(id, a, mirrorSupport, nil, mirrorT0))
	}
	stop()
	sameAsDatabase(t, w, ro, []string{"id-1"}, []string{pw}, "at the end")
}

// TestMirrorTwoStores: two writing Stores of one file in one process
// share one mirror, so a write through either is read at once through the
// other; a third Open of the same file under another name is refused
// rather than given a mirror of its own that the others' writes would
// not reach.
func TestMirrorTwoStores(t *testing.T) {
	w1, ro, path := openMirrored(t)
	w2 := openWriter(t, path)
	if w1.mirror != w2.mirror {
		t.Fatal("two stores of one file hold two mirrors")
	}
	p := domain.DefaultPolicy()
	id := makeIdentity(t, w1, "id-1", device.KindChip, device.KindCodeDisplay)
	const chip, code = "id-1-chip", "id-1-code-display"
	stop := churn(t, []string{"id-1"}, []string{chip, code}, w1, w2)
	defer stop()
	a := current(t, ro, chip)
	ctx := context.Background()
	for i := range 40 {
		what := fmt.Sprint("round ", i)
		a = applyTo(t, w1)(p.Suspend(a, mirrorSupport, domain.ReasonMisuse, mirrorT0))
		refused(t, w2, chip, device.KindChip, a, what+": suspended through the first, read through the second")
		a = applyTo(t, w2)(p.Reactivate(id, a, mirrorSupport, nil, mirrorT0))
		admitted(t, w1, chip, device.KindChip, a, what+": reactivated through the second, read through the first")
		// A replay guard moved through one is seen through the other.
		step := uint64(100 + i)
		if ok, err := w2.AdvanceOTPStep(ctx, code, step, 0); err != nil || !ok {
			t.Fatalf("%s: AdvanceOTPStep: %v %v", what, ok, err)
		}
		el, err := w1.ElementOfKind(ctx, code, device.KindCodeDisplay)
		if err != nil || el.Code == nil || el.Code.HighestStep != step {
			t.Fatalf("%s: after step %d was used through the second store, the first reads %s (%v)", what, step, render(el, nil), err)
		}
	}
	// Both write the same element at once: each store's commits reach
	// the mirror in the order they were made, so it ends where the
	// database does, and each step is seen through the other store once
	// its write returned.
	var wg sync.WaitGroup
	var next atomic.Uint64
	next.Store(1000)
	for g := range 4 {
		wg.Go(func() {
			s, other := w1, w2
			if g%2 == 1 {
				s, other = w2, w1
			}
			for range 30 {
				step := next.Add(1)
				ok, err := s.AdvanceOTPStep(ctx, code, step, g)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue // a later step was used first
				}
				el, err := other.ElementOfKind(ctx, code, device.KindCodeDisplay)
				if err != nil || el.Code == nil || el.Code.HighestStep < step {
					t.Errorf("after step %d was used through one store, the other reads %s (%v)", step, render(el, nil), err)
					return
				}
			}
		})
	}
	wg.Wait()
	stop()
	sameAsDatabase(t, w1, ro, []string{"id-1"}, []string{chip, code}, "first store")
	sameAsDatabase(t, w2, ro, []string{"id-1"}, []string{chip, code}, "second store")

	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, link, Options{Chain: storetest.Chain{}}); !errors.Is(err, ErrInUse) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("a third store of the file, opened through a link: %v, want ErrInUse", err)
	}
}

// TestMirrorClosed: reads through a closed store fail, even while the
// mirror it shared lives on in another store of the file and holds what
// they ask for.
func TestMirrorClosed(t *testing.T) {
	w, _, path := openMirrored(t)
	ctx := context.Background()
	makeIdentity(t, w, "id-1", device.KindChip)
	const chip = "id-1-chip"
	other := openWriter(t, path)
	// Both hold the identity in memory now.
	for _, s := range []*Store{w, other} {
		if _, _, _, err := s.AuthenticatorWithElement(ctx, chip, device.KindChip); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	at := store.Attempt{ID: "after-close", AuthenticatorID: chip, ExpiresAt: mirrorT0.Add(time.Hour)}
	for name, read := range map[string]func() error{
		"Identity":                  func() error { _, err := w.Identity(ctx, "id-1"); return err },
		"AuthenticatorSet":          func() error { _, err := w.AuthenticatorSet(ctx, "id-1"); return err },
		"ListAuthenticators":        func() error { _, err := w.ListAuthenticators(ctx, "id-1"); return err },
		"Authenticator":             func() error { _, err := w.Authenticator(ctx, chip); return err },
		"AuthenticatorWithIdentity": func() error { _, _, err := w.AuthenticatorWithIdentity(ctx, chip); return err },
		"AuthenticatorWithElement": func() error {
			_, _, _, err := w.AuthenticatorWithElement(ctx, chip, device.KindChip)
			return err
		},
		"Element":        func() error { _, err := w.Element(ctx, chip); return err },
		"ElementOfKind":  func() error { _, err := w.ElementOfKind(ctx, chip, device.KindChip); return err },
		"ReserveAttempt": func() error { return w.ReserveAttempt(ctx, at, 5, mirrorT0) },
	} {
		if err := read(); !errors.Is(err, sqlcore.ErrClosed) {
			t.Errorf("%s after Close: %v, want an error wrapping ErrClosed", name, err)
		}
	}
	if _, _, _, err := other.AuthenticatorWithElement(ctx, chip, device.KindChip); err != nil {
		t.Errorf("the other store of the file: %v", err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Identity(ctx, "id-1"); !errors.Is(err, sqlcore.ErrClosed) {
		t.Errorf("Identity after the last store closed: %v, want an error wrapping ErrClosed", err)
	}
}

// TestMirrorFailedOpsInBatch runs ops in one group-committed transaction,
// some of which change rows the mirror holds and then fail (so their
// savepoint is rolled back): an add that raises the identity's set
// version and then meets a taken credential ID, a block that stores the
// authenticator and wipes its key and then meets a tombstone that exists,
// a chip login that moves the sign counter and then meets a version
// conflict, and an identity update with a stale version. The mirror keeps
// what the others committed and nothing of what the failed ones undid.
func TestMirrorFailedOpsInBatch(t *testing.T) {
	w, ro, _ := openMirrored(t)
	ctx := context.Background()
	p := domain.DefaultPolicy()
	idA := makeIdentity(t, w, "id-a", device.KindChip, device.KindPassword)
	makeIdentity(t, w, "id-b", device.KindPassword, device.KindCodeDisplay)
	const (
		chipA = "id-a-chip"
		pwA   = "id-a-password"
		pwB   = "id-b-password"
		codeB = "id-b-code-display"
	)
	ids := []string{"id-a", "id-b"}
	auths := []string{chipA, pwA, pwB, codeB, "id-a-dup"}
	// A tombstone of pwA exists already (a repair), so blocking it fails
	// after its rows were changed.
	if err := w.PutTombstone(ctx, domain.Tombstone{IdentityID: "id-a", AuthenticatorID: pwA, Kind: device.KindPassword,
		Reason: domain.ReasonLost, BlockedAt: mirrorT0, By: mirrorSupport}); err != nil {
		t.Fatal(err)
	}
	// The mirror holds both identities.
	sameAsDatabase(t, w, ro, ids, auths, "before")
	loads := w.mirror.Loads()

	setA, err := w.AuthenticatorSet(ctx, "id-a")
	if err != nil {
		t.Fatal(err)
	}
	chip, pw, pwb := current(t, ro, chipA), current(t, ro, pwA), current(t, ro, pwB)
	dup := pendingChange("id-a", "id-a-dup", device.KindChip, mirrorT0)
	dup.Authenticator.CredentialID = chip.CredentialID
	block, err := p.Block(pw, mirrorSupport, domain.ReasonLost, mirrorT0)
	if err != nil {
		t.Fatal(err)
	}
	success, err := p.RecordSuccess(chip, mirrorT0)
	if err != nil {
		t.Fatal(err)
	}
	success.Authenticator.Version++ // computed from a version that is not stored
	staleIdentity, err := p.BlockIdentity(idA, mirrorSupport, domain.ReasonMisuse, mirrorT0)
	if err != nil {
		t.Fatal(err)
	}
	staleIdentity.Identity.Version += 3
	suspend, err := p.Suspend(pwb, mirrorSupport, domain.ReasonMisuse, mirrorT0)
	if err != nil {
		t.Fatal(err)
	}
	at := store.Attempt{ID: "login-a", AuthenticatorID: chipA, ExpiresAt: mirrorT0.Add(time.Hour)}
	if err := w.ReserveAttempt(ctx, at, p.Failures(), mirrorT0); err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		name string
		want error // nil: it commits
		run  func() error
	}{
		{"add with a taken credential ID", store.ErrDuplicate, func() error {
			return w.CreateAuthenticatorAt(ctx, dup, storetest.ElementFor(device.KindChip, "id-a-dup"), setA.Version)
		}},
		{"block over an existing tombstone", store.ErrDuplicate, func() error { return w.ApplyChange(ctx, block) }},
		{"chip login at a stale version", store.ErrConflict, func() error {
			_, err := w.CommitLogin(ctx, store.Login{Attempt: at.ID, Change: success,
				Chip: &store.ChipGuard{Count: 77, Spent: store.Ceremony{Key: "challenge-1", ExpiresAt: mirrorT0.Add(time.Hour)}}})
			return err
		}},
		{"identity update at a stale version", store.ErrConflict, func() error { return w.UpdateIdentity(ctx, staleIdentity) }},
		{"suspension", nil, func() error { return w.ApplyChange(ctx, suspend) }},
		{"code step", nil, func() error {
			ok, err := w.AdvanceOTPStep(ctx, codeB, 42, 1)
			if err == nil && !ok {
				err = errors.New("the step did not move")
			}
			return err
		}},
	}
	before := w.gc.batches.Load()
	release := holdLeader(t, w)
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() { errs[i] = op.run() })
	}
	release(len(ops))
	wg.Wait()
	if n := w.gc.batches.Load() - before; n != 1 {
		t.Fatalf("%d ops ran in %d transactions, want 1", len(ops), n)
	}
	for i, op := range ops {
		if op.want == nil && errs[i] != nil || op.want != nil && !errors.Is(errs[i], op.want) {
			t.Errorf("%s: %v, want %v", op.name, errs[i], op.want)
		}
	}
	if n := w.mirror.Loads(); n != loads {
		t.Errorf("the mirror loaded %d times: it forgot what it held after a batch it could follow", n-loads)
	}
	sameAsDatabase(t, w, ro, ids, auths, "after the batch")
	// What the failed ops undid, as a login reads it.
	admitted(t, w, pwA, device.KindPassword, pw, "the password whose block failed")
	if set, err := w.AuthenticatorSet(ctx, "id-a"); err != nil || set.Version != setA.Version {
		t.Errorf("after the failed add, the set is at version %d (%v), want %d", set.Version, err, setA.Version)
	}
	if el, err := w.Element(ctx, chipA); err != nil || el.Chip.SignCount != 0 {
		t.Errorf("after the failed login, the chip's counter reads %s (%v), want 0", render(el, nil), err)
	}
	refused(t, w, pwB, device.KindPassword, suspend.Authenticator, "the suspension committed with them")
}

// TestMirrorFailedStatement: a statement that changes rows and then fails
// (SQLite undoes its changes, having reported them to the change log)
// inside a transaction that commits all the same makes the mirror forget
// what it holds, so that nothing it undid is answered: here one UPDATE
// reactivates a suspended authenticator and then fails on the CHECK of
// the next row, whether run as an exec, as a query returning rows or as a
// query returning one row.
func TestMirrorFailedStatement(t *testing.T) {
	stmts := map[string]*sqlcore.Stmt{
		"exec": sqlcore.NewStmt("test-failing-update", `UPDATE authenticators SET state = 'active', suspend_reason = '', version = version + 1,
	failures = CASE id WHEN ? THEN -1 ELSE 0 END WHERE identity_id = ?`, false),
		"query": sqlcore.NewStmt("test-failing-update-returning", `UPDATE authenticators SET state = 'active', suspend_reason = '', version = version + 1,
	failures = CASE id WHEN ? THEN -1 ELSE 0 END WHERE identity_id = ? RETURNING id`, false),
	}
	run := map[string]func(ctx context.Context, tx sqlcore.Tx, b, id string) error{
		"exec": func(ctx context.Context, tx sqlcore.Tx, b, id string) error {
			_, err := tx.Exec(ctx, stmts["exec"], b, id)
			return err
		},
		"query": func(ctx context.Context, tx sqlcore.Tx, b, id string) error {
			rs, err := tx.Query(ctx, stmts["query"], b, id)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
			}
			return rs.Err()
		},
		"query row": func(ctx context.Context, tx sqlcore.Tx, b, id string) error {
			var x string
			return tx.QueryRow(ctx, stmts["query"], b, id).Scan(&x)
		},
	}
	for _, how := range []string{"exec", "query", "query row"} {
		t.Run(how, func(t *testing.T) {
			w, ro, _ := openMirrored(t)
			ctx := context.Background()
			p := domain.DefaultPolicy()
			// The chip comes first in the identity's index, the password
			// second: the UPDATE changes the chip's row, then fails on the
			// password's.
			makeIdentity(t, w, "id-a", device.KindChip, device.KindPassword)
			makeIdentity(t, w, "id-b", device.KindChip)
			const chip, pw = "id-a-chip", "id-a-password"
			ids, auths := []string{"id-a", "id-b"}, []string{chip, pw, "id-b-chip"}
			a := applyTo(t, w)(p.Suspend(current(t, ro, chip), mirrorSupport, domain.ReasonMisuse, mirrorT0))
			sameAsDatabase(t, w, ro, ids, auths, "before")

			var stmtErr error
			err := w.Write(ctx, 0, func(ctx context.Context, tx sqlcore.Tx) error {
				stmtErr = run[how](ctx, tx, pw, "id-a")
				return nil // the transaction goes on, and commits
			})
			if err != nil {
				t.Fatal(err)
			}
			if stmtErr == nil {
				t.Fatal("the UPDATE did not fail")
			}
			refused(t, w, chip, device.KindChip, a, "after the failed statement")
			sameAsDatabase(t, w, ro, ids, auths, "after the failed statement")
		})
	}
}

// TestMirrorTextWithNUL: text holding a NUL byte, which the store takes
// as it is given, reads back whole: an identity whose ID extends another's
// past a NUL does not stand in for it, and a label or verifier is not cut
// short.
func TestMirrorTextWithNUL(t *testing.T) {
	w, ro, _ := openMirrored(t)
	ctx := context.Background()
	makeIdentity(t, w, "victim", device.KindChip)
	ids := []string{"victim", "victim\x00x"}
	auths := []string{"victim-chip", "victim\x00x-password", "odd-chip"}
	sameAsDatabase(t, w, ro, ids, auths, "before") // held now
	makeIdentity(t, w, "victim\x00x", device.KindPassword)
	c := pendingChange("victim", "odd-chip", device.KindChip, mirrorT0)
	c.Authenticator.Label = "work\x00phone"
	if err := w.CreateAuthenticator(ctx, c, storetest.ElementFor(device.KindChip, "odd-chip")); err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateVerifier(ctx, "victim\x00x-password", "$argon2id$pw-victim\x00x-password", "$argon2id$\x00rest"); err != nil {
		t.Fatal(err)
	}
	sameAsDatabase(t, w, ro, ids, auths, "after")
	if set, err := w.AuthenticatorSet(ctx, "victim"); err != nil || len(set.Authenticators) != 2 {
		t.Errorf("AuthenticatorSet(victim) = %s (%v), want its chip and odd-chip", render(set, nil), err)
	}
}

// TestMirrorDecodedRecordsFollowWrites: the mirror keeps the records it
// decoded from a held row with that row; after every write that changes
// an authenticator's row or the identity's, the next reads answer the new
// row, without the mirror loading anything from the database (so the
// answer is the held row's, not a reload's), and every read equals what
// the database holds.
func TestMirrorDecodedRecordsFollowWrites(t *testing.T) {
	w, ro, _ := openMirrored(t)
	ctx := context.Background()
	p := domain.DefaultPolicy()
	id := makeIdentity(t, w, "id-1", device.KindCodeDisplay, device.KindPassword)
	ids, auths := []string{"id-1"}, []string{"id-1-code-display", "id-1-password"}
	sameAsDatabase(t, w, ro, ids, auths, "at the start") // decodes every row
	loads := w.mirror.Loads()
	a := current(t, ro, "id-1-code-display")
	steps := []struct {
		what  string
		write func()
	}{
		{"a failure", func() {
			a = applyTo(t, w)(p.RecordFailure(a, domain.Failure{Cause: domain.CauseWrongCode}, mirrorT0))
		}},
		{"a success", func() { a = applyTo(t, w)(p.RecordSuccess(a, mirrorT0.Add(time.Minute))) }},
		{"a suspension", func() { a = applyTo(t, w)(p.Suspend(a, mirrorSupport, domain.ReasonMisuse, mirrorT0)) }},
		{"a reactivation", func() { a = applyTo(t, w)(p.Reactivate(id, a, mirrorSupport, nil, mirrorT0)) }},
		{"the identity's block", func() {
			ic, err := p.BlockIdentity(id, mirrorSupport, domain.ReasonMisuse, mirrorT0)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.UpdateIdentity(ctx, ic); err != nil {
				t.Fatal(err)
			}
			id = ic.Identity
		}},
		{"the identity's unblock", func() {
			ic, err := p.UnblockIdentity(id, mirrorSupport, "checked", mirrorT0)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.UpdateIdentity(ctx, ic); err != nil {
				t.Fatal(err)
			}
			id = ic.Identity
		}},
	}
	for _, st := range steps {
		st.write()
		got, err := w.Authenticator(ctx, a.ID)
		if err != nil || got != a {
			t.Fatalf("after %s: the store answers %+v (%v), want %+v", st.what, got, err, a)
		}
		v, err := w.Identity(ctx, id.ID)
		if err != nil || v.State != id.State || v.Version != id.Version {
			t.Fatalf("after %s: the store answers identity %s version %d (%v), want %s version %d", st.what, v.State, v.Version, err, id.State, id.Version)
		}
		sameAsDatabase(t, w, ro, ids, auths, "after "+st.what)
	}
	if n := w.mirror.Loads(); n != loads {
		t.Fatalf("the mirror loaded the identity %d times during the writes: the reads did not come from the rows it held", n-loads)
	}
}

// TestMirrorElementReadAllocations: a login's read of a code device with
// its identity and element, answered by the mirror once it has decoded
// the records, allocates only the element it returns: the Element, its
// CodeElement, the copy of the sealed secret and the key ID.
func TestMirrorElementReadAllocations(t *testing.T) {
	w, _, _ := openMirrored(t)
	ctx := context.Background()
	makeIdentity(t, w, "id-1", device.KindCodeDisplay, device.KindPassword)
	const aid = "id-1-code-display"
	read := func() {
		if _, _, el, err := w.AuthenticatorWithElement(ctx, aid, device.KindCodeDisplay); err != nil || el == nil || el.Code == nil {
			t.Fatalf("AuthenticatorWithElement: %v, %v", el, err)
		}
	}
	read() // loads the identity and decodes its records
	loads := w.mirror.Loads()
	if n := testing.AllocsPerRun(100, read); n > 4 {
		t.Errorf("a read of the held element allocates %v times, want at most 4", n)
	}
	if w.mirror.Loads() != loads {
		t.Fatal("the mirror loaded the identity again: the reads were not answered from it")
	}
}
