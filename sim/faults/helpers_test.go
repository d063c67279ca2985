package faults_test

import (
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/chip"
)

// guard bounds waits that only a bug makes long. No row asserts a duration
// beyond "returned before guard".
const guard = 10 * time.Second

const testRP = "login.authbench.test"

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// noLeaks fails the test if goroutines it started are still running when it
// ends (after its cleanups, which are registered later and run first).
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(guard)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// newChip makes a deterministic simulated chip, closed at cleanup.
func newChip(t *testing.T, name string, opts chip.Options) *chip.Chip {
	t.Helper()
	opts.Seed = hash("faults chip " + name)
	c, err := chip.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// registration is a makeCredential request of a few hundred bytes (two
// foreign credentials in the excludeList), so that it spans several
// CTAPHID reports; its answer (packed attestation with a certificate) spans
// many more, and more than one short APDU.
func registration() *ctap2.MakeCredentialRequest {
	ex := make([]ctap2.CredentialDescriptor, 2)
	for i := range ex {
		id := make([]byte, 64)
		for j := range id {
			id[j] = byte(i*31 + j)
		}
		ex[i] = ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: id}
	}
	return &ctap2.MakeCredentialRequest{
		ClientDataHash:   hash("registration"),
		RP:               ctap2.RPEntity{ID: testRP, Name: "authbench"},
		User:             ctap2.UserEntity{ID: []byte("user-1"), Name: "alice", DisplayName: "Alice"},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
		ExcludeList:      ex,
	}
}

// keepalives records the keepalive statuses a host reports.
type keepalives struct {
	ch chan ctap2.KeepaliveStatus
}

func newKeepalives() *keepalives { return &keepalives{ch: make(chan ctap2.KeepaliveStatus, 1<<16)} }

func (k *keepalives) record(s ctap2.KeepaliveStatus) {
	select {
	case k.ch <- s:
	default:
	}
}

// seen returns the statuses recorded so far.
func (k *keepalives) seen() []ctap2.KeepaliveStatus {
	var out []ctap2.KeepaliveStatus
	for {
		select {
		case s := <-k.ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// checkUPNeeded checks that a host waiting for a touch reported UPNEEDED,
// and nothing but UPNEEDED and PROCESSING (a device may say PROCESSING
// before its handler reports what it waits for).
func checkUPNeeded(t *testing.T, seen []ctap2.KeepaliveStatus) {
	t.Helper()
	up := 0
	for _, s := range seen {
		switch s {
		case ctap2.StatusUPNeeded:
			up++
		case ctap2.StatusProcessing:
		default:
			t.Fatalf("keepalive status %d in %v", s, seen)
		}
	}
	if up == 0 {
		t.Fatalf("keepalives %v: no UPNEEDED while the chip waited for a touch", seen)
	}
}
