package chip

import (
	"errors"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
)

func protocol(n uint64) *uint64 { return &n }

// TestPINUVAuthParamStep2 follows CTAP 2.1 §6.1.2 step 2 (makeCredential)
// and §6.2.2 step 2 (getAssertion) for an authenticator with neither
// clientPin nor pinUvAuthToken, so that step 1 (the zero-length
// pinUvAuthParam that asks for a touch) does not apply: a present
// pinUvAuthParam, even a zero-length one, is refused with
// CTAP2_ERR_MISSING_PARAMETER when pinUvAuthProtocol is absent, and with
// CTAP1_ERR_INVALID_PARAMETER when it names a protocol (every one is
// unsupported). Over CTAPHID and APDUs the request goes through CBOR, which
// shows that a zero-length pinUvAuthParam is encoded and decoded as present.
func TestPINUVAuthParamStep2(t *testing.T) {
	cases := []struct {
		name     string
		param    []byte
		protocol *uint64
		want     error
	}{
		{"absent, absent", nil, nil, nil},
		{"absent, protocol 1", nil, protocol(1), nil}, // step 2 looks only at a present pinUvAuthParam
		{"zero-length, absent", []byte{}, nil, ctap2.ErrMissingParameter},
		{"zero-length, protocol 1", []byte{}, protocol(1), ctap2.ErrInvalidParameter},
		{"zero-length, protocol 2", []byte{}, protocol(2), ctap2.ErrInvalidParameter},
		{"16 bytes, absent", make([]byte, 16), nil, ctap2.ErrMissingParameter},
		{"16 bytes, protocol 0", make([]byte, 16), protocol(0), ctap2.ErrInvalidParameter},
		{"32 bytes, protocol 2", make([]byte, 32), protocol(2), ctap2.ErrInvalidParameter},
	}
	check := func(t *testing.T, err, want error) {
		t.Helper()
		if want == nil {
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			return
		}
		if !errors.Is(err, want) || ctap2.StatusCode(err) != ctap2.StatusCode(want) {
			t.Fatalf("got %v (status %02X), want %v", err, ctap2.StatusCode(err), want)
		}
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := testChip(t, Options{})
			a := tr.connect(t, c).ctap
			cred := mustMake(t, a, makeReq("example.dk", "alice", false))
			for _, tc := range cases {
				t.Run("makeCredential "+tc.name, func(t *testing.T) {
					r := makeReq("example.dk", "bob", false)
					r.PINUVAuthParam, r.PINUVAuthProtocol = tc.param, tc.protocol
					_, err := a.MakeCredential(testCtx(t), r)
					check(t, err, tc.want)
				})
				t.Run("getAssertion "+tc.name, func(t *testing.T) {
					r := getReq("example.dk", cred.id)
					r.PINUVAuthParam, r.PINUVAuthProtocol = tc.param, tc.protocol
					_, err := a.GetAssertion(testCtx(t), r)
					check(t, err, tc.want)
				})
			}
		})
	}
}
