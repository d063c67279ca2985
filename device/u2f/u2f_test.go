package u2f

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// testAuthenticator is a small software U2F authenticator for the tests:
// it attests with the example attestation key and certificate of the spec.
type testAuthenticator struct {
	att  *ecdsa.PrivateKey
	cert []byte

	mu      sync.Mutex
	touches int // how many times to answer ErrPresenceRequired before a touch "happens"
	counter uint32
	creds   map[string]testCred
}

type testCred struct {
	app [32]byte
	key *ecdsa.PrivateKey
}

func newTestAuthenticator(t testing.TB) *testAuthenticator {
	t.Helper()
	resp, err := ParseRegisterResponse(readHex(t, "register_response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	return &testAuthenticator{
		att:   privateKey(t, readKeys(t)["attestation_private_key"]),
		cert:  resp.AttestationCert,
		creds: map[string]testCred{},
	}
}

func (a *testAuthenticator) waitTouch() error {
	if a.touches > 0 {
		a.touches--
		return ErrPresenceRequired
	}
	return nil
}

func (a *testAuthenticator) Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.waitTouch(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(fmt.Appendf(nil, "kh%d", len(a.creds)))
	kh := h[:]
	a.creds[string(kh)] = testCred{app: req.Application, key: key}
	resp := &RegisterResponse{KeyHandle: kh, AttestationCert: a.cert}
	pk, _ := key.PublicKey.Bytes()
	copy(resp.PublicKey[:], pk)
	digest := sha256.Sum256(RegisterSignedData(req.Application, req.Challenge, kh, resp.PublicKey))
	if resp.Signature, err = ecdsa.SignASN1(rand.Reader, a.att, digest[:]); err != nil {
		return nil, err
	}
	return resp, nil
}

func (a *testAuthenticator) Authenticate(ctx context.Context, req *AuthenticateRequest) (*AuthenticateResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.creds[string(req.KeyHandle)]
	if !ok || c.app != req.Application {
		return nil, fmt.Errorf("test: %w", ErrBadKeyHandle)
	}
	if req.Control == ControlCheckOnly {
		return nil, ErrPresenceRequired
	}
	up := byte(0)
	if req.Control == ControlEnforcePresence {
		if err := a.waitTouch(); err != nil {
			return nil, err
		}
		up = 1
	}
	a.counter++
	resp := &AuthenticateResponse{UserPresence: up, Counter: a.counter}
	digest := sha256.Sum256(AuthenticateSignedData(req.Application, up, a.counter, req.Challenge))
	var err error
	if resp.Signature, err = ecdsa.SignASN1(rand.Reader, c.key, digest[:]); err != nil {
		return nil, err
	}
	return resp, nil
}

var _ Authenticator = (*testAuthenticator)(nil)

// handlerMessenger connects a Client straight to a Handler.
type handlerMessenger struct{ h *Handler }

func (m handlerMessenger) APDU(ctx context.Context, req []byte) ([]byte, error) {
	return m.h.ServeU2F(ctx, req), nil
}

// scriptMessenger answers from a list and records the requests.
type scriptMessenger struct {
	answers [][]byte
	err     error
	reqs    [][]byte
}

func (m *scriptMessenger) APDU(ctx context.Context, req []byte) ([]byte, error) {
	m.reqs = append(m.reqs, append([]byte(nil), req...))
	if m.err != nil {
		return nil, m.err
	}
	if len(m.answers) == 0 {
		return []byte{0x6F, 0x00}, nil
	}
	a := m.answers[0]
	if len(m.answers) > 1 {
		m.answers = m.answers[1:]
	}
	return a, nil
}

// recordingSleep counts pauses instead of sleeping.
type recordingSleep struct{ pauses []time.Duration }

func (s *recordingSleep) sleep(ctx context.Context, d time.Duration) error {
	s.pauses = append(s.pauses, d)
	return ctx.Err()
}

func TestClientAgainstHandler(t *testing.T) {
	auth := newTestAuthenticator(t)
	auth.touches = 2
	var rs recordingSleep
	c := NewClient(handlerMessenger{NewHandler(auth)}, &Options{PollInterval: 7 * time.Millisecond, Sleep: rs.sleep})
	var keepalives []ctap2.KeepaliveStatus
	ctx := ctap2.WithKeepalive(context.Background(), func(s ctap2.KeepaliveStatus) { keepalives = append(keepalives, s) })

	v, err := c.Version(ctx)
	if err != nil || v != Version {
		t.Fatalf("Version = %q, %v", v, err)
	}

	app := sha256.Sum256([]byte("https://mitid.example"))
	chal := sha256.Sum256([]byte("client data 1"))
	reg, err := c.Register(ctx, chal, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(keepalives) != 2 || keepalives[0] != ctap2.StatusUPNeeded || len(rs.pauses) != 2 || rs.pauses[0] != 7*time.Millisecond {
		t.Errorf("keepalives %v, pauses %v; want 2 of each", keepalives, rs.pauses)
	}
	if _, err := reg.Verify(app, chal); err != nil {
		t.Fatal(err)
	}
	pub, err := reg.Key()
	if err != nil {
		t.Fatal(err)
	}

	chal2 := sha256.Sum256([]byte("client data 2"))
	auth.touches = 1
	as, err := c.Authenticate(ctx, ControlEnforcePresence, chal2, app, reg.KeyHandle)
	if err != nil {
		t.Fatal(err)
	}
	if !as.UserPresent() || as.Counter != 1 || len(keepalives) != 3 {
		t.Errorf("presence %v counter %d keepalives %d", as.UserPresent(), as.Counter, len(keepalives))
	}
	if err := as.Verify(pub, app, chal2); err != nil {
		t.Fatal(err)
	}
	as, err = c.Authenticate(ctx, ControlDontEnforcePresence, chal2, app, reg.KeyHandle)
	if err != nil || as.UserPresent() || as.Counter != 2 || as.Verify(pub, app, chal2) != nil {
		t.Fatalf("dont-enforce: %+v, %v", as, err)
	}

	// Check-only: no polling, 6985 means known.
	pauses := len(rs.pauses)
	if _, err := c.Authenticate(ctx, ControlCheckOnly, chal2, app, reg.KeyHandle); !errors.Is(err, ErrPresenceRequired) {
		t.Errorf("check-only known: %v", err)
	}
	if ok, err := c.CheckKeyHandle(ctx, app, reg.KeyHandle); !ok || err != nil {
		t.Errorf("CheckKeyHandle known = %v, %v", ok, err)
	}
	other := sha256.Sum256([]byte("https://other.example"))
	if ok, err := c.CheckKeyHandle(ctx, other, reg.KeyHandle); ok || err != nil {
		t.Errorf("CheckKeyHandle other app = %v, %v", ok, err)
	}
	if len(rs.pauses) != pauses {
		t.Errorf("check-only requests polled")
	}
	_, err = c.Authenticate(ctx, ControlEnforcePresence, chal2, other, reg.KeyHandle)
	var se *StatusError
	if !errors.As(err, &se) || se.SW != 0x6A80 || !errors.Is(err, ErrBadKeyHandle) {
		t.Errorf("wrong app: %v", err)
	}
	if _, err := c.Authenticate(ctx, 0x09, chal2, app, reg.KeyHandle); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("bad control: %v", err)
	}
}

func TestClientRequestBytes(t *testing.T) {
	sig := readHex(t, "authenticate_response.hex")
	ok := append(append([]byte{}, sig...), 0x90, 0x00)
	m := &scriptMessenger{answers: [][]byte{[]byte("U2F_V2\x90\x00")}}
	c := NewClient(m, nil)
	ctx := context.Background()
	if v, err := c.Version(ctx); err != nil || v != "U2F_V2" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	var chal, app [32]byte
	chal[0], app[0] = 0xC1, 0xA1
	m.answers = [][]byte{{0x6A, 0x80}}
	c.Register(ctx, chal, app)
	m.answers = [][]byte{ok}
	if _, err := c.Authenticate(ctx, ControlEnforcePresence, chal, app, []byte{9, 8, 7}); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00},
		append(append([]byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x40}, (&RegisterRequest{chal, app}).Encode()...), 0x00, 0x00),
		append(append(append(append([]byte{0x00, 0x02, 0x03, 0x00, 0x00, 0x00, 0x44}, chal[:]...), app[:]...), 3, 9, 8, 7), 0x00, 0x00),
	}
	if len(m.reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(m.reqs), len(want))
	}
	for i := range want {
		if !bytes.Equal(m.reqs[i], want[i]) {
			t.Errorf("request %d\n got % X\nwant % X", i, m.reqs[i], want[i])
		}
	}
}

func TestClientErrors(t *testing.T) {
	chal, app := [32]byte{1}, [32]byte{2}
	tests := []struct {
		name   string
		answer []byte
		err    error
		is     []error
	}{
		{"6A80", []byte{0x6A, 0x80}, nil, []error{ErrBadKeyHandle}},
		{"6700", []byte{0x67, 0x00}, nil, []error{ErrWrongLength, device.ErrProtocol}},
		{"6D00", []byte{0x6D, 0x00}, nil, []error{device.ErrNotSupported}},
		{"6E00", []byte{0x6E, 0x00}, nil, []error{device.ErrNotSupported}},
		{"6F00", []byte{0x6F, 0x00}, nil, nil},
		{"short answer", []byte{0x90}, nil, []error{device.ErrProtocol}},
		{"empty answer", nil, nil, []error{device.ErrProtocol}},
		{"9000 without data", []byte{0x90, 0x00}, nil, []error{device.ErrProtocol}},
		{"9000 with garbage", []byte{5, 4, 0x90, 0x00}, nil, []error{device.ErrProtocol}},
		{"transport", nil, fmt.Errorf("usb: %w", device.ErrRemoved), []error{device.ErrRemoved}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(&scriptMessenger{answers: [][]byte{tt.answer}, err: tt.err}, nil)
			r, err := c.Register(context.Background(), chal, app)
			if err == nil || r != nil {
				t.Fatalf("Register = %v, %v", r, err)
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("err %v is not %v", err, s)
				}
			}
			if errors.Is(err, ErrPresenceRequired) {
				t.Errorf("err %v claims presence required", err)
			}
		})
	}
	// A check-only request that is signed is an error.
	ok := append(readHex(t, "authenticate_response.hex"), 0x90, 0x00)
	c := NewClient(&scriptMessenger{answers: [][]byte{ok}}, nil)
	if known, err := c.CheckKeyHandle(context.Background(), app, nil); known || err == nil {
		t.Errorf("signed check-only: %v, %v", known, err)
	}
}

func TestClientGivesUpWhenContextEnds(t *testing.T) {
	before := runtimeGoroutines()
	presence := []byte{0x69, 0x85}

	// Cancelled while polling (default timer sleep).
	m := &scriptMessenger{answers: [][]byte{presence}}
	c := NewClient(m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	ctx = ctap2.WithKeepalive(ctx, func(ctap2.KeepaliveStatus) {
		if n++; n == 3 {
			cancel()
		}
	})
	_, err := c.Register(ctx, [32]byte{}, [32]byte{})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrPresenceRequired) {
		t.Fatalf("err = %v", err)
	}
	if len(m.reqs) != 3 {
		t.Errorf("%d requests, want 3", len(m.reqs))
	}

	// Deadline while polling.
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	_, err = NewClient(&scriptMessenger{answers: [][]byte{presence}}, &Options{PollInterval: time.Millisecond}).Register(dctx, [32]byte{}, [32]byte{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}

	// Already cancelled: nothing is sent.
	m = &scriptMessenger{}
	if _, err := NewClient(m, nil).Version(ctx); !errors.Is(err, context.Canceled) || len(m.reqs) != 0 {
		t.Fatalf("err = %v, %d requests", err, len(m.reqs))
	}
	waitGoroutines(t, before)
}

func TestHandler(t *testing.T) {
	respOK := readHex(t, "authenticate_response.hex")
	areq := readHex(t, "authenticate_request.hex")
	regData := readHex(t, "register_request.hex")
	ext := func(ins, p1 byte, data []byte) []byte {
		b := []byte{0x00, ins, p1, 0x00}
		if len(data) > 0 {
			b = append(b, 0, byte(len(data)>>8), byte(len(data)))
			b = append(b, data...)
		} else {
			b = append(b, 0)
		}
		return append(b, 0, 0)
	}
	short := func(ins, p1 byte, data []byte) []byte {
		return append(append([]byte{0x00, ins, p1, 0x00, byte(len(data))}, data...), 0x00)
	}
	tests := []struct {
		name    string
		req     []byte
		authErr error
		resp    *AuthenticateResponse
		want    []byte // whole answer; nil = check only the SW
		sw      uint16
	}{
		{"version extended", []byte{0, 3, 0, 0, 0, 0, 0}, nil, nil, []byte("U2F_V2\x90\x00"), 0x9000},
		{"version extended with empty Lc", []byte{0, 3, 0, 0, 0, 0, 0, 0, 0}, nil, nil, []byte("U2F_V2\x90\x00"), 0x9000},
		{"version short", []byte{0, 3, 0, 0, 0}, nil, nil, []byte("U2F_V2\x90\x00"), 0x9000},
		{"version no Le", []byte{0, 3, 0, 0}, nil, nil, []byte("U2F_V2\x90\x00"), 0x9000},
		{"version with data", short(3, 0, []byte{1}), nil, nil, nil, 0x6700},
		{"empty", nil, nil, nil, nil, 0x6700},
		{"three bytes", []byte{0, 1, 0}, nil, nil, nil, 0x6700},
		{"bad Lc", []byte{0, 1, 0, 0, 5, 1, 2}, nil, nil, nil, 0x6700},
		{"CLA 80", []byte{0x80, 3, 0, 0}, nil, nil, nil, 0x6E00},
		{"CLA 10 (chaining)", []byte{0x10, 3, 0, 0}, nil, nil, nil, 0x6E00},
		{"INS 04", []byte{0, 4, 0, 0}, nil, nil, nil, 0x6D00},
		{"INS C0", []byte{0, 0xC0, 0, 0}, nil, nil, nil, 0x6D00},
		{"register 63 bytes", ext(1, 0, regData[:63]), nil, nil, nil, 0x6700},
		{"register no data", ext(1, 0, nil), nil, nil, nil, 0x6700},
		{"register presence", ext(1, 0, regData), ErrPresenceRequired, nil, nil, 0x6985},
		{"register presence wrapped", ext(1, 3, regData), fmt.Errorf("sim: %w", ErrPresenceRequired), nil, nil, 0x6985},
		{"register other error", ext(1, 0, regData), errors.New("boom"), nil, nil, 0x6F00},
		{"register cancelled", ext(1, 0, regData), context.Canceled, nil, nil, 0x6F00},
		{"register status of choice", ext(1, 0, regData), &StatusError{SW: 0x6A84}, nil, nil, 0x6A84},
		{"register status 9000 refused", ext(1, 0, regData), &StatusError{SW: 0x9000}, nil, nil, 0x6F00},
		{"register status 61xx refused", ext(1, 0, regData), &StatusError{SW: 0x6110}, nil, nil, 0x6F00},
		{"authenticate ok", ext(2, 3, areq[1:]), nil, mustParseAS(t, respOK), append(append([]byte{}, respOK...), 0x90, 0x00), 0x9000},
		{"authenticate short encoding", short(2, 3, areq[1:]), nil, mustParseAS(t, respOK), append(append([]byte{}, respOK...), 0x90, 0x00), 0x9000},
		{"authenticate bad key handle", ext(2, 3, areq[1:]), ErrBadKeyHandle, nil, nil, 0x6A80},
		{"authenticate wrong length", ext(2, 3, areq[1:60]), nil, nil, nil, 0x6700},
		{"authenticate bad key handle length", ext(2, 3, append(append([]byte{}, areq[1:]...), 0)), nil, nil, nil, 0x6700},
		{"authenticate control 05", ext(2, 5, areq[1:]), nil, nil, nil, 0x6A80},
		{"authenticate check-only known", ext(2, 7, areq[1:]), ErrPresenceRequired, nil, nil, 0x6985},
		{"authenticate check-only signed anyway", ext(2, 7, areq[1:]), nil, mustParseAS(t, respOK), nil, 0x6985},
		{"authenticate check-only unknown", ext(2, 7, areq[1:]), ErrBadKeyHandle, nil, nil, 0x6A80},
		{"authenticate nil response", ext(2, 3, areq[1:]), nil, nil, nil, 0x6F00},
		{"authenticate unencodable response", ext(2, 3, areq[1:]), nil, &AuthenticateResponse{Signature: []byte{1}}, nil, 0x6F00},
		{"authenticate wrong length error", ext(2, 8, areq[1:]), ErrWrongLength, nil, nil, 0x6700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fixedAuthenticator{err: tt.authErr, aresp: tt.resp}
			got := NewHandler(fa).ServeU2F(context.Background(), tt.req)
			if len(got) < 2 {
				t.Fatalf("answer % X too short", got)
			}
			if sw := binary.BigEndian.Uint16(got[len(got)-2:]); sw != tt.sw {
				t.Fatalf("SW %04X, want %04X (answer % X)", sw, tt.sw, got)
			}
			if tt.sw != 0x9000 && len(got) != 2 {
				t.Errorf("error answer carries data: % X", got)
			}
			if tt.want != nil && !bytes.Equal(got, tt.want) {
				t.Errorf("answer\n got % X\nwant % X", got, tt.want)
			}
			if tt.name == "authenticate ok" && (fa.areq == nil || fa.areq.Control != 3 || !bytes.Equal(fa.areq.KeyHandle, areq[66:])) {
				t.Errorf("authenticator saw %+v", fa.areq)
			}
		})
	}
}

func mustParseAS(t testing.TB, b []byte) *AuthenticateResponse {
	t.Helper()
	r, err := ParseAuthenticateResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixedAuthenticator answers with a fixed error or response.
type fixedAuthenticator struct {
	err   error
	rresp *RegisterResponse
	aresp *AuthenticateResponse
	areq  *AuthenticateRequest
}

func (f *fixedAuthenticator) Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error) {
	return f.rresp, f.err
}

func (f *fixedAuthenticator) Authenticate(ctx context.Context, req *AuthenticateRequest) (*AuthenticateResponse, error) {
	f.areq = req
	return f.aresp, f.err
}
