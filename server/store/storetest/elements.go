package storetest

import (
	"errors"
	"math"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

func testOTPSequence(f *fixture) {
	id := f.identity("id-1")
	f.active(id, "kv-1", device.KindCodeDisplay)
	for i, tc := range []struct {
		step  uint64
		drift int
		want  bool
		high  uint64 // HighestStep afterwards
		dr    int    // Drift afterwards
	}{
		{100, 0, true, 100, 0},
		{100, 1, false, 100, 0}, // the same code again (RFC 6238 §5.2)
		{99, 0, false, 100, 0},  // an older code
		{0, 0, false, 100, 0},
		{102, -1, true, 102, -1},
		{101, 0, false, 102, -1},
		{math.MaxInt64, 2, true, math.MaxInt64, 2},
	} {
		ok, err := f.s.AdvanceOTPStep(f.ctx, "kv-1", tc.step, tc.drift)
		f.ok(err, "AdvanceOTPStep #%d", i)
		if ok != tc.want {
			f.t.Errorf("#%d AdvanceOTPStep(%d) = %v, want %v", i, tc.step, ok, tc.want)
		}
		el, err := f.s.Element(f.ctx, "kv-1")
		f.ok(err, "Element")
		if el.Code.HighestStep != tc.high || el.Code.Drift != tc.dr {
			f.t.Errorf("#%d after AdvanceOTPStep(%d): highest %d drift %d, want %d %d", i, tc.step, el.Code.HighestStep, el.Code.Drift, tc.high, tc.dr)
		}
	}
}

func testOTPConcurrent(f *fixture) {
	id := f.identity("id-1")
	f.active(id, "kv-1", device.KindAudioCodeReader)
	for _, step := range []uint64{58_000_000, 58_000_001} {
		res := race(Concurrency, func(int) error {
			ok, err := f.s.AdvanceOTPStep(f.ctx, "kv-1", step, 0)
			if err != nil {
				return err
			}
			if !ok {
				return domain.ErrCodeReplayed
			}
			return nil
		})
		if wins := f.countWins(res, domain.ErrCodeReplayed, "concurrent AdvanceOTPStep"); wins != 1 {
			f.t.Errorf("step %d: the same code was accepted %d times by %d goroutines, want exactly once", step, wins, Concurrency)
		}
	}
}

func testOTPErrors(f *fixture) {
	id := f.identity("id-1")
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	f.active(id, "pw-1", device.KindPassword)
	_, err := f.s.AdvanceOTPStep(f.ctx, "nothing", 1, 0)
	f.wantErr(err, store.ErrNotFound, "AdvanceOTPStep(unknown)")
	_, err = f.s.AdvanceOTPStep(f.ctx, "pw-1", 1, 0)
	f.wantErr(err, store.ErrNotFound, "AdvanceOTPStep(a password)")
	_, err = f.s.AdvanceOTPStep(f.ctx, "kv-1", math.MaxInt64+1, 0)
	f.wantErr(err, store.ErrInvalid, "AdvanceOTPStep(2^63)")
	f.apply(f.p.Block(kv, domain.Support("op-1"), domain.ReasonLost, f.now))
	ok, err := f.s.AdvanceOTPStep(f.ctx, "kv-1", 1000, 0)
	if ok || !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("AdvanceOTPStep after a wipe = %v, %v; want false and %q", ok, err, store.ErrNotFound)
	}
}

func testSignCountRule(f *fixture) {
	id := f.identity("id-1")
	chip := f.active(id, "chip-1", device.KindChip)
	cred := chip.CredentialID
	for i, tc := range []struct {
		count  uint32
		want   bool
		stored uint32
	}{
		{0, true, 0}, // no counter yet: both zero is fine
		{0, true, 0},
		{5, true, 5},
		{5, false, 5}, // not increasing: a clone?
		{4, false, 5},
		{0, false, 5}, // a counter cannot go back to "none"
		{6, true, 6},
		{math.MaxUint32, true, math.MaxUint32},
	} {
		ok, err := f.s.AdvanceSignCount(f.ctx, cred, tc.count)
		f.ok(err, "AdvanceSignCount #%d", i)
		if ok != tc.want {
			f.t.Errorf("#%d AdvanceSignCount(%d) = %v, want %v", i, tc.count, ok, tc.want)
		}
		// The store's rule agrees with the domain's.
		el, err := f.s.Element(f.ctx, "chip-1")
		f.ok(err, "Element")
		if el.Chip.SignCount != tc.stored {
			f.t.Errorf("#%d stored sign count %d, want %d", i, el.Chip.SignCount, tc.stored)
		}
	}
	_, err := f.s.AdvanceSignCount(f.ctx, "unknown", 1)
	f.wantErr(err, store.ErrNotFound, "AdvanceSignCount(unknown credential)")
	app := f.active(id, "app-1", device.KindApp)
	_, err = f.s.AdvanceSignCount(f.ctx, app.CredentialID, 1)
	f.wantErr(err, store.ErrNotFound, "AdvanceSignCount(an app key)")
	f.apply(f.p.Block(chip, domain.Support("op-1"), domain.ReasonLost, f.now))
	ok, err := f.s.AdvanceSignCount(f.ctx, cred, 1)
	if ok || !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("AdvanceSignCount after a wipe = %v, %v; want false and %q", ok, err, store.ErrNotFound)
	}
}

func testSignCountConcurrent(f *fixture) {
	id := f.identity("id-1")
	id2 := f.identity("id-2")
	chip := f.active(id, "chip-1", device.KindChip)
	res := race(Concurrency, func(int) error {
		ok, err := f.s.AdvanceSignCount(f.ctx, chip.CredentialID, 7)
		if err == nil && !ok {
			err = domain.ErrCloneSuspected
		}
		return err
	})
	if wins := f.countWins(res, domain.ErrCloneSuspected, "concurrent AdvanceSignCount"); wins != 1 {
		f.t.Errorf("counter 7 was accepted %d times by %d goroutines, want exactly once", wins, Concurrency)
	}
	// A chip without a counter: nothing orders its assertions.
	zero := f.active(id2, "chip-2", device.KindChip)
	res = race(Concurrency, func(int) error {
		ok, err := f.s.AdvanceSignCount(f.ctx, zero.CredentialID, 0)
		if err == nil && !ok {
			err = domain.ErrCloneSuspected
		}
		return err
	})
	if wins := f.countWins(res, domain.ErrCloneSuspected, "concurrent AdvanceSignCount(0)"); wins != Concurrency {
		f.t.Errorf("a chip without a counter passed %d of %d times, want all", wins, Concurrency)
	}
}

func testUpdateSecret(f *fixture) {
	id := f.identity("id-1")
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	old := ElementFor(device.KindCodeDisplay, "kv-1").Code.Secret
	next := store.Sealed{KeyID: "k2", Blob: []byte("SEALED-UNDER-K2")}
	f.ok(f.s.UpdateSecret(f.ctx, "kv-1", old, next), "UpdateSecret")
	el, err := f.s.Element(f.ctx, "kv-1")
	f.ok(err, "Element")
	if !el.Code.Secret.Equal(next) {
		f.t.Errorf("secret after UpdateSecret: %+v, want %+v", el.Code.Secret, next)
	}
	f.wantErr(f.s.UpdateSecret(f.ctx, "kv-1", old, next), store.ErrConflict, "UpdateSecret from a replaced secret")
	f.wantErr(f.s.UpdateSecret(f.ctx, "kv-1", next, store.Sealed{}), store.ErrInvalid, "UpdateSecret to nothing")
	f.wantErr(f.s.UpdateSecret(f.ctx, "nothing", old, next), store.ErrNotFound, "UpdateSecret(unknown)")
	f.apply(f.p.Block(kv, domain.Support("op-1"), domain.ReasonLost, f.now))
	f.wantErr(f.s.UpdateSecret(f.ctx, "kv-1", next, old), store.ErrNotFound, "UpdateSecret after a wipe")
	el, err = f.s.Element(f.ctx, "kv-1")
	f.ok(err, "Element")
	if !el.Code.Secret.IsZero() {
		f.t.Errorf("a wiped secret came back: %+v", el.Code.Secret)
	}
}

func testUpdateVerifier(f *fixture) {
	id := f.identity("id-1")
	f.active(id, "pw-1", device.KindPassword)
	app := f.active(id, "app-1", device.KindApp)
	f.active(id, "kv-1", device.KindCodeDisplay)
	for _, tc := range []struct {
		id, old string
		get     func(store.Element) string
	}{
		{"pw-1", ElementFor(device.KindPassword, "pw-1").Password.Verifier, func(e store.Element) string { return e.Password.Verifier }},
		{"app-1", ElementFor(device.KindApp, "app-1").App.PINVerifier, func(e store.Element) string { return e.App.PINVerifier }},
	} {
		f.ok(f.s.UpdateVerifier(f.ctx, tc.id, tc.old, "$argon2id$rehashed"), "UpdateVerifier(%s)", tc.id)
		el, err := f.s.Element(f.ctx, tc.id)
		f.ok(err, "Element")
		if v := tc.get(el); v != "$argon2id$rehashed" {
			f.t.Errorf("%s: verifier %q after UpdateVerifier", tc.id, v)
		}
		f.wantErr(f.s.UpdateVerifier(f.ctx, tc.id, tc.old, "$argon2id$again"), store.ErrConflict, "UpdateVerifier(%s) from a replaced verifier", tc.id)
		f.wantErr(f.s.UpdateVerifier(f.ctx, tc.id, "$argon2id$rehashed", ""), store.ErrInvalid, "UpdateVerifier(%s) to nothing", tc.id)
	}
	f.wantErr(f.s.UpdateVerifier(f.ctx, "kv-1", "x", "y"), store.ErrNotFound, "UpdateVerifier(a code device)")
	f.wantErr(f.s.UpdateVerifier(f.ctx, "nothing", "x", "y"), store.ErrNotFound, "UpdateVerifier(unknown)")
	f.apply(f.p.Block(app, domain.Support("op-1"), domain.ReasonLost, f.now))
	f.wantErr(f.s.UpdateVerifier(f.ctx, "app-1", "$argon2id$rehashed", "$argon2id$x"), store.ErrNotFound, "UpdateVerifier after a wipe")
}
