package service

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
)

// ceremonySeeds are login ceremonies of every stage and kind.
var ceremonySeeds = []loginCeremony{
	{Stage: stagePassword, Password: "pw-3kq0d7n2x9", Expires: 1772442000123456789},
	{Stage: stagePassword, Password: "pw-1", PasswordPending: true, Expires: 1},
	{Stage: stageFactor, Password: "pw-1", PasswordPending: true, Factor: "chip-2", Kind: device.KindChip,
		Challenge: bytes.Repeat([]byte{0xa5}, challengeLen), Expires: 1772442000123456789},
	{Stage: stageFactor, Password: "pw-1", Factor: "kv-2", Kind: device.KindCodeDisplay, Expires: -5},
	{Stage: stageFactor, Factor: strings.Repeat("a", MaxIDLen), Kind: device.KindApp, Challenge: make([]byte, challengeLen)},
}

// FuzzLoginCeremony: the sealed form of a login ceremony decodes without
// panicking, and what decodes encodes to the very same bytes (one
// ceremony, one form), and back to the same ceremony.
func FuzzLoginCeremony(f *testing.F) {
	for _, c := range ceremonySeeds {
		b, err := c.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{ceremonyVersion, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{ceremonyVersion, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte(`{"s":"factor","e":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c loginCeremony
		if c.unmarshal(b) != nil {
			return
		}
		again, err := c.marshal()
		if err != nil {
			t.Fatalf("%x decodes to %+v, which does not encode: %v", b, c, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, c, again)
		}
		var c2 loginCeremony
		if err := c2.unmarshal(again); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("%+v round trips to %+v (%v)", c, c2, err)
		}
	})
}

// TestLoginCeremonyForm: every ceremony round trips; truncated, extended
// or altered forms are refused; fields too long are refused at sealing.
func TestLoginCeremonyForm(t *testing.T) {
	for _, c := range ceremonySeeds {
		b, err := c.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got loginCeremony
		if err := got.unmarshal(b); err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%+v round trips to %+v (%v)", c, got, err)
		}
		for i := range len(b) {
			if (&loginCeremony{}).unmarshal(b[:i]) == nil {
				t.Errorf("%+v: its first %d bytes decode", c, i)
			}
		}
		if (&loginCeremony{}).unmarshal(append(b, 0)) == nil {
			t.Errorf("%+v: a byte more decodes", c)
		}
		for _, i := range []int{0, 1, 2} {
			bad := bytes.Clone(b)
			bad[i] ^= 0x80
			if (&loginCeremony{}).unmarshal(bad) == nil {
				t.Errorf("%+v: byte %d altered decodes", c, i)
			}
		}
	}
	if _, err := (&loginCeremony{Stage: "other"}).marshal(); err == nil {
		t.Error("a ceremony of an unknown stage was encoded")
	}
	if _, err := (&loginCeremony{Stage: stageFactor, Factor: strings.Repeat("a", 256)}).marshal(); err == nil {
		t.Error("a field of 256 bytes was encoded")
	}
}

// registrationSeeds are registration ceremonies with short, long and no
// labels.
var registrationSeeds = []registrationCeremony{
	{AuthenticatorID: "chip-3kq0d7n2x9", Label: "load", Challenge: bytes.Repeat([]byte{0xa5}, challengeLen), Expires: 1772442000123456789},
	{AuthenticatorID: strings.Repeat("a", MaxIDLen), Label: strings.Repeat("ø", MaxLabelLen), Challenge: make([]byte, challengeLen), Expires: -5},
	{AuthenticatorID: "chip-1", Challenge: make([]byte, challengeLen)},
}

// FuzzRegistrationCeremony: the sealed form of a registration ceremony
// decodes without panicking, and what decodes encodes to the very same
// bytes (one ceremony, one form), and back to the same ceremony.
func FuzzRegistrationCeremony(f *testing.F) {
	for _, r := range registrationSeeds {
		b, err := r.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{registrationVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte(`{"purpose":"register","challenge":"AA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r registrationCeremony
		if r.unmarshal(b) != nil {
			return
		}
		again, err := r.marshal()
		if err != nil {
			t.Fatalf("%x decodes to %+v, which does not encode: %v", b, r, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, r, again)
		}
		var r2 registrationCeremony
		if err := r2.unmarshal(again); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%+v round trips to %+v (%v)", r, r2, err)
		}
	})
}

// TestRegistrationCeremonyForm: every registration round trips; truncated,
// extended or altered forms are refused; fields too long are refused at
// sealing.
func TestRegistrationCeremonyForm(t *testing.T) {
	for _, r := range registrationSeeds {
		b, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got registrationCeremony
		if err := got.unmarshal(b); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%+v round trips to %+v (%v)", r, got, err)
		}
		for i := range len(b) {
			if (&registrationCeremony{}).unmarshal(b[:i]) == nil {
				t.Errorf("%+v: its first %d bytes decode", r, i)
			}
		}
		if (&registrationCeremony{}).unmarshal(append(b, 0)) == nil {
			t.Errorf("%+v: a byte more decodes", r)
		}
		for _, i := range []int{0, 1} {
			bad := bytes.Clone(b)
			bad[i] ^= 0x80
			if (&registrationCeremony{}).unmarshal(bad) == nil {
				t.Errorf("%+v: byte %d altered decodes", r, i)
			}
		}
	}
	if _, err := (&registrationCeremony{AuthenticatorID: strings.Repeat("a", 256)}).marshal(); err == nil {
		t.Error("an ID of 256 bytes was encoded")
	}
}
