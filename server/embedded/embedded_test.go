package embedded_test

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
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
	srv, err := embedded.Start(t.Context(), embedded.Options{Hasher: secrets.FastParams(), SweepEvery: time.Millisecond, Wrap: apitest.ForTest(t).Wrap})
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

// TestStartChecksMasterKey: a new master key file is made only for a store
// that holds nothing sealed; a store with sealed secrets is not served
// without the key that sealed them, and the key file is not made.
func TestStartChecksMasterKey(t *testing.T) {
	dir := t.TempDir()
	db, keyFile := filepath.Join(dir, "authbench.db"), filepath.Join(dir, "master.key")
	pskcKey := []byte("0123456789abcdef")
	opts := embedded.Options{DB: db, NewMasterKeyFile: keyFile, Hasher: secrets.FastParams(), PSKCKey: pskcKey}
	srv, err := embedded.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.LoadFile(keyFile, nil)
	if err != nil {
		t.Fatalf("the new key file: %v", err)
	}
	doc, err := servicetest.PSKC(pskcKey, servicetest.CodeDevice{Serial: "KV-1", Secret: []byte("twenty bytes secret!")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Service.ImportPSKC(t.Context(), domain.Support("op"), doc); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	other, err := secrets.GenerateKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]embedded.Options{
		"no key file": opts,
		"random key":  {DB: db},
		"another key": {DB: db, Keyring: other},
	} {
		_, err := embedded.Start(t.Context(), o)
		var mk *service.MasterKeyError
		if !errors.As(err, &mk) || !errors.Is(err, service.ErrMasterKey) || mk.Sealed != 1 || mk.Missing[0].KeyID != keys.Current() {
			t.Fatalf("%s: Start = %v, want a *service.MasterKeyError for 1 secret under %s", name, err, keys.Current())
		}
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key file was made for a store with sealed secrets: %v", err)
	}
	srv, err = embedded.Start(t.Context(), embedded.Options{DB: db, Keyring: keys})
	if err != nil {
		t.Fatalf("with the right key: %v", err)
	}
	srv.Close()
}
