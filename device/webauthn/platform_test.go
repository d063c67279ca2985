package webauthn_test

import (
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// Create and Get refuse options they cannot use before the chip is asked,
// and fill in what the options leave to the client.
func TestPlatformOptions(t *testing.T) {
	rp := newRP(t, webauthn.Config{Roots: testRoots(t)})
	c := newChip(t, "chip-1", chip.Options{})
	good := rp.CreationOptions(regChallenge, user, nil, 0)
	for name, edit := range map[string]func(*webauthn.CreationOptions){
		"no challenge":     func(o *webauthn.CreationOptions) { o.Challenge = "" },
		"challenge base64": func(o *webauthn.CreationOptions) { o.Challenge = "***" },
		"user id base64":   func(o *webauthn.CreationOptions) { o.User.ID = "a=" },
		"exclude id base64": func(o *webauthn.CreationOptions) {
			o.ExcludeCredentials = []webauthn.CredentialDescriptor{{Type: "public-key", ID: "!"}}
		},
	} {
		o := good
		edit(&o)
		if _, err := webauthn.Create(t.Context(), c, &o, origin); !errorIs(err, webauthn.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := webauthn.Create(t.Context(), c, nil, origin); !errorIs(err, webauthn.ErrInvalid) {
		t.Errorf("nil: %v", err)
	}
	if _, err := webauthn.Get(t.Context(), c, nil, origin); !errorIs(err, webauthn.ErrInvalid) {
		t.Errorf("nil: %v", err)
	}
	ro := rp.RequestOptions(loginChallenge, []webauthn.CredentialDescriptor{{Type: "public-key", ID: "%%"}}, 0)
	if _, err := webauthn.Get(t.Context(), c, &ro, origin); !errorIs(err, webauthn.ErrInvalid) {
		t.Errorf("allow id base64: %v", err)
	}

	// §5.4: no pubKeyCredParams means ES256; a required resident key is
	// asked for with rk; descriptors of other types are left out.
	o := good
	o.PubKeyCredParams = nil
	o.AuthenticatorSelection.ResidentKey = "required"
	o.ExcludeCredentials = []webauthn.CredentialDescriptor{{Type: "other", ID: "!"}}
	resp, err := webauthn.Create(t.Context(), c, &o, origin)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := rp.VerifyRegistration(t.Context(), resp, regChallenge)
	if err != nil || reg.Algorithm != webauthn.AlgES256 {
		t.Fatalf("%+v %v", reg, err)
	}
	// A resident credential is found without an allow list, and the chip
	// names it and the user.
	ro = rp.RequestOptions(loginChallenge, nil, 0)
	as, err := webauthn.Get(t.Context(), c, &ro, origin)
	if err != nil {
		t.Fatal(err)
	}
	if as.RawID != resp.RawID || as.Response.UserHandle != user.ID {
		t.Fatalf("%+v", as)
	}
	// A chip that holds none of the allowed credentials says so.
	ro = rp.RequestOptions(loginChallenge, []webauthn.CredentialDescriptor{{Type: "public-key", ID: "AAAA"}}, 0)
	if _, err := webauthn.Get(t.Context(), c, &ro, origin); !errorIs(err, ctap2.ErrNoCredentials) {
		t.Fatalf("unknown credential: %v", err)
	}
}
