package apdu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
)

// counter is a Transmitter that counts commands by INS and can cancel a
// context after a number of them.
type counter struct {
	t      apdu.Transmitter
	mu     sync.Mutex
	byINS  map[byte]int
	total  int
	after  int                // cancel once this many commands went through (0: never)
	cancel context.CancelFunc // what to call then
}

func (c *counter) Transmit(b []byte) ([]byte, error) {
	c.mu.Lock()
	if c.byINS == nil {
		c.byINS = map[byte]int{}
	}
	if len(b) >= 2 {
		c.byINS[b[1]]++
	}
	c.total++
	if c.after > 0 && c.total == c.after {
		c.cancel()
	}
	c.mu.Unlock()
	return c.t.Transmit(b)
}

func (c *counter) count(ins byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byINS[ins]
}

func (c *counter) reset() {
	c.mu.Lock()
	c.byINS, c.total = nil, 0
	c.mu.Unlock()
}

// bigHandler answers every CTAP2 request with status 00 and n bytes.
type bigHandler struct {
	testHandler
	n int
}

func (h *bigHandler) ServeCTAP2(ctx context.Context, req []byte) []byte {
	return append([]byte{0x00}, bigPayload(h.n)...)
}

// TestChunkLimit: a card that answers in pieces smaller than the host asked
// for (a 61xx storm). The host still gets the whole answer, with exactly the
// GET RESPONSE commands the pieces need.
func TestChunkLimit(t *testing.T) {
	const size = 2048 // answer: status byte + 2047 bytes
	tests := []struct {
		name  string
		limit int
		opts  apdu.ClientOptions
		want  int // GET RESPONSE commands for the CBOR call
	}{
		{"off", 0, apdu.ClientOptions{}, (size - 1) / 256},
		{"1 byte", 1, apdu.ClientOptions{}, size - 1},
		{"7 bytes", 7, apdu.ClientOptions{}, (size+6)/7 - 1},
		{"256 bytes: as without a limit", 256, apdu.ClientOptions{}, (size - 1) / 256},
		{"1000 bytes: the short Le still rules", 1000, apdu.ClientOptions{}, (size - 1) / 256},
		{"extended host asks for all, gets 100", 100, apdu.ClientOptions{Extended: true}, (size+99)/100 - 1},
		{"GET RESPONSE with CLA 80", 3, apdu.ClientOptions{GetResponseCLA: 0x80}, (size+2)/3 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			card := newCard(t, &bigHandler{n: size - 1}, apdu.CardOptions{ChunkLimit: tt.limit})
			wire := &counter{t: card}
			c := apdu.NewClient(wire, tt.opts)
			ctx := context.Background()
			if v, err := c.Select(ctx); err != nil || v != apdu.VersionU2F {
				t.Fatalf("Select = %q, %v", v, err)
			}
			wire.reset()
			got, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]byte{0x00}, bigPayload(size-1)...); !bytes.Equal(got, want) {
				t.Fatalf("answer of %d bytes differs from the %d sent", len(got), len(want))
			}
			if n := wire.count(apdu.INSGetResponse); n != tt.want {
				t.Errorf("%d GET RESPONSE, want %d", n, tt.want)
			}
			if n := wire.count(apdu.INSNFCCTAPMsg); n != 1 {
				t.Errorf("%d NFCCTAP_MSG, want 1", n)
			}
		})
	}
}

// TestChunkLimitHostGivesUp: a host whose context ends during a 61xx storm
// stops at once: not one more command reaches the card.
func TestChunkLimitHostGivesUp(t *testing.T) {
	noLeak(t)
	card := newCard(t, &bigHandler{n: 4000}, apdu.CardOptions{ChunkLimit: 1})
	wire := &counter{t: card}
	c := apdu.NewClient(wire, apdu.ClientOptions{})
	if _, err := c.Select(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wire.reset()
	wire.after, wire.cancel = 100, cancel
	_, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CBOR = %v, want context.Canceled", err)
	}
	if n := wire.count(apdu.INSNFCCTAPMsg) + wire.count(apdu.INSGetResponse); n != 100 {
		t.Fatalf("%d commands reached the card, want 100 (none after the cancel)", n)
	}
}

// TestUpdateStorm: a card that answers 9100 many times even for a quick
// request. The host reports each as a keepalive and gets the answer.
func TestUpdateStorm(t *testing.T) {
	for _, n := range []int{1, 5, 50} {
		t.Run(fmt.Sprintf("%d updates", n), func(t *testing.T) {
			noLeak(t)
			card := newCard(t, &testHandler{}, apdu.CardOptions{UpdateStorm: n})
			wire := &counter{t: card}
			c := apdu.NewClient(wire, apdu.ClientOptions{PollInterval: -1})
			var mu sync.Mutex
			var seen []ctap2.KeepaliveStatus
			ctx := ctap2.WithKeepalive(context.Background(), func(s ctap2.KeepaliveStatus) {
				mu.Lock()
				seen = append(seen, s)
				mu.Unlock()
			})
			if _, err := c.Select(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
			if err != nil || !bytes.Equal(got, getInfoAnswer) {
				t.Fatalf("CBOR = %x, %v", got, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != n {
				t.Errorf("%d keepalives, want %d", len(seen), n)
			}
			for _, s := range seen {
				if s != ctap2.StatusProcessing {
					t.Errorf("keepalive status %d, want PROCESSING", s)
				}
			}
			if polls := wire.count(apdu.INSNFCCTAPGetResponse); polls != len(seen) {
				t.Errorf("%d NFCCTAP_GETRESPONSE for %d updates", polls, len(seen))
			}
		})
	}
}

// TestUpdateStormEndless: a card that answers 9100 forever; the host stops
// polling when its deadline passes, and the card serves the next command.
func TestUpdateStormEndless(t *testing.T) {
	noLeak(t)
	card := newCard(t, &testHandler{}, apdu.CardOptions{UpdateStorm: -1})
	wire := &counter{t: card}
	c := apdu.NewClient(wire, apdu.ClientOptions{PollInterval: time.Millisecond})
	if _, err := c.Select(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CBOR = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(failGuard):
		t.Fatal("CBOR did not return after its deadline")
	}
	if n := wire.count(apdu.INSNFCCTAPGetResponse); n < 1 {
		t.Errorf("%d polls before the deadline", n)
	}
	// The abandoned request is cancelled by the next command.
	if v, err := c.Select(context.Background()); err != nil || v != apdu.VersionU2F {
		t.Fatalf("Select after the storm = %q, %v", v, err)
	}
}

// TestStormCardLevel: the storm knobs as the card answers raw APDUs.
func TestStormCardLevel(t *testing.T) {
	sel := []byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01, 0x00}
	tests := []struct {
		name  string
		opts  apdu.CardOptions
		steps [][2][]byte // command, expected response (nil: any)
	}{
		{"chunk limit on SELECT", apdu.CardOptions{ChunkLimit: 3}, [][2][]byte{
			{sel, []byte("U2F\x61\x03")},
			{[]byte{0x00, 0xC0, 0x00, 0x00, 0x03}, []byte("_V2\x90\x00")},
		}},
		{"storm: a host that cannot poll gets the answer", apdu.CardOptions{UpdateStorm: -1}, [][2][]byte{
			{sel, nil},
			{[]byte{0x80, 0x10, 0x00, 0x00, 0x01, 0x42, 0x00}, []byte{0x00, 0x42, 0x90, 0x00}},
		}},
		{"storm: a polling host gets 9100 twice", apdu.CardOptions{UpdateStorm: 2}, [][2][]byte{
			{sel, nil},
			{[]byte{0x80, 0x10, 0x80, 0x00, 0x01, 0x42, 0x00}, []byte{0x01, 0x91, 0x00}},
			{[]byte{0x80, 0x11, 0x00, 0x00, 0x00}, []byte{0x01, 0x91, 0x00}},
			{[]byte{0x80, 0x11, 0x00, 0x00, 0x00}, []byte{0x00, 0x42, 0x90, 0x00}},
			{[]byte{0x80, 0x11, 0x00, 0x00, 0x00}, []byte{0x69, 0x85}}, // nothing pending
		}},
		{"storm: U2F is not affected", apdu.CardOptions{UpdateStorm: -1}, [][2][]byte{
			{sel, nil},
			{[]byte{0x00, 0x03, 0x00, 0x00, 0x00}, []byte("U2F_V2\x90\x00")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			card := newCard(t, &testHandler{}, tt.opts)
			for i, s := range tt.steps {
				got := card.Process(context.Background(), s[0])
				if s[1] != nil && !bytes.Equal(got, s[1]) {
					t.Fatalf("step %d: > %x\n< %x, want %x", i, s[0], got, s[1])
				}
			}
		})
	}
}

// FuzzCardStorm runs command sequences against cards with storm knobs taken
// from the first two bytes (ChunkLimit 0..255, UpdateStorm -1..254): every
// answer is at least a status word, and no answer carries more data than
// ChunkLimit allows.
func FuzzCardStorm(f *testing.F) {
	sel := unhex(f, "00a4040008a0000006472f0001")
	f.Add(append([]byte{1, 3}, frameAPDUs(sel, unhex(f, "80108000 01 04 00"), unhex(f, "8011000000"), unhex(f, "00c0000000"))...))
	f.Add(append([]byte{0, 0}, frameAPDUs(sel, unhex(f, "8010000001 04 00"))...))
	for _, s := range seeds(f, "command/*.hex") {
		f.Add(append([]byte{7, 1}, frameAPDUs(sel, s)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		limit, storm := int(b[0]), int(b[1])-1
		card := apdu.NewCard(&testHandler{}, apdu.CardOptions{ChunkLimit: limit, UpdateStorm: storm, StatusAfter: time.Microsecond, MaxWait: time.Millisecond})
		for _, cmd := range splitAPDUs(b[2:]) {
			resp := card.Process(context.Background(), cmd)
			if len(resp) < 2 {
				t.Fatalf("> %x\n< %x: shorter than a status word", cmd, resp)
			}
			if limit > 0 && len(resp)-2 > limit {
				t.Fatalf("> %x\n< %x: more than %d data bytes", cmd, resp, limit)
			}
		}
		if err := card.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
