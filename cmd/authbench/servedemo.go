package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/sim/code"
)

// The pages' demo (`authbench serve --demo`): a throw-away server on a
// temporary database with a ready-made person, whose second factor is a
// simulated code display that shows its code in the terminal. It runs
// until interrupted.

// The demo's person.
const (
	demoPerson   = "anna"
	demoPassword = "mitid-demo-password"
	demoSupport  = "demo-support"
)

// demoPages prepares the demo: the person with a password and an active
// code display (its secret imported from PSKC, as a provisioning station
// delivers it). It returns the display.
func demoPages(ctx context.Context, srv *embedded.Server, pskcKey []byte) (*code.Device, error) {
	dev, err := code.New(code.Options{Kind: device.KindCodeDisplay, Seed: []byte("authbench serve --demo " + srv.Addr), Serial: "KV-DEMO-0001"})
	if err != nil {
		return nil, err
	}
	t := dev.TOTP()
	var doc bytes.Buffer
	err = pskc.Write(&doc, []pskc.Key{{Serial: dev.Serial(), Manufacturer: "authbench", Model: string(dev.Kind()), ID: "demo-1",
		Algorithm: pskc.TOTP, Hash: t.Algorithm, Digits: t.Digits, Period: t.Period, Secret: t.Secret}}, pskc.EncryptOptions{Key: pskcKey})
	if err != nil {
		return nil, err
	}
	svc, by := srv.Service, domain.Support(demoSupport)
	if _, err := svc.ImportPSKC(ctx, by, doc.Bytes()); err != nil {
		return nil, err
	}
	if _, err := svc.CreateIdentity(ctx, by, service.CreateIdentityRequest{ID: demoPerson, Password: demoPassword}); err != nil {
		return nil, err
	}
	res, err := svc.AddAuthenticator(ctx, by, demoPerson, service.AddRequest{Kind: string(device.KindCodeDisplay), Serial: dev.Serial(), Label: "demo display"})
	if err != nil {
		return nil, err
	}
	// Activated with the code of the step before (within the accepted
	// skew), so that the code the display shows now logs in at once.
	prev, _, err := t.At(time.Now().Add(-t.Period))
	if err == nil {
		_, err = svc.Activate(ctx, by, demoPerson, res.Authenticator.ID, service.ActivateRequest{Code: prev})
	}
	return dev, err
}

// printDemo says how to use the demo's pages.
func printDemo(w io.Writer, srv *embedded.Server, dev *code.Device) {
	base := pagesURL(srv.URL)
	fmt.Fprintf(w, `
The pages are ready: %s/
  Log in as the ready-made person:
    user ID   %s
    password  %s
    then the code of the simulated MitID code display %s, shown below every 30 seconds.
  Add a chip on the pages with a FIDO security key, or with Chromium's DevTools
  (More tools > WebAuthn > Enable virtual authenticator environment > Add).
  Support console: %s/support with the support token
    %s
Stop with Ctrl-C; everything is forgotten then.

`, base, demoPerson, demoPassword, dev.Serial(), base, srv.SupportToken)
}

// pagesURL is the address a browser should open: localhost rather than
// the loopback address, because WebAuthn's relying party is localhost.
func pagesURL(u string) string {
	for _, lo := range []string{"://127.0.0.1:", "://[::1]:"} {
		if i := strings.Index(u, lo); i >= 0 {
			return u[:i] + "://localhost:" + u[i+len(lo):]
		}
	}
	return u
}

// showCodes prints the display's code at every new time step until ctx
// ends.
func showCodes(ctx context.Context, w io.Writer, dev *code.Device) {
	t := dev.TOTP()
	for {
		now := time.Now()
		c, step, err := t.At(now)
		if err != nil {
			return
		}
		next := t.Expires(step)
		fmt.Fprintf(w, "code display %s: %s (until %s)\n", dev.Serial(), c, next.Format("15:04:05"))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next) + 50*time.Millisecond):
		}
	}
}

// demoListener listens on addr, or, when that address is taken, on a free
// port of the same host (a newcomer's second demo still starts).
func demoListener(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// runDemo is `authbench serve --demo`.
func (c *serveCmd) runDemo(ctx context.Context, e *env, log *slog.Logger) error {
	ln, err := demoListener(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	key := make([]byte, 16)
	rand.Read(key)
	srv, err := embedded.Start(ctx, embedded.Options{
		Listener:             ln,
		RPID:                 c.RPID,
		RPOrigins:            splitOrigins(c.Origin),
		AllowNoneAttestation: true, // any security key, and the browser's virtual ones
		PSKCKey:              key,
		Logger:               log,
		TLSCertFile:          c.TLSCert,
		TLSKeyFile:           c.TLSKey,
		RateLimit:            api.RateLimit{PerSource: api.Rate(c.LoginLimitSource), PerAuthenticator: api.Rate(c.LoginLimitAuth)},
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	dev, err := demoPages(ctx, srv, key)
	if err != nil {
		return fmt.Errorf("preparing the demo: %w", err)
	}
	fmt.Fprintf(e.stdout, "authbench server listening on %s\n", srv.URL)
	printDemo(e.stdout, srv, dev)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go showCodes(cctx, e.stdout, dev)
	select {
	case <-ctx.Done():
	case <-srv.Done():
	}
	stop()
	fmt.Fprintln(e.stderr, "shutting down")
	return srv.Err()
}
