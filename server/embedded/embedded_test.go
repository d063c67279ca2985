package embedded_test

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
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
