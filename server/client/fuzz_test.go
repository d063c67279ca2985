package client

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/authbench/authbench/device/webauthn"
)

// FuzzBytesJSON: no panic; an accepted string re-encodes to its unpadded
// form, which decodes to the same bytes.
func FuzzBytesJSON(f *testing.F) {
	f.Add([]byte(`"AQID"`))
	f.Add([]byte(`"-_8="`))
	f.Add([]byte(`""`))
	f.Add([]byte(`"` + webauthn.Encode([]byte("a challenge")) + `"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b Bytes
		if err := json.Unmarshal(in, &b); err != nil {
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var b2 Bytes
		if err := json.Unmarshal(out, &b2); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%s -> %s does not round-trip: %v", in, out, err)
		}
		out2, _ := json.Marshal(b2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("canonical form %s re-encodes to %s", out, out2)
		}
	})
}

// FuzzDecodeError: any error body gives an *APIError with a code, never a
// panic; an envelope decoded from the canonical JSON of an APIError gives
// the same code and message back.
func FuzzDecodeError(f *testing.F) {
	f.Add(401, []byte(`{"error":{"code":"wrong_code","message":"m","details":{"failures":1,"state":"active"}}}`))
	f.Add(502, []byte(`<html>`))
	f.Add(404, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError("GET", "/x", status, body)
		if e == nil || e.Code == "" {
			t.Fatalf("no code for %d %q", status, body)
		}
		_ = e.Error()
		e.Failures()
		e.State()
		env, err := json.Marshal(map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message, "details": e.Details}})
		if err != nil {
			t.Fatal(err)
		}
		e2 := decodeError("GET", "/x", status, env)
		if e2.Code != e.Code || e2.Message != e.Message {
			t.Fatalf("%q %q -> %q %q", e.Code, e.Message, e2.Code, e2.Message)
		}
	})
}

// FuzzReadBody: whatever length an answer claims (none, too little, too
// much, absurd), readBody returns exactly its bytes up to one more than
// the limit, and no more.
func FuzzReadBody(f *testing.F) {
	f.Add([]byte(`{"id":"p1"}`), int64(11), int64(100))
	f.Add([]byte(`{"id":"p1"}`), int64(-1), int64(5))
	f.Add(bytes.Repeat([]byte("x"), 2000), int64(3), int64(1000))
	f.Add([]byte{}, int64(1<<40), int64(8))
	f.Fuzz(func(t *testing.T, body []byte, size, limit int64) {
		if limit < 0 || limit > 1<<16 {
			t.Skip()
		}
		got, err := readBody(bytes.NewReader(body), size, limit)
		if err != nil {
			t.Fatal(err)
		}
		want := body[:min(int64(len(body)), limit+1)]
		if !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, want %d", len(got), len(want))
		}
	})
}
