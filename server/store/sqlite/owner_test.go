package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

// The attempts in flight of a writing store live in this process's memory,
// so a second process must not write the same database: Open refuses it
// with ErrInUse while a writing store holds the file, and takes it once the
// store is closed. Stores of one process on one file share the attempts.

// TestOpenHeldByAnotherProcess runs this test binary again as the second
// process.
func TestOpenHeldByAnotherProcess(t *testing.T) {
	if path := os.Getenv("AUTHBENCH_SQLITE_SECOND_OPEN"); path != "" {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{Chain: storetest.Chain{}})
		switch {
		case errors.Is(err, sqlite.ErrInUse):
			os.Stdout.WriteString("in use: " + err.Error())
		case err != nil:
			os.Stdout.WriteString("error: " + err.Error())
		default:
			s.Close()
			os.Stdout.WriteString("opened")
		}
		return
	}
	path := filepath.Join(t.TempDir(), "authbench.db")
	second := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpenHeldByAnotherProcess$")
		cmd.Env = append(os.Environ(), "AUTHBENCH_SQLITE_SECOND_OPEN="+path)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("the second process: %v\n%s", err, out)
		}
		return string(out)
	}
	s := open(t, path)
	if got := second(); !strings.Contains(got, "in use:") || !strings.Contains(got, "PostgreSQL") {
		t.Errorf("a second process opened the database a store writes: %q", got)
	}
	// A read-only store (a verifier) takes no lock.
	ro, err := sqlite.Open(context.Background(), path, sqlite.Options{Chain: storetest.Chain{}, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open beside the writer: %v", err)
	}
	ro.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := second(); !strings.Contains(got, "opened") {
		t.Errorf("after Close, a second process could not open the database: %q", got)
	}
}

// TestAttemptsSharedInProcess: two writing stores of one process on one
// file count each other's attempts in flight.
func TestAttemptsSharedInProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authbench.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sys := domain.Support("op-1")
	ic, err := domain.NewIdentity("id-1", sys, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateIdentity(ctx, ic); err != nil {
		t.Fatal(err)
	}
	pw := domain.Authenticator{ID: "pw-1", IdentityID: "id-1", Kind: device.KindPassword, State: domain.StatePending, CreatedAt: now, Version: 1}
	added := domain.Change{Authenticator: pw, Events: []domain.Event{{Type: domain.EventAdded, IdentityID: "id-1", AuthenticatorID: "pw-1", Actor: sys, At: now}}}
	if err := a.CreateAuthenticator(ctx, added, store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$pw"}}); err != nil {
		t.Fatal(err)
	}
	act, err := domain.Policy{}.Activate(ic.Identity, pw, sys, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyChange(ctx, act); err != nil {
		t.Fatal(err)
	}
	reserve := func(s *sqlite.Store, n string) error {
		return s.ReserveAttempt(ctx, store.Attempt{ID: n, AuthenticatorID: "pw-1", ExpiresAt: now.Add(time.Minute)}, 3, now)
	}
	for i, s := range []*sqlite.Store{a, b, a} {
		if err := reserve(s, "att-"+string(rune('0'+i))); err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
	}
	if err := reserve(b, "att-x"); !errors.Is(err, store.ErrExhausted) {
		t.Errorf("a fourth reservation through the other store: %v, want ErrExhausted", err)
	}
}
