package client

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/authbench/authbench/sim/app"
)

// TestNoGoroutinesLeft runs ceremonies and checks that, once the server is
// closed and the idle connections are dropped, no goroutine of the client
// is left.
func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		f := newFake(t)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		c := f.client(t, Options{HTTPClient: &http.Client{Transport: tr}})
		ctx := context.Background()
		c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1"})
		ap, _ := app.New(app.Options{Seed: []byte{1}})
		a, err := EnrollApp(ctx, c, "p1", "", ap, ap.PIN())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoginApp(ctx, c, "p1", a.ID, ap, ap.PIN()); err != nil {
			t.Fatal(err)
		}
		c.CloseIdleConnections()
		f.srv.Close()
	}()
	// Goroutines end asynchronously after their connections close: poll
	// (generous guard, not a timing assertion).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
