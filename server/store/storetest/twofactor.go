package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// session stores a two-factor session of identity id proven with proofs
// and returns its token hash.
func (f *fixture) session(id, sid string, proofs ...string) []byte {
	f.t.Helper()
	hash := bytes.Repeat([]byte(sid), 1+32/len(sid))[:32]
	s := store.Session{TokenHash: hash, ID: sid, IdentityID: id, Level: store.LevelTwoFactor,
		Authenticators: proofs, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}
	f.ok(f.s.PutSession(f.ctx, s), "PutSession %s", sid)
	return hash
}

// live reports whether the session with token hash h is usable now.
func (f *fixture) live(h []byte) bool {
	f.t.Helper()
	_, err := f.s.Session(f.ctx, h, f.now)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		f.t.Fatalf("Session: %v", err)
	}
	return err == nil
}

// testSessionProofs checks what PutSession refuses: proofs that are not
// active, that belong to another identity, or that do not exist, and an
// identity that is blocked.
func testSessionProofs(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	f.active(id, "pw-1", device.KindPassword)
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	f.create("id-1", "app-1", device.KindApp) // pending
	f.active(domain.Identity{ID: "id-2", State: domain.IdentityActive, Version: 1}, "pw-2", device.KindPassword)
	put := func(sid string, proofs ...string) error {
		return f.s.PutSession(f.ctx, store.Session{TokenHash: []byte(sid), ID: sid, IdentityID: "id-1", Level: store.LevelTwoFactor,
			Authenticators: proofs, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)})
	}
	f.wantErr(put("s1", "pw-1", "app-1"), store.ErrConflict, "a session proven with a pending authenticator")
	f.wantErr(put("s2", "pw-1", "pw-2"), store.ErrInvalid, "a session proven with another identity's authenticator")
	f.wantErr(put("s3", "pw-1", "kv-404"), store.ErrNotFound, "a session proven with an unknown authenticator")
	f.wantErr(put("s4", "pw-1", "pw-1"), store.ErrInvalid, "a session proven twice with one authenticator")
	f.wantErr(put("s4", "pw-1", "kv-1", "app-1"), store.ErrInvalid, "a session proven with three authenticators (a login proves with one or two)")
	f.wantErr(put("s4"), store.ErrInvalid, "a session proven with nothing")
	f.apply(f.p.RecordFailure(kv, domain.Failure{Cause: domain.CauseWrongCode}, f.now))
	f.ok(put("s5", "pw-1", "kv-1"), "a session proven with an active authenticator that has failures")
	kv = f.authenticator("kv-1")
	f.apply(f.p.Suspend(kv, domain.Support("op-1"), domain.ReasonMisuse, f.now))
	f.wantErr(put("s6", "pw-1", "kv-1"), store.ErrConflict, "a session proven with a suspended authenticator")
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	f.wantErr(put("s7", "pw-1"), store.ErrConflict, "a session of a blocked identity")
}

// testSessionsEndWithAuthenticators checks that a session ends when any
// authenticator that proved it stops being active, and stays ended when it
// comes back; sessions it did not prove live on.
func testSessionsEndWithAuthenticators(f *fixture) {
	id := f.identity("id-1")
	pw := f.active(id, "pw-1", device.KindPassword)
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	app := f.active(id, "app-1", device.KindApp)
	chip := f.active(id, "chip-1", device.KindChip)
	withCode := f.session("id-1", "ses-code", "pw-1", "kv-1")
	withApp := f.session("id-1", "ses-app", "app-1")
	withChip := f.session("id-1", "ses-chip", "pw-1", "chip-1")
	if !f.live(withCode) || !f.live(withApp) || !f.live(withChip) {
		f.t.Fatal("new sessions are not live")
	}
	// A failure that does not suspend leaves the session alone.
	kv = f.apply(f.p.RecordFailure(kv, domain.Failure{Cause: domain.CauseWrongCode}, f.now))
	if !f.live(withCode) {
		f.t.Error("a failed attempt that did not suspend ended the session")
	}
	// The third suspends the code display: its session ends, the others
	// do not, and reactivating it does not bring the session back.
	for range 2 {
		kv = f.apply(f.p.RecordFailure(kv, domain.Failure{Cause: domain.CauseWrongCode}, f.now))
	}
	if kv.State != domain.StateSuspended {
		f.t.Fatalf("kv-1 is %s after 3 failures", kv.State)
	}
	if f.live(withCode) || !f.live(withApp) || !f.live(withChip) {
		f.t.Errorf("after kv-1 was suspended: code %v, app %v, chip %v; want false, true, true", f.live(withCode), f.live(withApp), f.live(withChip))
	}
	// Not only refused: deleted with the suspension (EndSession finds
	// the row whatever its proofs' state).
	f.wantErr(f.s.EndSession(f.ctx, "id-1", "ses-code"), store.ErrNotFound, "EndSession of the session kv-1's suspension ended")
	f.apply(f.p.Reactivate(id, kv, domain.Owner("id-1", "app-1"), []domain.Authenticator{pw, kv, app}, f.now))
	if f.live(withCode) {
		f.t.Error("the session came back with the reactivation")
	}
	// Blocking the password ends every session it proved.
	f.apply(f.p.Block(pw, domain.Owner("id-1", "app-1"), domain.ReasonCompromised, f.now))
	if f.live(withChip) || !f.live(withApp) {
		f.t.Errorf("after the password was blocked: chip session %v, app session %v; want false, true", f.live(withChip), f.live(withApp))
	}
	list, err := f.s.ListSessions(f.ctx, "id-1", f.now)
	f.ok(err, "ListSessions")
	if len(list) != 1 || list[0].ID != "ses-app" {
		f.t.Errorf("ListSessions = %+v, want only ses-app", list)
	}
	// UpdateAuthenticator is ApplyChange too.
	a := app
	a.State, a.SuspendedAt, a.SuspendReason, a.Version = domain.StateSuspended, f.now, domain.ReasonMisuse, app.Version+1
	f.ok(f.s.UpdateAuthenticator(f.ctx, a), "UpdateAuthenticator")
	if f.live(withApp) {
		f.t.Error("the app session outlived the app's suspension by UpdateAuthenticator")
	}
	// A session proven by the first factor alone ends with it too.
	pw2 := f.active(id, "pw-2", device.KindPassword)
	withPassword := f.session("id-1", "ses-pw", "pw-2", "chip-1")
	f.apply(f.p.Suspend(pw2, domain.Support("op-1"), domain.ReasonMisuse, f.now))
	if f.live(withPassword) {
		f.t.Error("the session outlived the suspension of its first proof")
	}
	// A removed authenticator's sessions go with its record (as the
	// cascade of the links did).
	kv2 := f.active(id, "kv-2", device.KindCodeDisplay)
	withKV2 := f.session("id-1", "ses-kv-2", "kv-2")
	kept := f.session("id-1", "ses-chip-2", "chip-1")
	gone := kv2
	gone.Version++
	f.ok(f.s.ApplyChange(f.ctx, domain.Change{Authenticator: gone, Remove: true, WipeSecret: true}), "ApplyChange(remove kv-2)")
	if f.live(withKV2) || !f.live(kept) {
		f.t.Errorf("after kv-2 was removed: its session %v, chip-1's %v; want false, true", f.live(withKV2), f.live(kept))
	}
	f.wantErr(f.s.EndSession(f.ctx, "id-1", "ses-kv-2"), store.ErrNotFound, "EndSession of the session of the removed kv-2")
	_ = chip
}

// testSessionsEndWithIdentity checks that blocking an identity ends all
// its sessions for good, and leaves other identities' alone.
func testSessionsEndWithIdentity(f *fixture) {
	id := f.identity("id-1")
	id2 := f.identity("id-2")
	f.active(id, "pw-1", device.KindPassword)
	f.active(id2, "pw-2", device.KindPassword)
	mine := f.session("id-1", "ses-1", "pw-1")
	theirs := f.session("id-2", "ses-2", "pw-2")
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	if f.live(mine) || !f.live(theirs) {
		f.t.Errorf("after id-1 was blocked: its session %v, id-2's %v; want false, true", f.live(mine), f.live(theirs))
	}
	lifted, err := f.p.UnblockIdentity(blocked.Identity, domain.Support("op-1"), "", f.now)
	f.ok(err, "UnblockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, lifted), "UpdateIdentity")
	if f.live(mine) {
		f.t.Error("the session came back when the block was lifted")
	}
}

// attempt returns a reservation against authenticator aid (or serial when
// aid is "") that lapses in a minute.
func (f *fixture) attempt(n int, aid, serial string) store.Attempt {
	return store.Attempt{ID: fmt.Sprintf("att-%d", n), AuthenticatorID: aid, Serial: serial, ExpiresAt: f.now.Add(time.Minute)}
}

// testAttemptsReserve checks the arithmetic of reservations: failures plus
// attempts in flight stay below the limit; ending an attempt with a
// failure keeps the sum, a success frees it; a lapsed attempt frees its
// place; only an active authenticator takes attempts.
func testAttemptsReserve(f *fixture) {
	id := f.identity("id-1")
	pw := f.active(id, "pw-1", device.KindPassword)
	const max = 3
	reserve := func(n int) error { return f.s.ReserveAttempt(f.ctx, f.attempt(n, "pw-1", ""), max, f.now) }
	for n := range max {
		f.ok(reserve(n), "reservation %d", n)
	}
	f.wantErr(reserve(3), store.ErrExhausted, "a reservation beyond the limit")
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(0, "pw-1", ""), max+1, f.now), store.ErrDuplicate, "a reservation ID twice")
	// A failure: one attempt ends, the failure count takes its place.
	c, err := f.p.RecordFailure(pw, domain.Failure{Cause: domain.CauseWrongPassword}, f.now)
	f.ok(err, "RecordFailure")
	f.ok(f.s.EndAttempt(f.ctx, "att-0", &c), "EndAttempt with a failure")
	pw = c.Authenticator
	f.wantErr(reserve(4), store.ErrExhausted, "a reservation after a failure took the attempt's place")
	// An attempt that ends without a change frees its place.
	f.ok(f.s.EndAttempt(f.ctx, "att-1", nil), "EndAttempt without a change")
	f.ok(f.s.EndAttempt(f.ctx, "att-1", nil), "EndAttempt twice")
	f.ok(reserve(5), "a reservation after an attempt ended")
	// A success resets the failures: everything is free again once the
	// attempts end.
	s, err := f.p.RecordSuccess(pw, f.now)
	f.ok(err, "RecordSuccess")
	f.ok(f.s.EndAttempt(f.ctx, "att-2", &s), "EndAttempt with a success")
	f.ok(f.s.EndAttempt(f.ctx, "att-5", nil), "EndAttempt")
	for n := 10; n < 10+max; n++ {
		f.ok(reserve(n), "reservation %d after the success", n)
	}
	// Reservations lapse at their expiry.
	later := f.now.Add(2 * time.Minute)
	f.ok(f.s.ReserveAttempt(f.ctx, store.Attempt{ID: "att-late", AuthenticatorID: "pw-1", ExpiresAt: later.Add(time.Minute)}, max, later),
		"a reservation after the others lapsed")
	n, err := f.s.SweepAttempts(f.ctx, later)
	f.ok(err, "SweepAttempts")
	if n != max {
		f.t.Errorf("SweepAttempts removed %d, want %d", n, max)
	}
	// Only an active authenticator takes attempts; unknown ones none.
	f.create("id-1", "app-1", device.KindApp)
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(20, "app-1", ""), max, f.now), store.ErrExhausted, "an attempt against a pending authenticator")
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(21, "pw-404", ""), max, f.now), store.ErrNotFound, "an attempt against an unknown authenticator")
	f.wantErr(f.s.ReserveAttempt(f.ctx, store.Attempt{ID: "x"}, max, f.now), store.ErrInvalid, "an attempt without a subject")
	// A failure that suspends ends the sessions the authenticator proved,
	// as ApplyChange does.
	h := f.session("id-1", "ses-1", "pw-1")
	pw = f.authenticator("pw-1")
	f.ok(f.s.EndAttempt(f.ctx, "att-late", nil), "EndAttempt")
	for i := range max {
		f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(30+i, "pw-1", ""), max, later), "reservation")
		c, err := f.p.RecordFailure(pw, domain.Failure{Cause: domain.CauseWrongPassword, Anonymous: true}, later)
		f.ok(err, "RecordFailure")
		f.ok(f.s.EndAttempt(f.ctx, fmt.Sprintf("att-%d", 30+i), &c), "EndAttempt")
		pw = c.Authenticator
	}
	if pw.State != domain.StateSuspended || f.live(h) {
		f.t.Errorf("after 3 failures: %s, session live %v", pw.State, f.live(h))
	}
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(40, "pw-1", ""), max, later), store.ErrExhausted, "an attempt against a suspended authenticator")
}

// testAttemptsConcurrent sends Concurrency reservations at once against
// one authenticator with failures already recorded: exactly the remaining
// count is reserved.
func testAttemptsConcurrent(f *fixture) {
	id := f.identity("id-1")
	pw := f.active(id, "pw-1", device.KindPassword)
	pw = f.apply(f.p.RecordFailure(pw, domain.Failure{Cause: domain.CauseWrongPassword}, f.now))
	const max = 3
	errs := race(Concurrency, func(i int) error {
		return f.s.ReserveAttempt(f.ctx, f.attempt(i, "pw-1", ""), max, f.now)
	})
	if wins := f.countWins(errs, store.ErrExhausted, "concurrent ReserveAttempt"); wins != max-pw.Failures {
		f.t.Errorf("%d of %d concurrent reservations won with %d failure(s) recorded, want %d", wins, Concurrency, pw.Failures, max-pw.Failures)
	}
}

// testAttemptsImport checks the reservations against a serial's import
// and the count of wrong activation codes, which ReplaceImport resets.
func testAttemptsImport(f *fixture) {
	im := store.Import{Serial: "KV-1", Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-KV-1")},
		OTPParams: store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}, ImportedAt: f.now}
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")
	const max = 2
	errs := race(Concurrency, func(i int) error {
		return f.s.ReserveAttempt(f.ctx, f.attempt(i, "", "KV-1"), max, f.now)
	})
	var won []int
	for i, err := range errs {
		if err == nil {
			won = append(won, i)
		} else if !errors.Is(err, store.ErrExhausted) {
			f.t.Fatalf("reservation %d: %v", i, err)
		}
	}
	if len(won) != max {
		f.t.Fatalf("%d concurrent reservations against the import won, want %d", len(won), max)
	}
	ev := domain.Event{Type: domain.EventRefused, IdentityID: "id-1", Actor: sys, Reason: "wrong-code", At: f.now}
	for k, i := range won {
		n, err := f.s.FailImportAttempt(f.ctx, fmt.Sprintf("att-%d", i), "KV-1", []domain.Event{ev})
		f.ok(err, "FailImportAttempt")
		if n != k+1 {
			f.t.Errorf("FailImportAttempt = %d failures, want %d", n, k+1)
		}
	}
	got, err := f.s.Import(f.ctx, "KV-1")
	f.ok(err, "Import")
	if got.Failures != max {
		f.t.Errorf("Import.Failures = %d, want %d", got.Failures, max)
	}
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(500, "", "KV-1"), max, f.now), store.ErrExhausted, "a reservation against a locked import")
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(501, "", "KV-404"), max, f.now), store.ErrNotFound, "a reservation against no import")
	_, err = f.s.FailImportAttempt(f.ctx, "att-502", "KV-404", nil)
	f.wantErr(err, store.ErrNotFound, "FailImportAttempt without an import")
	// Support re-imports the serial: the count starts again.
	im.Secret.Blob = []byte("SEALED-KV-1-AGAIN")
	f.ok(f.s.ReplaceImport(f.ctx, im), "ReplaceImport")
	got, err = f.s.Import(f.ctx, "KV-1")
	f.ok(err, "Import")
	if got.Failures != 0 || !got.Secret.Equal(im.Secret) {
		f.t.Errorf("after ReplaceImport: %+v", got)
	}
	f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(503, "", "KV-1"), max, f.now), "a reservation after ReplaceImport")
	im.Serial = "KV-2"
	f.ok(f.s.ReplaceImport(f.ctx, im), "ReplaceImport of a new serial")
}

// testCommitLogin checks the writes of a successful check: the attempt
// ends, the guard moves, the change and the session are stored; when the
// guard does not move nothing is written and the attempt stays.
func testCommitLogin(f *fixture) {
	id := f.identity("id-1")
	pw := f.active(id, "pw-1", device.KindPassword)
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	chip := f.active(id, "chip-1", device.KindChip)
	const max = 3
	ses := func(sid string, proofs ...string) *store.Session {
		return &store.Session{TokenHash: []byte(sid), ID: sid, IdentityID: "id-1", Level: store.LevelTwoFactor,
			Authenticators: proofs, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}
	}
	// The password step: a success without a session.
	f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(1, "pw-1", ""), max, f.now), "reserve")
	c, err := f.p.RecordSuccess(pw, f.now)
	f.ok(err, "RecordSuccess")
	ok, err := f.s.CommitLogin(f.ctx, store.Login{Attempt: "att-1", Change: c})
	if !ok || err != nil {
		f.t.Fatalf("CommitLogin without a session = %v, %v", ok, err)
	}
	// A code: the watermark moves once.
	f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(2, "kv-1", ""), max, f.now), "reserve")
	c, err = f.p.RecordSuccess(kv, f.now)
	f.ok(err, "RecordSuccess")
	ok, err = f.s.CommitLogin(f.ctx, store.Login{Attempt: "att-2", Change: c, Session: ses("ses-code", "pw-1", "kv-1"), OTP: &store.OTPGuard{Step: 100, Drift: -1}})
	if !ok || err != nil {
		f.t.Fatalf("CommitLogin with a code = %v, %v", ok, err)
	}
	kv = c.Authenticator
	if !f.live([]byte("ses-code")) {
		f.t.Error("the session of the code login is not there")
	}
	el, err := f.s.Element(f.ctx, "kv-1")
	f.ok(err, "Element")
	if el.Code.HighestStep != 100 || el.Code.Drift != -1 {
		f.t.Errorf("watermark %d, drift %d; want 100, -1", el.Code.HighestStep, el.Code.Drift)
	}
	// The same step again: nothing is written, the attempt stays.
	f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(3, "kv-1", ""), max, f.now), "reserve")
	c, err = f.p.RecordSuccess(kv, f.now)
	f.ok(err, "RecordSuccess")
	head := f.auditLen()
	ok, err = f.s.CommitLogin(f.ctx, store.Login{Attempt: "att-3", Change: c, Session: ses("ses-replay", "pw-1", "kv-1"), OTP: &store.OTPGuard{Step: 100}})
	if ok || err != nil {
		f.t.Fatalf("CommitLogin with a used step = %v, %v; want false, nil", ok, err)
	}
	if f.auditLen() != head || f.live([]byte("ses-replay")) || f.authenticator("kv-1").Version != kv.Version {
		f.t.Error("a refused guard wrote something")
	}
	for i := 4; i < 4+max-1; i++ {
		f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(i, "kv-1", ""), max, f.now), "reserve")
	}
	f.wantErr(f.s.ReserveAttempt(f.ctx, f.attempt(9, "kv-1", ""), max, f.now), store.ErrExhausted, "the refused login's attempt is still reserved")
	// A chip: the counter and the spent challenge.
	f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(10, "chip-1", ""), max, f.now), "reserve")
	c, err = f.p.RecordSuccess(chip, f.now)
	f.ok(err, "RecordSuccess")
	spent := store.Ceremony{Key: "spent:ch-1", IdentityID: "id-1", ExpiresAt: f.now.Add(time.Minute)}
	ok, err = f.s.CommitLogin(f.ctx, store.Login{Attempt: "att-10", Change: c, Session: ses("ses-chip", "pw-1", "chip-1"), Chip: &store.ChipGuard{Count: 7, Spent: spent}})
	if !ok || err != nil {
		f.t.Fatalf("CommitLogin with a chip = %v, %v", ok, err)
	}
	c2, err := f.p.RecordSuccess(c.Authenticator, f.now)
	f.ok(err, "RecordSuccess")
	_, err = f.s.CommitLogin(f.ctx, store.Login{Change: c2, Session: ses("ses-chip2", "pw-1", "chip-1"), Chip: &store.ChipGuard{Count: 8, Spent: spent}})
	f.wantErr(err, store.ErrDuplicate, "CommitLogin with a spent challenge")
	// A session token in use: the session, written last, is refused, and
	// nothing of the login stays (the guard, the records, the audit).
	head = f.auditLen()
	_, err = f.s.CommitLogin(f.ctx, store.Login{Change: c2, Session: ses("ses-chip", "pw-1", "chip-1"), Chip: &store.ChipGuard{Count: 8, Spent: store.Ceremony{Key: "spent:ch-dup", IdentityID: "id-1", ExpiresAt: f.now.Add(time.Minute)}}})
	f.wantErr(err, store.ErrDuplicate, "CommitLogin with a session token in use")
	if el, err := f.s.Element(f.ctx, "chip-1"); err != nil || el.Chip.SignCount != 7 || f.auditLen() != head || f.authenticator("chip-1").Version != c.Authenticator.Version {
		f.t.Errorf("a login refused at its session wrote something: sign count %v (%v), audit %d → %d", el.Chip, err, head, f.auditLen())
	}
	// A session whose other proof is no longer active is refused, and
	// nothing of the login is written.
	pw = f.authenticator("pw-1")
	f.apply(f.p.Suspend(pw, domain.Support("op-1"), domain.ReasonMisuse, f.now))
	spent.Key = "spent:ch-2"
	ok, err = f.s.CommitLogin(f.ctx, store.Login{Change: c2, Session: ses("ses-chip3", "pw-1", "chip-1"), Chip: &store.ChipGuard{Count: 9, Spent: spent}})
	f.wantErr(err, store.ErrConflict, "CommitLogin with a suspended proof (ok %v)", ok)
	el, err = f.s.Element(f.ctx, "chip-1")
	f.ok(err, "Element")
	if el.Chip.SignCount != 7 {
		f.t.Errorf("sign count %d after a refused login, want 7", el.Chip.SignCount)
	}
	// A guard with no element to move: ErrNotFound, nothing written.
	gone := kv
	gone.ID = "kv-404"
	c3, err := f.p.RecordSuccess(gone, f.now)
	f.ok(err, "RecordSuccess")
	head = f.auditLen()
	_, err = f.s.CommitLogin(f.ctx, store.Login{Change: c3, Session: ses("ses-gone", "kv-404"), OTP: &store.OTPGuard{Step: 200}})
	f.wantErr(err, store.ErrNotFound, "CommitLogin of a code device without an element")
	if f.auditLen() != head || f.live([]byte("ses-gone")) {
		f.t.Error("a login whose guard has no element wrote something")
	}
}

// testActivateCodeDevice checks the proof of possession of code devices:
// pending adds of one serial by several identities hold no secret; the
// first activation takes the import and the serial; the others are
// refused.
func testActivateCodeDevice(f *fixture) {
	id1, id2 := f.identity("id-1"), f.identity("id-2")
	im := store.Import{Serial: "KV-7", Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-KV-7")},
		OTPParams: store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}, ImportedAt: f.now}
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")
	var pend []domain.Authenticator
	for i, id := range []domain.Identity{id1, id2} {
		c := f.pending(id.ID, fmt.Sprintf("kv-%d", i+1), device.KindCodeDisplay, domain.Ref{Serial: "KV-7"})
		f.ok(f.s.CreateAuthenticator(f.ctx, c, store.Element{}), "a pending code device without an element for %s", id.ID)
		pend = append(pend, c.Authenticator)
		if _, err := f.s.Element(f.ctx, c.Authenticator.ID); !errors.Is(err, store.ErrNotFound) {
			f.t.Errorf("a pending code device has an element: %v", err)
		}
	}
	if got, err := f.s.Import(f.ctx, "KV-7"); err != nil || !got.Secret.Equal(im.Secret) {
		f.t.Fatalf("the import after two pending adds: %+v, %v", got, err)
	}
	act := func(i int, a domain.Authenticator, id domain.Identity, im store.Import) error {
		c, err := f.p.Activate(id, a, sys, f.now)
		f.ok(err, "Activate")
		if _, err := f.s.Import(f.ctx, "KV-7"); err == nil {
			f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(i, "", "KV-7"), 9, f.now), "reserve")
		}
		el := store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("RESEALED-" + a.ID)},
			OTPParams: im.OTPParams, HighestStep: 55}}
		return f.s.ActivateCodeDevice(f.ctx, store.CodeActivation{Attempt: fmt.Sprintf("att-%d", i), Change: c, Element: el, Import: im})
	}
	// Activation against an import that was replaced is refused.
	stale := im
	stale.Secret.Blob = []byte("SOMETHING ELSE")
	f.wantErr(act(1, pend[1], id2, stale), store.ErrNotFound, "activation against another secret")
	f.ok(act(2, pend[0], id1, im), "the first activation")
	a := f.authenticator("kv-1")
	el, err := f.s.Element(f.ctx, "kv-1")
	f.ok(err, "Element")
	if a.State != domain.StateActive || el.Code == nil || el.Code.HighestStep != 55 || string(el.Code.Secret.Blob) != "RESEALED-kv-1" {
		f.t.Errorf("after activation: %s, %+v", a.State, el.Code)
	}
	if _, err := f.s.Import(f.ctx, "KV-7"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("the import was not taken: %v", err)
	}
	f.wantErr(act(3, pend[1], id2, im), store.ErrNotFound, "the second identity's activation")
	if f.authenticator("kv-2").State != domain.StatePending {
		f.t.Error("the second identity's add changed")
	}
	// Even with the secret imported again, the serial is in use.
	f.ok(f.s.PutImport(f.ctx, im), "PutImport again")
	f.wantErr(act(4, pend[1], id2, im), store.ErrDuplicate, "activating a serial another identity activated")
	f.audit()
}

// testCommitLoginPrior checks a login that records the password's success
// with the second factor's (store.Login.Prior): both records move and the
// two successes are appended as one audit record that names both, in one
// transaction; a password that changed since it
// was read fails the whole login with ErrConflict and writes nothing; a
// prior success of another identity's authenticator is refused.
func testCommitLoginPrior(f *fixture) {
	id := f.identity("id-1")
	other := f.identity("id-2")
	pw := f.active(id, "pw-1", device.KindPassword)
	pw2 := f.active(other, "pw-2", device.KindPassword)
	chip := f.active(id, "chip-1", device.KindChip)
	const max = 3
	ses := func(sid string) *store.Session {
		return &store.Session{TokenHash: []byte(sid), ID: sid, IdentityID: "id-1", Level: store.LevelTwoFactor,
			Authenticators: []string{"pw-1", "chip-1"}, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}
	}
	login := func(n int, count uint32, prior domain.Authenticator, sid string) (bool, error) {
		f.ok(f.s.ReserveAttempt(f.ctx, f.attempt(n, "chip-1", ""), max, f.now), "reserve")
		c, err := f.p.RecordSuccess(chip, f.now)
		f.ok(err, "RecordSuccess")
		p, err := f.p.RecordSuccess(prior, f.now)
		f.ok(err, "RecordSuccess of the password")
		spent := store.Ceremony{Key: fmt.Sprintf("spent:ch-%d", n), IdentityID: "id-1", ExpiresAt: f.now.Add(time.Minute)}
		ok, err := f.s.CommitLogin(f.ctx, store.Login{Attempt: f.attempt(n, "", "").ID, Change: c, Prior: &p, PriorPlain: true, Session: ses(sid),
			Chip: &store.ChipGuard{Count: count, Spent: spent}})
		if ok {
			chip = c.Authenticator
		}
		f.s.EndAttempt(f.ctx, f.attempt(n, "", "").ID, nil)
		return ok, err
	}
	head := f.auditLen()
	ok, err := login(1, 5, pw, "ses-1")
	if !ok || err != nil {
		f.t.Fatalf("CommitLogin with a prior success = %v, %v", ok, err)
	}
	if got := f.authenticator("pw-1"); got.Version != pw.Version+1 || !got.LastUsedAt.Equal(f.now) {
		f.t.Errorf("the password after the login: version %d (want %d), last used %v", got.Version, pw.Version+1, got.LastUsedAt)
	}
	// One record for the login, the chip's success naming the password.
	if n := f.auditLen() - head; n != 1 {
		f.t.Errorf("%d audit records for a login with a prior success, want 1 (the chip's success, naming the password)", n)
	}
	if recs, err := f.s.ListAudit(f.ctx, "id-1", 0, 1000); err != nil || len(recs) == 0 {
		f.t.Errorf("ListAudit(id-1) = %d records, %v", len(recs), err)
	} else if rec, err := audit.FromStore(&recs[len(recs)-1]); err != nil {
		f.t.Errorf("the login's audit record: %v", err)
	} else if e := rec.Event(); e.Type != domain.EventLoginSucceeded || e.AuthenticatorID != "chip-1" ||
		e.Details["kind"] != string(device.KindChip) || e.Details[store.DetailFirstFactor] != "pw-1" ||
		e.Details[store.DetailFirstFactorKind] != string(device.KindPassword) {
		f.t.Errorf("the login's audit record: %s of %q, details %v; want %s of chip-1 naming the password pw-1",
			e.Type, e.AuthenticatorID, e.Details, domain.EventLoginSucceeded)
	}
	if !f.live([]byte("ses-1")) {
		f.t.Error("the session of the login is not there")
	}
	// The password as read before that login: a conflict, nothing written.
	head = f.auditLen()
	before := f.authenticator("chip-1")
	_, err = login(2, 6, pw, "ses-2")
	f.wantErr(err, store.ErrConflict, "CommitLogin with a stale prior success")
	if f.auditLen() != head || f.live([]byte("ses-2")) || f.authenticator("chip-1").Version != before.Version {
		f.t.Error("a login whose prior success conflicted wrote something")
	}
	// Another identity's password is refused.
	_, err = login(3, 7, pw2, "ses-3")
	f.wantErr(err, store.ErrInvalid, "CommitLogin with another identity's prior success")
	// The identity blocked after both factors were checked and before the
	// commit: no session, nothing written.
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	head = f.auditLen()
	before = f.authenticator("chip-1")
	_, err = login(4, 8, f.authenticator("pw-1"), "ses-4")
	f.wantErr(err, store.ErrConflict, "CommitLogin of a blocked identity")
	if f.auditLen() != head || f.live([]byte("ses-4")) || f.authenticator("chip-1").Version != before.Version || f.authenticator("pw-1").Version != pw.Version+1 {
		f.t.Error("a login of a blocked identity wrote something")
	}
}
