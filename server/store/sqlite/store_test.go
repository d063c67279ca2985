package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// seed creates identity id-1 with an active code display kv-1, an active
// chip chip-1 and an active password pw-1.
func seed(t testing.TB, s store.Store) {
	t.Helper()
	ctx := context.Background()
	p := domain.DefaultPolicy()
	sys := domain.System("test")
	ic, err := domain.NewIdentity("id-1", sys, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIdentity(ctx, ic); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		id   string
		kind device.Kind
		ref  domain.Ref
		el   store.Element
	}{
		{"kv-1", device.KindCodeDisplay, domain.Ref{Serial: "KV-1"}, store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED")}}}},
		{"chip-1", device.KindChip, domain.Ref{CredentialID: "cred-1"}, store.Element{Chip: &store.ChipElement{PublicKey: []byte("COSE")}}},
		{"pw-1", device.KindPassword, domain.Ref{}, store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$x"}}},
	} {
		c, err := p.Add(ic.Identity, nil, nil, domain.AddRequest{ID: a.id, Kind: a.kind, Ref: a.ref}, sys, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAuthenticator(ctx, c, a.el); err != nil {
			t.Fatal(err)
		}
		if c, err = p.Activate(ic.Identity, c.Authenticator, sys, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

func auditRecords(t testing.TB, s store.Store) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	for r, err := range s.AuditRecords(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestTwoStoresOneFile runs two Stores on one file, as two processes would
// (each with its own write connection, meeting at SQLite's file lock): no
// write fails with SQLITE_BUSY, a code is accepted once, one of two
// conflicting changes wins, and the audit chain stays whole.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	seed(t, a)
	stores := []store.Store{a, b}
	const n = 64

	results := make([]error, n)
	accepted := make([]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			accepted[i], results[i] = stores[i%2].AdvanceOTPStep(ctx, "kv-1", 58_000_000, 0)
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i := range n {
		if results[i] != nil {
			t.Errorf("AdvanceOTPStep %d: %v", i, results[i])
		}
		if accepted[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("one code accepted %d times across two stores, want once", wins)
	}

	pw, err := a.Authenticator(ctx, "pw-1")
	if err != nil {
		t.Fatal(err)
	}
	p := domain.DefaultPolicy()
	start = make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := p.RecordFailure(pw, domain.Failure{Cause: domain.CauseWrongPassword}, t0)
			if err == nil {
				err = stores[i%2].ApplyChange(ctx, c)
			}
			results[i] = err
		}()
	}
	close(start)
	wg.Wait()
	wins = 0
	for i, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("ApplyChange %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d conflicting changes won across two stores, want 1", wins, n)
	}

	start = make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = stores[i%2].AppendAudit(ctx,
				domain.Event{Type: domain.EventLoginFailed, IdentityID: "id-1", Details: map[string]string{"i": strconv.Itoa(i)}, At: t0},
				domain.Event{Type: domain.EventLoginFailed, IdentityID: "id-1", Details: map[string]string{"i": strconv.Itoa(i), "second": "1"}, At: t0})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("AppendAudit %d: %v", i, err)
		}
	}
	recs := auditRecords(t, b)
	if err := storetest.VerifyChain(recs); err != nil {
		t.Errorf("audit chain written by two stores: %v", err)
	}
}

// TestCloseLeavesNoGoroutines checks that a Store's goroutines (the
// connection openers of database/sql) end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, path := range []string{":memory:", filepath.Join(t.TempDir(), "g.db")} {
		s := open(t, path)
		seed(t, s)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.AdvanceOTPStep(context.Background(), "kv-1", uint64(100+i), 0)
				s.Authenticator(context.Background(), "kv-1")
			}()
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	// Goroutines end asynchronously after Close; wait for them, with a
	// generous limit that only guards against a leak.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, err := sqlite.Open(ctx, ":memory:", sqlite.Options{})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open without a Chain: %v, want ErrInvalid", err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing", "dir", "x.db"), dir, garbage} {
		if s, err := sqlite.Open(ctx, path, sqlite.Options{Chain: storetest.Chain{}}); err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", path)
		}
	}
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	a, b := open(t, ""), open(t, ":memory:")
	defer a.Close()
	defer b.Close()
	seed(t, a)
	if _, err := b.Identity(context.Background(), "id-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a second in-memory store sees the first one's identity: %v", err)
	}
}

func TestTimeRange(t *testing.T) {
	s := open(t, "")
	defer s.Close()
	c, err := domain.NewIdentity("id-1", domain.System("test"), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIdentity(context.Background(), c); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a time in the year 3000: %v, want ErrInvalid", err)
	}
	// Expiry checks clamp instead.
	if _, err := s.SweepCeremonies(context.Background(), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("SweepCeremonies(3000): %v", err)
	}
}

// TestCorruptRows checks that rows altered behind the store's back come out
// as ErrInvalid, not as half-filled values or panics.
func TestCorruptRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "corrupt.db")
	s := open(t, path)
	defer s.Close()
	seed(t, s)
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, tc := range []struct {
		name, update string
		read         func() error
	}{
		{"identity state", `UPDATE identities SET state = 'zombie'`, func() error { _, err := s.Identity(ctx, "id-1"); return err }},
		{"authenticator state", `UPDATE authenticators SET state = 'zombie' WHERE id = 'pw-1'`, func() error { _, err := s.Authenticator(ctx, "pw-1"); return err }},
		{"authenticator kind", `UPDATE authenticators SET kind = 'abacus' WHERE id = 'chip-1'`, func() error { _, err := s.Element(ctx, "chip-1"); return err }},
		{"list with a bad row", `UPDATE authenticators SET failures = -1 WHERE id = 'kv-1'`, func() error { _, err := s.ListAuthenticators(ctx, "id-1"); return err }},
		{"OTP digits", `UPDATE code_elements SET digits = 99`, func() error { _, err := s.Element(ctx, "kv-1"); return err }},
		{"OTP algorithm", `UPDATE code_elements SET digits = 6, algorithm = 9`, func() error { _, err := s.Element(ctx, "kv-1"); return err }},
		{"OTP step", `UPDATE code_elements SET algorithm = 1; UPDATE authenticators SET failures = 0, highest_step = -5 WHERE id = 'kv-1'`, func() error { _, err := s.Element(ctx, "kv-1"); return err }},
	} {
		if _, err := raw.ExecContext(ctx, "PRAGMA ignore_check_constraints = 1; "+tc.update); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// The store holds what it read in memory; it reads the file
		// again once it forgot.
		sqlite.ForgetMirror(s)
		if err := tc.read(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
}

// TestKill9KeepsAcknowledged kills a process that is advancing an OTP
// watermark and appending audit records, and checks that every change it
// acknowledged before it died is in the database (synchronous=FULL, WAL).
func TestKill9KeepsAcknowledged(t *testing.T) {
	if path := os.Getenv("AUTHBENCH_STORE_KILL9_CHILD"); path != "" {
		kill9Child(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "kill9.db")
	s := open(t, path)
	seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsAcknowledged$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AUTHBENCH_STORE_KILL9_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	guard := time.After(60 * time.Second)
read:
	for acked < 150 {
		select {
		case l, ok := <-lines:
			if !ok {
				break read
			}
			if n, ok := strings.CutPrefix(l, "ack "); ok {
				acked, _ = strconv.Atoi(n)
			}
		case <-guard:
			break read
		}
	}
	cmd.Process.Kill() // SIGKILL: no deferred Close, no checkpoint
	for range lines {
	}
	cmd.Wait()
	if acked < 150 {
		t.Fatalf("the child acknowledged only %d changes", acked)
	}

	s = open(t, path)
	defer s.Close()
	el, err := s.Element(context.Background(), "kv-1")
	if err != nil {
		t.Fatal(err)
	}
	if el.Code.HighestStep < uint64(acked) {
		t.Errorf("highest step %d after kill -9, but %d was acknowledged", el.Code.HighestStep, acked)
	}
	recs := auditRecords(t, s)
	if err := storetest.VerifyChain(recs); err != nil {
		t.Errorf("audit chain after kill -9: %v", err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == domain.EventLoginSucceeded {
			n++
		}
	}
	if n < acked {
		t.Errorf("%d audit records after kill -9, but %d were acknowledged", n, acked)
	}
}

func kill9Child(path string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{Chain: storetest.Chain{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	deadline := time.Now().Add(60 * time.Second) // the parent kills us long before
	for step := uint64(1); time.Now().Before(deadline); step++ {
		ok, err := s.AdvanceOTPStep(ctx, "kv-1", step, 0)
		if err != nil || !ok {
			fmt.Fprintln(os.Stderr, "advance:", ok, err)
			os.Exit(2)
		}
		err = s.AppendAudit(ctx, domain.Event{Type: domain.EventLoginSucceeded, IdentityID: "id-1", AuthenticatorID: "kv-1", At: t0})
		if err != nil {
			fmt.Fprintln(os.Stderr, "audit:", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", step)
	}
	os.Exit(0)
}
