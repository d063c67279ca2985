package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestWipeLeavesNoCopy writes secret material through the store, wipes it
// with permanent blocks (and replaces or consumes some of it), and checks
// that neither the database file nor its -wal file holds a copy afterwards
// (secure_delete plus the checkpoint after each wipe).
func TestWipeLeavesNoCopy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wipe.db")
	s := open(t, path)
	defer s.Close()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPolicy()
	sys := domain.System("test")

	secret := func(name string, n int) []byte {
		b := []byte("SEALED-" + name + "-")
		for len(b) < n {
			b = append(b, fmt.Sprintf("%s%04d", name, len(b))...)
		}
		return b[:n]
	}
	var (
		imported = secret("IMPORT", 64)
		otpOld   = secret("OTPOLD", 64)
		otpNew   = secret("OTPNEW", 64)
		chipKey  = secret("CHIPKEY", 77)
		appKey   = secret("APPKEY", 65)
		pin      = secret("PIN", 97)
		password = secret("PASSWORD", 6000) // larger than a page: overflow pages
	)
	all := map[string][]byte{"import": imported, "old OTP secret": otpOld, "new OTP secret": otpNew,
		"chip key": chipKey, "app key": appKey, "PIN verifier": pin, "password verifier": password}

	ic, err := domain.NewIdentity("id-1", sys, now)
	must(t, err)
	must(t, s.CreateIdentity(ctx, ic))
	id := ic.Identity
	must(t, s.PutImport(ctx, store.Import{Serial: "KV-1", Secret: store.Sealed{KeyID: "k1", Blob: imported}}))

	params := store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}
	adds := []struct {
		id   string
		kind device.Kind
		ref  domain.Ref
		el   store.Element
	}{
		{"kv-1", device.KindCodeDisplay, domain.Ref{Serial: "KV-1"}, store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: otpOld}, OTPParams: params}}},
		{"chip-1", device.KindChip, domain.Ref{CredentialID: "cred-1"}, store.Element{Chip: &store.ChipElement{PublicKey: chipKey}}},
		{"app-1", device.KindApp, domain.Ref{CredentialID: "appkey-1"}, store.Element{App: &store.AppElement{PublicKey: appKey, PINVerifier: string(pin)}}},
		{"pw-1", device.KindPassword, domain.Ref{}, store.Element{Password: &store.PasswordElement{Verifier: string(password)}}},
	}
	var auths []domain.Authenticator
	for _, a := range adds {
		existing, err := s.ListAuthenticators(ctx, id.ID)
		must(t, err)
		c, err := p.Add(id, existing, nil, domain.AddRequest{ID: a.id, Kind: a.kind, Ref: a.ref}, sys, now)
		must(t, err)
		must(t, s.CreateAuthenticator(ctx, c, a.el))
		c, err = p.Activate(id, c.Authenticator, sys, now)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
		auths = append(auths, c.Authenticator)
	}
	must(t, s.UpdateSecret(ctx, "kv-1", store.Sealed{KeyID: "k1", Blob: otpOld}, store.Sealed{KeyID: "k2", Blob: otpNew}))

	// Before the blocks, the live secrets are in the database file (so the
	// check below is not vacuous); the consumed and replaced ones are not.
	must(t, s.Checkpoint(ctx))
	files := readDB(t, path)
	for name, b := range all {
		live := name != "import" && name != "old OTP secret"
		if got := bytes.Contains(files, b[:min(len(b), 200)]); got != live {
			t.Errorf("before the blocks: %s in the files = %v, want %v", name, got, live)
		}
	}

	for _, a := range auths {
		c, err := p.Block(a, domain.Support("op-1"), domain.ReasonCompromised, now)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
	}
	// The store checkpoints after the wipes by itself, in the background,
	// within sqlite.ScrubWindow.
	if leftovers := waitScrubbed(t, path, all); len(leftovers) > 0 {
		t.Errorf("%v after the blocks: %s", sqlite.ScrubWindow, strings.Join(leftovers, "; "))
	}
	must(t, s.Close())
	files = readDB(t, path)
	for name, b := range all {
		if bytes.Contains(files, b[:32]) {
			t.Errorf("after Close: the %s is in the database files", name)
		}
	}
}

// TestWipeWindowWithReader: a wipe returns while a long read
// transaction pins the write-ahead log (no checkpoint on the request path
// waits for it), and the wiped key is gone from the database files within
// sqlite.ScrubWindow of the read's end.
func TestWipeWindowWithReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wipe.db")
	// A long busy timeout: a checkpoint on the request path would wait
	// for the reader that long.
	s, err := sqlite.Open(ctx, path, sqlite.Options{Chain: storetest.Chain{}, BusyTimeout: time.Hour})
	must(t, err)
	defer s.Close()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPolicy()
	key := []byte("SEALED-CHIPKEY-0123456789abcdef0123456789abcdef0123456789abcdef0123456789")

	c := activeChip(t, s, p, "id-1", "chip-1", "cred-1", key, now)

	// Another process's reader: a read transaction on the snapshot that
	// holds the key, open across the wipe.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	must(t, err)
	defer db.Close()
	rtx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	must(t, err)
	var n int
	must(t, rtx.QueryRow("SELECT COUNT(*) FROM chip_elements WHERE public_key IS NOT NULL").Scan(&n))
	if n != 1 {
		t.Fatalf("the reader sees %d live chip keys, want 1", n)
	}

	block, err := p.Block(c.Authenticator, domain.Support("op-1"), domain.ReasonCompromised, now)
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- s.ApplyChange(ctx, block) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the wipe waits for the reader: a checkpoint runs on the request path")
	}
	el, err := s.Element(ctx, "chip-1")
	must(t, err)
	if el.Chip == nil || el.Chip.PublicKey != nil || el.WipedAt.IsZero() {
		t.Fatalf("after the block the element is %+v, want wiped", el.Chip)
	}
	// The reader still pins the old snapshot: the key cannot have left the
	// log yet (so the check below is not vacuous).
	if !bytes.Contains(readDB(t, path), key) {
		t.Fatal("the key left the files while a reader still used the snapshot that holds it")
	}
	must(t, rtx.Rollback())
	if leftovers := waitScrubbed(t, path, map[string][]byte{"chip key": key}); len(leftovers) > 0 {
		t.Errorf("%v after the reader ended: %s", sqlite.ScrubWindow, strings.Join(leftovers, "; "))
	}
}

// TestWipeWindowUnderWrites: a block wipes a chip's key while other
// goroutines keep enrolling chips, reading, and blocking chips of their
// own, so that the writer never goes idle; ScrubWindow after the wipe's
// commit, neither the database file nor its -wal file holds the key.
// The checkpoints run beside the writer and between its batches, not in
// a pause of the writes.
func TestWipeWindowUnderWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wipe.db")
	s := open(t, path)
	defer s.Close()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPolicy()
	sys := domain.System("test")
	key := []byte("SEALED-CHIPKEY-UNDERLOAD-0123456789abcdef0123456789abcdef0123456789abcd")

	c := activeChip(t, s, p, "id-victim", "chip-v", "cred-v", key, now)

	// Load: writers enrolling chips (each with its own key) and readers.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("id-%d-%d", g, i)
				ic, err := domain.NewIdentity(id, sys, now)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.CreateIdentity(ctx, ic); err != nil {
					t.Error(err)
					return
				}
				ch, err := p.Add(ic.Identity, nil, nil, domain.AddRequest{ID: "chip-" + id, Kind: device.KindChip, Ref: domain.Ref{CredentialID: "cred-" + id}}, sys, now)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.CreateAuthenticator(ctx, ch, store.Element{Chip: &store.ChipElement{PublicKey: bytes.Repeat([]byte{byte(i)}, 65)}}); err != nil {
					t.Error(err)
					return
				}
				_, _ = s.Element(ctx, "chip-v")
				_, _ = s.AuthenticatorSet(ctx, "id-victim")
				if g%2 == 1 { // wipes of their own, continuously
					ch2, err := p.Activate(ic.Identity, ch.Authenticator, sys, now)
					if err == nil {
						err = s.ApplyChange(ctx, ch2)
					}
					if err == nil {
						var b domain.Change
						b, err = p.Block(ch2.Authenticator, domain.Support("op-2"), domain.ReasonCompromised, now)
						if err == nil {
							err = s.ApplyChange(ctx, b)
						}
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
				n.Add(1)
			}
		}(g)
	}
	time.Sleep(500 * time.Millisecond)

	block, err := p.Block(c.Authenticator, domain.Support("op-1"), domain.ReasonCompromised, now)
	must(t, err)
	must(t, s.ApplyChange(ctx, block))
	wiped := time.Now()
	before := n.Load()
	var firstClean time.Duration = -1
	for time.Since(wiped) < sqlite.ScrubWindow {
		if !bytes.Contains(readDB(t, path), key[:32]) && firstClean < 0 {
			firstClean = time.Since(wiped)
		}
		time.Sleep(20 * time.Millisecond)
	}
	found := bytes.Contains(readDB(t, path), key[:32])
	writes := n.Load() - before
	close(stop)
	wg.Wait()
	t.Logf("writes during the window: %d; first clean scan after %v", writes, firstClean)
	if writes == 0 {
		t.Fatal("no writes during the window: the test is vacuous")
	}
	if found {
		t.Errorf("%v after the wipe's commit, under continuous writes, the key is still in the database files", sqlite.ScrubWindow)
	}
}

// activeChip creates identity identityID with an active chip chipID of
// credential cred whose element holds key, and returns the chip's
// activation.
func activeChip(t *testing.T, s *sqlite.Store, p domain.Policy, identityID, chipID, cred string, key []byte, now time.Time) domain.Change {
	t.Helper()
	ctx := context.Background()
	sys := domain.System("test")
	ic, err := domain.NewIdentity(identityID, sys, now)
	must(t, err)
	must(t, s.CreateIdentity(ctx, ic))
	c, err := p.Add(ic.Identity, nil, nil, domain.AddRequest{ID: chipID, Kind: device.KindChip, Ref: domain.Ref{CredentialID: cred}}, sys, now)
	must(t, err)
	must(t, s.CreateAuthenticator(ctx, c, store.Element{Chip: &store.ChipElement{PublicKey: key}}))
	c, err = p.Activate(ic.Identity, c.Authenticator, sys, now)
	must(t, err)
	must(t, s.ApplyChange(ctx, c))
	return c
}

// waitScrubbed scans the database files at path for the secrets of all
// (any 32-byte fragment of each: an overflowing value is split over
// pages) until none is there, for up to sqlite.ScrubWindow, and returns
// what it still found then. It also waits for the -wal file to be
// truncated.
func waitScrubbed(t *testing.T, path string, all map[string][]byte) []string {
	t.Helper()
	deadline := time.Now().Add(sqlite.ScrubWindow)
	for {
		var found []string
		files := readDB(t, path)
		for name, b := range all {
			for off := 0; off+32 <= len(b); off += 32 {
				if i := bytes.Index(files, b[off:off+32]); i >= 0 {
					found = append(found, fmt.Sprintf("bytes %d.. of the %s are in the database files (at %d)", off, name, i))
					break
				}
			}
		}
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
			found = append(found, fmt.Sprintf("the -wal file has %d bytes, want 0", fi.Size()))
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readDB returns the database file and its -wal file (if any), concatenated.
func readDB(t *testing.T, path string) []byte {
	t.Helper()
	var out []byte
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
