package embedded_test

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store/sqlite"
)

// settle waits until the number of goroutines is at most n, or fails.
func settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a failure guard only
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestStartServesAndCloses(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	srv, err := embedded.Start(t.Context(), embedded.Options{Hasher: secrets.FastParams(), SweepEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.SupportToken == "" {
		t.Fatalf("%+v", srv)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/identities", strings.NewReader(`{"id":"alice","password":"pw"}`))
	req.Header.Set("Authorization", "Bearer "+srv.SupportToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if srv.Err() != nil {
		t.Fatal(srv.Err())
	}
	http.DefaultClient.CloseIdleConnections()
	settle(t, before)
	if _, err := http.Get(srv.URL + "/healthz"); err == nil {
		t.Fatal("still serving after Close")
	}
}

func TestStartRefusesPostgres(t *testing.T) {
	_, err := embedded.Start(t.Context(), embedded.Options{DB: "postgres://db/authbench"})
	if !errors.Is(err, embedded.ErrPostgres) {
		t.Fatalf("%v", err)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	_, err := embedded.Start(t.Context(), embedded.Options{Addr: "256.0.0.1:0", Hasher: secrets.FastParams()})
	if err == nil {
		t.Fatal("listening on a bad address worked")
	}
	settle(t, before)
}

// TestCheckpointsPeriodically: the server seals the audit chains every
// CheckpointEvery while it runs, and once more at Close, so that a clean
// shutdown leaves no record unsealed.
func TestCheckpointsPeriodically(t *testing.T) {
	keys, err := secrets.GenerateKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "authbench.db")
	srv, err := embedded.Start(t.Context(), embedded.Options{DB: db, Keyring: keys, Hasher: secrets.FastParams(), CheckpointEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{Token: srv.SupportToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sealed := func() int64 {
		t.Helper()
		v, err := c.VerifyAudit(ctx)
		if err != nil || !v.OK {
			t.Fatalf("VerifyAudit = %+v, %v", v, err)
		}
		return v.Checkpoints
	}
	for i, id := range []string{"alice", "bob"} {
		if _, err := c.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second) // a failure guard only
		for sealed() < int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint after the audited write %d", i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	n := sealed()
	if _, err := c.BlockIdentity(ctx, "alice", "misuse"); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	srv.Close()
	st, err := sqlite.Open(ctx, db, sqlite.Options{Chain: service.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := service.VerifyAuditLog(ctx, st, keys)
	if err != nil || !v.OK || v.Unsealed != 0 || int64(v.Checkpoints) <= n {
		t.Fatalf("after Close: %+v, %v; want every record sealed", v, err)
	}
}
