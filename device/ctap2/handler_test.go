package ctap2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeAuth is an Authenticator with every optional ability. It answers with
// the testdata vectors, or with err when set; with block set, it reports
// StatusUPNeeded, closes started and waits for ctx to end.
type fakeAuth struct {
	att  *Attestation
	as   *Assertion
	info *Info

	err     error
	block   bool
	started chan struct{}

	mu     sync.Mutex
	calls  map[string]int
	lastMC *MakeCredentialRequest
	lastGA *GetAssertionRequest
}

var (
	_ Authenticator   = (*fakeAuth)(nil)
	_ NextAssertioner = (*fakeAuth)(nil)
	_ Resetter        = (*fakeAuth)(nil)
	_ Selector        = (*fakeAuth)(nil)
	_ Authenticator   = (*Client)(nil)
	_ NextAssertioner = (*Client)(nil)
	_ Resetter        = (*Client)(nil)
	_ Selector        = (*Client)(nil)
)

func newFakeAuth(t testing.TB) *fakeAuth {
	t.Helper()
	att, err := DecodeAttestation(readVector(t, "makecredential-response-packed.hex"))
	if err != nil {
		t.Fatal(err)
	}
	as, err := DecodeAssertion(readVector(t, "getassertion-response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := DecodeInfo(readVector(t, "getinfo-response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAuth{att: att, as: as, info: info, calls: map[string]int{}, started: make(chan struct{})}
}

func (f *fakeAuth) enter(ctx context.Context, name string) error {
	f.mu.Lock()
	f.calls[name]++
	f.mu.Unlock()
	if f.block {
		Keepalive(ctx, StatusUPNeeded)
		close(f.started)
		<-ctx.Done()
		return fmt.Errorf("fake: waiting for a touch: %w", ctx.Err())
	}
	return f.err
}

func (f *fakeAuth) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeAuth) MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error) {
	f.mu.Lock()
	f.lastMC = req
	f.mu.Unlock()
	if err := f.enter(ctx, "MakeCredential"); err != nil {
		return nil, err
	}
	return f.att, nil
}

func (f *fakeAuth) GetAssertion(ctx context.Context, req *GetAssertionRequest) (*Assertion, error) {
	f.mu.Lock()
	f.lastGA = req
	f.mu.Unlock()
	if err := f.enter(ctx, "GetAssertion"); err != nil {
		return nil, err
	}
	return f.as, nil
}

func (f *fakeAuth) Info(ctx context.Context) (*Info, error) {
	if err := f.enter(ctx, "Info"); err != nil {
		return nil, err
	}
	return f.info, nil
}

func (f *fakeAuth) GetNextAssertion(ctx context.Context) (*Assertion, error) {
	if err := f.enter(ctx, "GetNextAssertion"); err != nil {
		return nil, err
	}
	return f.as, nil
}

func (f *fakeAuth) Reset(ctx context.Context) error     { return f.enter(ctx, "Reset") }
func (f *fakeAuth) Selection(ctx context.Context) error { return f.enter(ctx, "Selection") }

// chipOnly hides the optional abilities of an Authenticator.
type chipOnly struct{ Authenticator }

// messengerFunc adapts a function (such as Handler.ServeCTAP2) to Messenger.
type messengerFunc func(ctx context.Context, req []byte) ([]byte, error)

func (f messengerFunc) CBOR(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req) }

func serveMessenger(h *Handler) Messenger {
	return messengerFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		return h.ServeCTAP2(ctx, req), nil
	})
}

func TestClientOverHandler(t *testing.T) {
	ctx := context.Background()
	fake := newFakeAuth(t)
	c := NewClient(serveMessenger(NewHandler(fake, HandlerOptions{})))

	mc := vecMakeCredentialRequest()
	att, err := c.MakeCredential(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(att, fake.att) || !reflect.DeepEqual(fake.lastMC, mc) {
		t.Errorf("makeCredential did not carry the values through")
	}
	ga := vecGetAssertionRequest()
	as, err := c.GetAssertion(ctx, ga)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(as, fake.as) || !reflect.DeepEqual(fake.lastGA, ga) {
		t.Errorf("getAssertion did not carry the values through")
	}
	if as, err = c.GetNextAssertion(ctx); err != nil || !reflect.DeepEqual(as, fake.as) {
		t.Errorf("getNextAssertion: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil || !reflect.DeepEqual(info, fake.info) {
		t.Errorf("getInfo: %v", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Error(err)
	}
	if err := c.Selection(ctx); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"MakeCredential", "GetAssertion", "GetNextAssertion", "Info", "Reset", "Selection"} {
		if n := fake.count(name); n != 1 {
			t.Errorf("%s called %d times", name, n)
		}
	}
}

// TestClientStatusErrors runs every status code of CTAP 2.1 §8.2 through each
// command: the authenticator's error becomes the status on the wire and a
// *StatusError matching the sentinel at the client.
func TestClientStatusErrors(t *testing.T) {
	ctx := context.Background()
	fake := newFakeAuth(t)
	c := NewClient(serveMessenger(NewHandler(fake, HandlerOptions{})))
	calls := map[string]func() error{
		"makeCredential":   func() error { _, err := c.MakeCredential(ctx, vecMakeCredentialRequest()); return err },
		"getAssertion":     func() error { _, err := c.GetAssertion(ctx, vecGetAssertionRequest()); return err },
		"getNextAssertion": func() error { _, err := c.GetNextAssertion(ctx); return err },
		"getInfo":          func() error { _, err := c.Info(ctx); return err },
		"reset":            func() error { return c.Reset(ctx) },
		"selection":        func() error { return c.Selection(ctx) },
	}
	for _, st := range statusTable {
		fake.err = fmt.Errorf("fake: %w", st.sentinel)
		for name, call := range calls {
			err := call()
			var se *StatusError
			if !errors.As(err, &se) || se.Code != st.code || !errors.Is(err, st.sentinel) {
				t.Errorf("%s with %s: got %v", name, st.name, err)
			}
		}
	}
}

func TestHandlerRequests(t *testing.T) {
	ctx := context.Background()
	mc := append([]byte{CmdMakeCredential}, readVector(t, "makecredential-request.hex")...)
	ga := append([]byte{CmdGetAssertion}, readVector(t, "getassertion-request.hex")...)
	full := NewHandler(newFakeAuth(t), HandlerOptions{})
	bare := NewHandler(chipOnly{newFakeAuth(t)}, HandlerOptions{})
	for _, tc := range []struct {
		name string
		h    *Handler
		req  []byte
		want byte
	}{
		{"makeCredential", full, mc, CodeOK},
		{"getAssertion", full, ga, CodeOK},
		{"getInfo", full, []byte{CmdGetInfo}, CodeOK},
		{"getNextAssertion", full, []byte{CmdGetNextAssertion}, CodeOK},
		{"reset", full, []byte{CmdReset}, CodeOK},
		{"selection", full, []byte{CmdSelection}, CodeOK},
		{"empty request", full, nil, CodeInvalidLength},
		{"unknown command", full, []byte{0x42}, CodeInvalidCommand},
		{"vendor command", full, []byte{0x41, 0xa0}, CodeInvalidCommand},
		{"clientPIN", full, []byte{CmdClientPIN, 0xa1, 0x01, 0x01}, CodeInvalidCommand},
		{"getNextAssertion unsupported", bare, []byte{CmdGetNextAssertion}, CodeInvalidCommand},
		{"reset unsupported", bare, []byte{CmdReset}, CodeInvalidCommand},
		{"selection unsupported", bare, []byte{CmdSelection}, CodeInvalidCommand},
		{"makeCredential without parameters", full, []byte{CmdMakeCredential}, CodeMissingParameter},
		{"makeCredential garbage", full, []byte{CmdMakeCredential, 0xff}, CodeInvalidCBOR},
		{"makeCredential truncated", full, mc[:len(mc)-1], CodeInvalidCBOR},
		{"makeCredential trailing byte", full, append(append([]byte(nil), mc...), 0), CodeInvalidCBOR},
		{"makeCredential array", full, []byte{CmdMakeCredential, 0x80}, CodeCBORUnexpectedType},
		{"makeCredential map without keys", full, []byte{CmdMakeCredential, 0xa0}, CodeMissingParameter},
		{"getAssertion wrong type", full, []byte{CmdGetAssertion, 0xa2, 0x01, 0x01, 0x02, 0x01}, CodeCBORUnexpectedType},
		{"getInfo with parameters", full, []byte{CmdGetInfo, 0xa0}, CodeInvalidLength},
		{"reset with parameters", full, []byte{CmdReset, 0x00}, CodeInvalidLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.h.ServeCTAP2(ctx, tc.req)
			if len(resp) == 0 || resp[0] != tc.want {
				t.Fatalf("answer %x, want status %#x", resp, tc.want)
			}
			if tc.want != CodeOK && len(resp) != 1 {
				t.Fatalf("error answer %x carries a body", resp)
			}
		})
	}
}

func TestHandlerBadAnswers(t *testing.T) {
	ctx := context.Background()
	var got []error
	fake := newFakeAuth(t)
	h := NewHandler(fake, HandlerOptions{OnError: func(cmd byte, err error) { got = append(got, err) }})
	ga := append([]byte{CmdGetAssertion}, readVector(t, "getassertion-request.hex")...)
	mc := append([]byte{CmdMakeCredential}, readVector(t, "makecredential-request.hex")...)

	fake.as = nil // neither a value nor an error
	if resp := h.ServeCTAP2(ctx, ga); !bytes.Equal(resp, []byte{CodeOther}) {
		t.Errorf("nil assertion: %x", resp)
	}
	fake.att = &Attestation{Format: "none"} // no authData: would be MISSING_PARAMETER if it leaked
	if resp := h.ServeCTAP2(ctx, mc); !bytes.Equal(resp, []byte{CodeOther}) {
		t.Errorf("invalid attestation: %x", resp)
	}
	fake.info = &Info{Versions: []string{"FIDO_2_0"}, AAGUID: []byte{1}}
	if resp := h.ServeCTAP2(ctx, []byte{CmdGetInfo}); !bytes.Equal(resp, []byte{CodeOther}) {
		t.Errorf("invalid info: %x", resp)
	}
	fake.err = errors.New("fake: flash write failed")
	if resp := h.ServeCTAP2(ctx, []byte{CmdReset}); !bytes.Equal(resp, []byte{CodeOther}) {
		t.Errorf("plain error: %x", resp)
	}
	if len(got) != 4 {
		t.Fatalf("OnError saw %d errors: %v", len(got), got)
	}
	if !errors.Is(got[1], ErrOther) || errors.Is(got[1], ErrMissingParameter) {
		t.Errorf("invalid answer error %v", got[1])
	}
}

// TestHandlerProxy puts a Handler over a Client over a Handler: for every
// request the proxy must answer exactly what the inner handler answers.
func TestHandlerProxy(t *testing.T) {
	ctx := context.Background()
	mc := append([]byte{CmdMakeCredential}, readVector(t, "makecredential-request.hex")...)
	ga := append([]byte{CmdGetAssertion}, readVector(t, "getassertion-request.hex")...)
	requests := [][]byte{
		mc, ga, {CmdGetInfo}, {CmdGetNextAssertion}, {CmdReset}, {CmdSelection},
		nil, {0x42}, {CmdClientPIN}, {CmdMakeCredential}, {CmdMakeCredential, 0xff},
		{CmdGetAssertion, 0x80}, {CmdGetInfo, 0x00}, mc[:len(mc)-3],
	}
	for _, inner := range []Authenticator{newFakeAuth(t), chipOnly{newFakeAuth(t)}} {
		innerH := NewHandler(inner, HandlerOptions{})
		proxy := NewHandler(NewClient(serveMessenger(innerH)), HandlerOptions{})
		for _, req := range requests {
			want := innerH.ServeCTAP2(ctx, req)
			if got := proxy.ServeCTAP2(ctx, req); !bytes.Equal(got, want) {
				t.Errorf("%T: request %x: proxy answered %x, inner %x", inner, req, got, want)
			}
		}
		// Errors of the inner authenticator pass through unchanged.
		if f, ok := inner.(*fakeAuth); ok {
			for _, st := range statusTable {
				f.err = st.sentinel
				want := innerH.ServeCTAP2(ctx, ga)
				if got := proxy.ServeCTAP2(ctx, ga); !bytes.Equal(got, want) || want[0] != st.code {
					t.Errorf("%s: proxy %x, inner %x", st.name, got, want)
				}
			}
		}
	}
	// A transport failure below the proxy is CTAP1_ERR_OTHER, not a status the
	// inner device never sent.
	broken := NewHandler(NewClient(messengerFunc(func(context.Context, []byte) ([]byte, error) {
		return []byte{0x00, 0xff}, nil
	})), HandlerOptions{})
	if got := broken.ServeCTAP2(ctx, ga); !bytes.Equal(got, []byte{CodeOther}) {
		t.Errorf("garbage below the proxy: %x", got)
	}
}

// waitGoroutines fails the test when the number of goroutines does not come
// back to base; the deadline only guards against a hang.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left running, %d at start", runtime.NumGoroutine(), base)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestHandlerCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	fake := newFakeAuth(t)
	fake.block = true
	h := NewHandler(fake, HandlerOptions{})

	var statuses []KeepaliveStatus
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(WithKeepalive(context.Background(), func(s KeepaliveStatus) {
		mu.Lock()
		statuses = append(statuses, s)
		mu.Unlock()
	}))
	defer cancel()
	done := make(chan []byte)
	go func() {
		done <- h.ServeCTAP2(ctx, append([]byte{CmdGetAssertion}, readVector(t, "getassertion-request.hex")...))
	}()
	<-fake.started
	cancel()
	if resp := <-done; !bytes.Equal(resp, []byte{CodeKeepaliveCancel}) {
		t.Fatalf("cancelled request answered %x", resp)
	}
	mu.Lock()
	if len(statuses) != 1 || statuses[0] != StatusUPNeeded {
		t.Errorf("keepalives %v", statuses)
	}
	mu.Unlock()
	waitGoroutines(t, base)
}

// TestHandlerErrorAfterCancel: an authenticator that gives up with its own
// error once the host cancelled still answers KEEPALIVE_CANCEL.
func TestHandlerErrorAfterCancel(t *testing.T) {
	fake := newFakeAuth(t)
	fake.err = errors.New("fake: gave up")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if resp := NewHandler(fake, HandlerOptions{}).ServeCTAP2(ctx, []byte{CmdSelection}); !bytes.Equal(resp, []byte{CodeKeepaliveCancel}) {
		t.Fatalf("answer %x", resp)
	}
}

func TestClientCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	fake := newFakeAuth(t)
	fake.block = true
	c := NewClient(serveMessenger(NewHandler(fake, HandlerOptions{})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		_, err := c.MakeCredential(ctx, vecMakeCredentialRequest())
		done <- err
	}()
	<-fake.started
	cancel()
	if err := <-done; !errors.Is(err, ErrKeepaliveCancel) {
		t.Fatalf("cancelled makeCredential: %v", err)
	}
	waitGoroutines(t, base)
}

func TestClientInvalidResponses(t *testing.T) {
	ctx := context.Background()
	unplugged := errors.New("unplugged")
	for _, tc := range []struct {
		name string
		resp []byte
		err  error
		call func(*Client) error
		want error
		not  error
	}{
		{"empty answer", nil, nil, getInfo, ErrInvalidResponse, nil},
		{"status only for getInfo", []byte{0}, nil, getInfo, ErrInvalidResponse, ErrMissingParameter},
		{"garbage", []byte{0, 0xff}, nil, getInfo, ErrInvalidResponse, ErrInvalidCBOR},
		{"non-canonical", cat([]byte{0}, mustHex(t, "a2 0350"+hexOf(make([]byte, 16))+" 0181684649444f5f325f30")), nil, getInfo, ErrInvalidResponse, ErrInvalidCBOR},
		{"bad attestation", []byte{0, 0xa0}, nil, makeCredential, ErrInvalidResponse, nil},
		{"bad assertion", []byte{0, 0xa0}, nil, getAssertion, ErrInvalidResponse, nil},
		{"body after reset", []byte{0, 0xa0}, nil, reset, ErrInvalidResponse, nil},
		{"body after selection", []byte{0, 0x00}, nil, selection, ErrInvalidResponse, nil},
		{"vendor status", []byte{0xF2, 1, 2}, nil, reset, &StatusError{Code: 0xF2}, ErrInvalidResponse},
		{"transport error", nil, unplugged, getInfo, unplugged, nil},
		{"context error", nil, fmt.Errorf("hid: %w", context.DeadlineExceeded), getInfo, context.DeadlineExceeded, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(messengerFunc(func(context.Context, []byte) ([]byte, error) { return tc.resp, tc.err }))
			err := tc.call(c)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.not != nil && errors.Is(err, tc.not) {
				t.Fatalf("error %v also wraps %v", err, tc.not)
			}
		})
	}
	_ = ctx
}

func getInfo(c *Client) error { _, err := c.Info(context.Background()); return err }
func makeCredential(c *Client) error {
	_, err := c.MakeCredential(context.Background(), vecMakeCredentialRequest())
	return err
}
func getAssertion(c *Client) error {
	_, err := c.GetAssertion(context.Background(), vecGetAssertionRequest())
	return err
}
func reset(c *Client) error     { return c.Reset(context.Background()) }
func selection(c *Client) error { return c.Selection(context.Background()) }

func TestClientValidatesFirst(t *testing.T) {
	c := NewClient(messengerFunc(func(context.Context, []byte) ([]byte, error) {
		t.Error("request sent")
		return nil, nil
	}))
	ctx := context.Background()
	mc := vecMakeCredentialRequest()
	mc.ClientDataHash = mc.ClientDataHash[:16]
	if _, err := c.MakeCredential(ctx, mc); !errors.Is(err, ErrInvalidLength) {
		t.Errorf("short hash: %v", err)
	}
	if _, err := c.MakeCredential(ctx, nil); !errors.Is(err, ErrMissingParameter) {
		t.Errorf("nil request: %v", err)
	}
	if _, err := c.GetAssertion(ctx, &GetAssertionRequest{ClientDataHash: vecGAHash[:]}); !errors.Is(err, ErrMissingParameter) {
		t.Errorf("no rpId: %v", err)
	}
	if _, err := c.GetAssertion(ctx, nil); !errors.Is(err, ErrMissingParameter) {
		t.Errorf("nil request: %v", err)
	}
}

func TestCachedInfo(t *testing.T) {
	ctx := context.Background()
	fake := newFakeAuth(t)
	c := NewClient(serveMessenger(NewHandler(fake, HandlerOptions{})))
	a, err := c.CachedInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Versions[0] = "changed"
	b, err := c.CachedInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Versions[0] != "FIDO_2_0" {
		t.Error("cached value shared with a caller")
	}
	if n := fake.count("Info"); n != 1 {
		t.Errorf("getInfo sent %d times, want 1", n)
	}
	if _, err := c.Info(ctx); err != nil || fake.count("Info") != 2 {
		t.Errorf("Info did not ask again: %v", err)
	}
}
