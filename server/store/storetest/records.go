package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

func testTombstones(f *fixture) {
	t1 := domain.Tombstone{IdentityID: "id-1", AuthenticatorID: "kv-1", Kind: device.KindCodeDisplay,
		Ref: domain.Ref{Serial: "S-1"}, Reason: domain.ReasonLost, BlockedAt: f.now, By: domain.Owner("id-1", "pw-1")}
	t2 := domain.Tombstone{IdentityID: "id-2", AuthenticatorID: "chip-1", Kind: device.KindChip,
		Ref: domain.Ref{Serial: "S-1", CredentialID: "C-1"}, Reason: domain.ReasonEscalation, BlockedAt: f.now.Add(time.Second), By: domain.System("login")}
	t3 := domain.Tombstone{IdentityID: "id-2", AuthenticatorID: "app-1", Kind: device.KindApp,
		Ref: domain.Ref{CredentialID: "C-2"}, Reason: domain.ReasonCompromised, BlockedAt: f.now.Add(2 * time.Second), By: domain.Support("op-1")}
	for _, ts := range []domain.Tombstone{t1, t2, t3} {
		f.ok(f.s.PutTombstone(f.ctx, ts), "PutTombstone %s", ts.AuthenticatorID)
	}
	f.wantErr(f.s.PutTombstone(f.ctx, t1), store.ErrDuplicate, "PutTombstone twice")
	f.wantErr(f.s.PutTombstone(f.ctx, domain.Tombstone{Kind: device.KindApp}), store.ErrInvalid, "PutTombstone without IDs")
	// The credential of a tombstone is registered for good: nobody adds
	// it again, whether the tombstone came from a block or from here.
	f.identity("id-9")
	again := f.pending("id-9", "chip-9", device.KindChip, domain.Ref{CredentialID: "C-1"})
	f.wantErr(f.s.CreateAuthenticator(f.ctx, again, ElementFor(device.KindChip, "chip-9")), store.ErrDuplicate,
		"CreateAuthenticator with the credential ID of a tombstone")
	for _, tc := range []struct {
		ref  domain.Ref
		want []domain.Tombstone
	}{
		{domain.Ref{}, nil},
		{domain.Ref{Serial: "S-1"}, []domain.Tombstone{t1, t2}},
		{domain.Ref{CredentialID: "C-1"}, []domain.Tombstone{t2}},
		{domain.Ref{CredentialID: "C-2", Serial: "S-9"}, []domain.Tombstone{t3}},
		{domain.Ref{CredentialID: "C-2", Serial: "S-1"}, []domain.Tombstone{t1, t2, t3}},
		{domain.Ref{Serial: "S-9"}, nil},
	} {
		got, err := f.s.FindTombstones(f.ctx, tc.ref)
		f.ok(err, "FindTombstones(%+v)", tc.ref)
		if len(got) != len(tc.want) {
			f.t.Errorf("FindTombstones(%+v) = %+v, want %+v", tc.ref, got, tc.want)
			continue
		}
		for i := range got {
			if !sameTombstone(got[i], tc.want[i]) {
				f.t.Errorf("FindTombstones(%+v)[%d] = %+v, want %+v (oldest first)", tc.ref, i, got[i], tc.want[i])
			}
		}
	}
	// What CheckAdd makes of them.
	id := f.identity("id-3")
	err := f.p.CheckAdd(id, nil, device.KindCodeDisplay, domain.Ref{Serial: "S-1"}, mustFind(f, domain.Ref{Serial: "S-1"}))
	f.wantErr(err, domain.ErrSerialRevoked, "CheckAdd of a revoked serial")
	err = f.p.CheckAdd(id, nil, device.KindChip, domain.Ref{CredentialID: "C-1", Serial: "S-1"}, mustFind(f, domain.Ref{CredentialID: "C-1", Serial: "S-1"}))
	f.wantErr(err, domain.ErrCredentialRevoked, "CheckAdd of a revoked chip credential")
	err = f.p.CheckAdd(id, nil, device.KindChip, domain.Ref{CredentialID: "C-new", Serial: "S-1"}, mustFind(f, domain.Ref{CredentialID: "C-new", Serial: "S-1"}))
	if err != nil {
		f.t.Errorf("CheckAdd of the same chip with a new credential: %v", err)
	}
}

func mustFind(f *fixture, ref domain.Ref) []domain.Tombstone {
	f.t.Helper()
	ts, err := f.s.FindTombstones(f.ctx, ref)
	f.ok(err, "FindTombstones")
	return ts
}

func testImports(f *fixture) {
	im := store.Import{Serial: "KV-100", Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-PSKC-KV-100")},
		OTPParams: store.OTPParams{Digits: 8, Period: 60 * time.Second, Algorithm: otp.SHA256}, ImportedAt: f.now}
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")
	f.wantErr(f.s.PutImport(f.ctx, im), store.ErrDuplicate, "PutImport twice")
	for name, bad := range map[string]store.Import{
		"no serial":  {Secret: im.Secret},
		"no secret":  {Serial: "X"},
		"no key ID":  {Serial: "X", Secret: store.Sealed{Blob: []byte("b")}},
		"bad digits": {Serial: "X", Secret: im.Secret, OTPParams: store.OTPParams{Digits: 9}},
		"bad alg":    {Serial: "X", Secret: im.Secret, OTPParams: store.OTPParams{Algorithm: 7}},
	} {
		f.wantErr(f.s.PutImport(f.ctx, bad), store.ErrInvalid, "PutImport with %s", name)
	}
	got, err := f.s.Import(f.ctx, "KV-100")
	f.ok(err, "Import")
	if !sameImport(got, im) {
		f.t.Errorf("Import = %+v, want %+v", got, im)
	}
	_, err = f.s.Import(f.ctx, "KV-404")
	f.wantErr(err, store.ErrNotFound, "Import(unknown)")
	got, err = f.s.TakeImport(f.ctx, "KV-100")
	f.ok(err, "TakeImport")
	if !sameImport(got, im) {
		f.t.Errorf("TakeImport = %+v, want %+v", got, im)
	}
	_, err = f.s.TakeImport(f.ctx, "KV-100")
	f.wantErr(err, store.ErrNotFound, "TakeImport twice")
	_, err = f.s.Import(f.ctx, "KV-100")
	f.wantErr(err, store.ErrNotFound, "Import after TakeImport")

	// Adding the code device consumes its import in the same transaction.
	im.Serial = "KV-200"
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")
	f.identity("id-1")
	c := f.pending("id-1", "kv-200", device.KindCodeDisplay, domain.Ref{Serial: "KV-200"})
	el := store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("RESEALED-FOR-kv-200")}, OTPParams: im.OTPParams}}
	f.ok(f.s.CreateAuthenticator(f.ctx, c, el), "CreateAuthenticator")
	_, err = f.s.Import(f.ctx, "KV-200")
	f.wantErr(err, store.ErrNotFound, "Import after the device was added")
}

func sameImport(a, b store.Import) bool {
	return a.Serial == b.Serial && a.Secret.Equal(b.Secret) && a.OTPParams == b.OTPParams && a.ImportedAt.Equal(b.ImportedAt)
}

func testImportsConcurrentTake(f *fixture) {
	im := store.Import{Serial: "KV-1", Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED")}}
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")
	errs := race(Concurrency, func(int) error {
		_, err := f.s.TakeImport(f.ctx, "KV-1")
		return err
	})
	if wins := f.countWins(errs, store.ErrNotFound, "concurrent TakeImport"); wins != 1 {
		f.t.Errorf("the import was taken %d times, want once", wins)
	}
}

func testCeremonies(f *fixture) {
	c := store.Ceremony{Key: "challenge-1", IdentityID: "id-1", Data: []byte(`{"challenge":"abc"}`), ExpiresAt: f.now.Add(time.Minute)}
	f.ok(f.s.PutCeremony(f.ctx, c), "PutCeremony")
	f.wantErr(f.s.PutCeremony(f.ctx, c), store.ErrDuplicate, "PutCeremony twice")
	f.wantErr(f.s.PutCeremony(f.ctx, store.Ceremony{Key: "x"}), store.ErrInvalid, "PutCeremony without expiry")
	f.wantErr(f.s.PutCeremony(f.ctx, store.Ceremony{ExpiresAt: f.now}), store.ErrInvalid, "PutCeremony without key")

	got, err := f.s.TakeCeremony(f.ctx, "challenge-1", f.now.Add(59*time.Second))
	f.ok(err, "TakeCeremony")
	if got.Key != c.Key || got.IdentityID != c.IdentityID || !bytes.Equal(got.Data, c.Data) || !got.ExpiresAt.Equal(c.ExpiresAt) {
		f.t.Errorf("TakeCeremony = %+v, want %+v", got, c)
	}
	_, err = f.s.TakeCeremony(f.ctx, "challenge-1", f.now)
	f.wantErr(err, store.ErrNotFound, "TakeCeremony twice (a challenge is used once)")

	// Expired at exactly ExpiresAt; an expired ceremony is gone.
	c.Key = "challenge-2"
	f.ok(f.s.PutCeremony(f.ctx, c), "PutCeremony")
	_, err = f.s.TakeCeremony(f.ctx, "challenge-2", c.ExpiresAt)
	f.wantErr(err, store.ErrNotFound, "TakeCeremony after expiry")
	f.ok(f.s.PutCeremony(f.ctx, c), "PutCeremony again after the expired one was taken")

	// No data and no identity (a discoverable login) are fine.
	f.ok(f.s.PutCeremony(f.ctx, store.Ceremony{Key: "bare", ExpiresAt: f.now.Add(time.Hour)}), "PutCeremony(bare)")
	got, err = f.s.TakeCeremony(f.ctx, "bare", f.now)
	f.ok(err, "TakeCeremony(bare)")
	if got.IdentityID != "" || len(got.Data) != 0 {
		f.t.Errorf("TakeCeremony(bare) = %+v", got)
	}

	for i := range 5 {
		f.ok(f.s.PutCeremony(f.ctx, store.Ceremony{Key: fmt.Sprint("sweep-", i), ExpiresAt: f.now.Add(time.Duration(i) * time.Minute)}), "PutCeremony")
	}
	// Expiring: challenge-2 (+1 min) and sweep-0..2 (+0..2 min) at +2 min.
	n, err := f.s.SweepCeremonies(f.ctx, f.now.Add(2*time.Minute))
	f.ok(err, "SweepCeremonies")
	if n != 4 {
		f.t.Errorf("SweepCeremonies removed %d, want 4", n)
	}
	if _, err := f.s.TakeCeremony(f.ctx, "sweep-3", f.now); err != nil {
		f.t.Errorf("a live ceremony was swept: %v", err)
	}
}

func testCeremoniesConcurrentTake(f *fixture) {
	f.ok(f.s.PutCeremony(f.ctx, store.Ceremony{Key: "once", Data: []byte("x"), ExpiresAt: f.now.Add(time.Minute)}), "PutCeremony")
	errs := race(Concurrency, func(int) error {
		_, err := f.s.TakeCeremony(f.ctx, "once", f.now)
		return err
	})
	if wins := f.countWins(errs, store.ErrNotFound, "concurrent TakeCeremony"); wins != 1 {
		f.t.Errorf("the challenge was taken %d times, want once", wins)
	}
}

func testSessions(f *fixture) {
	id := f.identity("id-1")
	f.active(id, "pw-1", device.KindPassword)
	f.active(id, "kv-1", device.KindCodeDisplay)
	hash := bytes.Repeat([]byte{0x42}, 32)
	s := store.Session{TokenHash: hash, ID: "ses-1", IdentityID: "id-1", Level: store.LevelTwoFactor,
		Authenticators: []string{"pw-1", "kv-1"}, CreatedAt: f.now, ExpiresAt: f.now.Add(15 * time.Minute)}
	f.ok(f.s.PutSession(f.ctx, s), "PutSession")
	f.wantErr(f.s.PutSession(f.ctx, s), store.ErrDuplicate, "PutSession twice")
	sameID := s
	sameID.TokenHash = bytes.Repeat([]byte{0x45}, 32)
	f.wantErr(f.s.PutSession(f.ctx, sameID), store.ErrDuplicate, "PutSession with the ID of another session of the identity")
	other := s
	other.TokenHash = bytes.Repeat([]byte{0x43}, 32)
	other.ID = "ses-other"
	other.IdentityID = "nobody"
	f.wantErr(f.s.PutSession(f.ctx, other), store.ErrNotFound, "PutSession for an unknown identity")
	f.wantErr(f.s.PutSession(f.ctx, store.Session{IdentityID: "id-1", ExpiresAt: f.now}), store.ErrInvalid, "PutSession without a token hash")
	noProof := s
	noProof.TokenHash, noProof.ID, noProof.Authenticators = []byte{9}, "ses-9", nil
	f.wantErr(f.s.PutSession(f.ctx, noProof), store.ErrInvalid, "PutSession without proving authenticators")

	got, err := f.s.Session(f.ctx, hash, f.now.Add(time.Minute))
	f.ok(err, "Session")
	if !bytes.Equal(got.TokenHash, hash) || got.ID != "ses-1" || got.IdentityID != "id-1" || got.Level != store.LevelTwoFactor ||
		!slices.Equal(got.Authenticators, []string{"pw-1", "kv-1"}) || !got.CreatedAt.Equal(s.CreatedAt) || !got.ExpiresAt.Equal(s.ExpiresAt) {
		f.t.Errorf("Session = %+v, want %+v", got, s)
	}
	_, err = f.s.Session(f.ctx, hash, s.ExpiresAt)
	f.wantErr(err, store.ErrNotFound, "Session at its expiry")
	_, err = f.s.Session(f.ctx, bytes.Repeat([]byte{0x44}, 32), f.now)
	f.wantErr(err, store.ErrNotFound, "Session(unknown)")

	f.ok(f.s.DeleteSession(f.ctx, hash), "DeleteSession")
	_, err = f.s.Session(f.ctx, hash, f.now)
	f.wantErr(err, store.ErrNotFound, "Session after DeleteSession")
	f.ok(f.s.DeleteSession(f.ctx, hash), "DeleteSession twice")

	for i := range 4 {
		x := s
		x.TokenHash = []byte{byte(i)}
		x.ID = fmt.Sprintf("ses-x%d", i)
		x.ExpiresAt = f.now.Add(time.Duration(i+1) * time.Minute)
		f.ok(f.s.PutSession(f.ctx, x), "PutSession %d", i)
	}
	n, err := f.s.SweepSessions(f.ctx, f.now.Add(2*time.Minute))
	f.ok(err, "SweepSessions")
	if n != 2 {
		f.t.Errorf("SweepSessions removed %d, want 2", n)
	}
	if _, err := f.s.Session(f.ctx, []byte{3}, f.now); err != nil {
		f.t.Errorf("a live session was swept: %v", err)
	}
	list, err := f.s.ListSessions(f.ctx, "id-1", f.now)
	f.ok(err, "ListSessions")
	if len(list) != 2 || list[0].ID != "ses-x2" || list[1].ID != "ses-x3" {
		f.t.Errorf("ListSessions = %+v, want ses-x2 and ses-x3", list)
	}
	f.wantErr(f.s.EndSession(f.ctx, "id-2", "ses-x2"), store.ErrNotFound, "EndSession of another identity's session")
	f.ok(f.s.EndSession(f.ctx, "id-1", "ses-x2"), "EndSession")
	f.wantErr(f.s.EndSession(f.ctx, "id-1", "ses-x2"), store.ErrNotFound, "EndSession twice")
	if _, err := f.s.Session(f.ctx, []byte{2}, f.now); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Session after EndSession: %v", err)
	}
}

func testClose(f *fixture) {
	f.identity("id-1")
	f.closed = true
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("Close: %v", err)
	}
	if _, err := f.s.Identity(f.ctx, "id-1"); err == nil {
		f.t.Errorf("Identity after Close succeeded")
	}
	if _, err := f.s.AdvanceOTPStep(f.ctx, "a", 1, 0); err == nil {
		f.t.Errorf("AdvanceOTPStep after Close succeeded")
	}
	if err := f.s.AppendAudit(f.ctx, event("id-1", 0, f.now)); err == nil {
		f.t.Errorf("AppendAudit after Close succeeded")
	}
	for _, err := range f.s.AuditRecords(f.ctx) {
		if err == nil {
			f.t.Errorf("AuditRecords after Close yielded a record")
		}
		break
	}
}

// testSealedKeys: SealedKeys counts the OTP secrets of code devices and the
// secrets of PSKC imports by master key ID, with one sample each, and
// forgets wiped secrets and taken imports.
func testSealedKeys(f *fixture) {
	keys, err := f.s.SealedKeys(f.ctx)
	f.ok(err, "SealedKeys of an empty store")
	if len(keys) != 0 {
		f.t.Fatalf("SealedKeys of an empty store = %+v, want none", keys)
	}
	id := f.identity("id-1")
	f.active(id, "pw-1", device.KindPassword)
	f.active(id, "app-1", device.KindApp)
	f.active(id, "chip-1", device.KindChip)
	keys, err = f.s.SealedKeys(f.ctx)
	f.ok(err, "SealedKeys")
	if len(keys) != 0 {
		f.t.Fatalf("SealedKeys with a password, an app and a chip (nothing sealed) = %+v, want none", keys)
	}

	f.active(id, "kv-1", device.KindCodeDisplay)                // k1, see elementFor
	blocked := f.active(id, "kv-2", device.KindAudioCodeReader) // k1, then wiped
	for _, im := range []store.Import{
		{Serial: "S-2", Secret: store.Sealed{KeyID: "k2", Blob: []byte("SEALED-S-2")}},
		{Serial: "S-1", Secret: store.Sealed{KeyID: "k2", Blob: []byte("SEALED-S-1")}},
		{Serial: "S-3", Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-S-3")}},
		{Serial: "S-4", Secret: store.Sealed{KeyID: "k3", Blob: []byte("SEALED-S-4")}},
	} {
		f.ok(f.s.PutImport(f.ctx, im), "PutImport %s", im.Serial)
	}
	_, err = f.s.TakeImport(f.ctx, "S-4")
	f.ok(err, "TakeImport")
	f.apply(f.p.Block(blocked, sys, domain.ReasonLost, f.now))

	keys, err = f.s.SealedKeys(f.ctx)
	f.ok(err, "SealedKeys")
	want := []store.SealedKey{
		{KeyID: "k1", Count: 2, Sample: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-OTP-kv-1")}, AuthenticatorID: "kv-1"},
		{KeyID: "k2", Count: 2, Sample: store.Sealed{KeyID: "k2", Blob: []byte("SEALED-S-1")}, Serial: "S-1"},
	}
	if len(keys) != len(want) {
		f.t.Fatalf("SealedKeys = %+v, want %+v", keys, want)
	}
	for i := range want {
		g, w := keys[i], want[i]
		if g.KeyID != w.KeyID || g.Count != w.Count || !g.Sample.Equal(w.Sample) || g.AuthenticatorID != w.AuthenticatorID || g.Serial != w.Serial {
			f.t.Errorf("SealedKeys[%d] = %+v, want %+v", i, g, w)
		}
	}
}
