package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/client"
)

// BenchmarkLifecycleClient is the client side of one chip's lifecycle
// (enroll → login → block → re-add) alone: the same steps as the
// lifecycle scenario, with a real simulated chip making its credentials,
// attestations and assertions, but against canned answers of the API
// handed over in this process (cannedAPI) instead of a server over
// loopback HTTP. It shows what the load generator's clients cost per
// chip (ns/op, B/op, allocs/op), which in `authbench load` is taken from
// the server's CPU.
//
//	go test -run '^$' -bench LifecycleClient -benchmem ./cmd/authbench
func BenchmarkLifecycleClient(b *testing.B) {
	ctx := context.Background()
	api := newCannedAPI(b)
	// No Timeout: with a Transport it does not know, net/http would
	// start a goroutine per request to time it, which the load's
	// *http.Transport is spared.
	hc := &http.Client{Transport: api}
	sup, err := client.New("http://load.invalid", client.Options{HTTPClient: hc, Token: "support", Origin: loadOrigin, UserAgent: "authbench-load"})
	if err != nil {
		b.Fatal(err)
	}
	f := &fleet{support: []*client.Client{sup}, anon: []*client.Client{sup.WithToken("")}}
	c, err := newLoadChip([]byte("bench client"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// The login's allow list names the chip's first credential.
	first, err := webauthn.Create(ctx, c, api.creation, loadOrigin)
	if err != nil {
		b.Fatal(err)
	}
	api.setLogin(first.ID)
	rr := &roundRobin{f: f}
	b.ReportAllocs()
	for b.Loop() {
		lc := &loadChip{id: "load-bench-chip-0", c: c}
		if err := chipLifecycle(ctx, rr, lc, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// cannedAPI answers the lifecycle's requests with fixed answers of the
// shapes and sizes the server gives, without checking them: an
// http.RoundTripper in this process.
type cannedAPI struct {
	creation  *webauthn.CreationOptions
	added     []byte
	activated [2][]byte // the first enrolment and the re-add alternate
	login     []byte
	session   []byte
	blocked   []byte
	n         atomic.Int64
}

func newCannedAPI(tb testing.TB) *cannedAPI {
	tb.Helper()
	must := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	now := time.Now().UTC()
	ceremony := "r2." + strings.Repeat("x", 200)
	a := &cannedAPI{creation: &webauthn.CreationOptions{
		Challenge:        webauthn.Encode(bytes.Repeat([]byte{7}, 32)),
		RP:               webauthn.RPEntity{ID: loadRPID, Name: "authbench"},
		User:             webauthn.UserEntity{ID: webauthn.Encode(bytes.Repeat([]byte{9}, 16)), Name: "load-bench-chip-0", DisplayName: "load-bench-chip-0"},
		PubKeyCredParams: []webauthn.CredentialParameter{{Type: webauthn.TypePublicKey, Alg: webauthn.AlgES256}, {Type: webauthn.TypePublicKey, Alg: -8}},
		Timeout:          300000,
		Attestation:      "direct",
	}}
	a.creation.AuthenticatorSelection.UserVerification = "discouraged"
	auth := func(id, state string) client.Authenticator {
		t := true
		return client.Authenticator{ID: id, IdentityID: "load-bench-chip-0", Kind: client.KindChip, State: state, Label: "load",
			CredentialID: webauthn.Encode(bytes.Repeat([]byte(id[len(id)-1:]), 32)), CreatedAt: now, ActivatedAt: &now, Version: 2,
			Element: client.Element{AAGUID: "a13ac6bd-7341-4469-93b8-c6d706770fec", AttestationFormat: "packed", AttestationTrusted: &t}}
	}
	a.added = must(client.Added{Authenticator: client.Authenticator{ID: "chip-pending", State: client.StatePending, CreatedAt: now},
		Activation: client.Activation{Ceremony: ceremony, PublicKey: a.creation}})
	a.activated[0], a.activated[1] = must(auth("chip-a", client.StateActive)), must(auth("chip-b", client.StateActive))
	blocked := auth("chip-a", client.StateBlocked)
	blocked.Element = client.Element{Wiped: true}
	a.blocked = must(blocked)
	a.session = must(client.Session{Token: strings.Repeat("s", 43), ID: "ses-1", Level: client.LevelTwoFactor, ExpiresAt: now,
		Authenticators: []string{"pw-1", "chip-a"}, Authenticator: auth("chip-a", client.StateActive)})
	return a
}

// setLogin makes the password step's answer ask the chip for an
// assertion with credential id.
func (a *cannedAPI) setLogin(id string) {
	now := time.Now().UTC()
	ceremony := "t2." + strings.Repeat("y", 200)
	b, err := json.Marshal(client.PasswordStep{Ceremony: ceremony, ExpiresAt: now,
		SecondFactors: []client.SecondFactor{{ID: "chip-a", Kind: client.KindChip, State: client.StateActive, Label: "load"}},
		Next: &client.FactorChallenge{Ceremony: ceremony + "z", ExpiresAt: now, Authenticator: "chip-a", Kind: client.KindChip,
			PublicKey: &webauthn.RequestOptions{Challenge: webauthn.Encode(bytes.Repeat([]byte{5}, 32)), RPID: loadRPID,
				AllowCredentials: []webauthn.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: id}}, UserVerification: "discouraged", Timeout: 300000}}})
	if err != nil {
		panic(err)
	}
	a.login = b
}

func (a *cannedAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	p := r.URL.Path
	var body []byte
	status := http.StatusOK
	switch {
	case strings.HasSuffix(p, "/authenticators"):
		body, status = a.added, http.StatusCreated
	case strings.HasSuffix(p, "/activate"):
		body = a.activated[a.n.Add(1)%2^1]
	case strings.HasSuffix(p, "/login/password"):
		body = a.login
	case strings.HasSuffix(p, "/login/finish"):
		body = a.session
	case strings.HasSuffix(p, "/block"):
		body = a.blocked
	default:
		return nil, fmt.Errorf("canned API: no answer for %s %s", r.Method, p)
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
}
