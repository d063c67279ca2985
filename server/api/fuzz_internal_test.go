package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/authbench/authbench/server/service"
)

// FuzzUnmarshalStrict: the strict request decoder never panics; what it
// accepts re-encodes to JSON that it accepts again and that re-encodes to
// exactly the same bytes.
func FuzzUnmarshalStrict(f *testing.F) {
	f.Add([]byte(`{"ceremony":"abc","code":"123456"}`))
	f.Add([]byte(`{"ceremony":"abc","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"},"clientExtensionResults":{"x":[1]}}}`))
	f.Add([]byte(`{"ceremony":"abc","pin":"428613","signature":"AAAA"}`))
	f.Add([]byte(`{"unknown":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req service.FinishLoginRequest
		if err := unmarshalStrict(b, &req); err != nil {
			return
		}
		c, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var again service.FinishLoginRequest
		if err := unmarshalStrict(c, &again); err != nil {
			t.Fatalf("re-encoded request refused: %v\n%s", err, c)
		}
		c2, _ := json.Marshal(again)
		if !bytes.Equal(c, c2) {
			t.Fatalf("%s != %s", c, c2)
		}
	})
}
