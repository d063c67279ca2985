package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// encodeStrict encodes v as writeJSON's encoding/json encoder does.
func encodeStrict(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

// answers returns the answers of the login steps built from the fuzzer's
// values, in all their shapes.
func answers(s1, s2, s3 string, n int64, u uint64, t1, t2 int64, flags uint8) []any {
	zone := time.FixedZone("z", int(n%(30*3600)))
	at := time.Unix(0, t1).In(zone)
	if flags&1 != 0 {
		at = time.Unix(t1, t2).UTC()
	}
	var later time.Time
	if flags&2 != 0 {
		later = time.Unix(0, t2)
	}
	opts := &service.RequestOptions{Challenge: s1, RPID: s2, AllowCredentials: []service.CredentialDescriptor{{Type: "public-key", ID: s3}},
		UserVerification: "discouraged", Timeout: n}
	if flags&4 != 0 {
		opts.AllowCredentials[0].Transports = []string{s2, s3}
		opts.Hints = []string{s1}
	}
	if flags&8 != 0 {
		opts.AllowCredentials = nil
	}
	chip := service.FactorLogin{Ceremony: s1, ExpiresAt: at, Authenticator: s2, Kind: device.KindChip, PublicKey: opts}
	app := service.FactorLogin{Ceremony: s3, ExpiresAt: at, Authenticator: s1, Kind: device.Kind(s2), Challenge: s2}
	pw := service.PasswordLoginResult{Ceremony: s1, ExpiresAt: at, SecondFactors: []service.SecondFactor{
		{ID: s2, Kind: device.KindChip, State: domain.StateActive},
		{ID: s3, Kind: device.KindCodeDisplay, State: domain.State(s1), Label: s2, Serial: s3},
	}}
	if flags&16 != 0 {
		pw.SecondFactors = nil
		pw.Next = &chip
	}
	view := service.AuthenticatorView{ID: s1, IdentityID: s2, Kind: device.Kind(s3), State: domain.StateActive, Label: s3,
		Serial: s1, CredentialID: s2, Failures: int(n), Suspensions: int(-n), CreatedAt: at, ActivatedAt: later, LastUsedAt: at,
		SuspendedAt: later, SuspendReason: s3, BlockedAt: later, BlockReason: s1, Version: u}
	switch flags >> 5 & 3 {
	case 0:
		view.Element = service.ChipSummary{AAGUID: s1, SignCount: uint32(u), AttestationFormat: s2, AttestationTrusted: flags&1 != 0, ChipSerial: s3}
	case 1:
		view.Element = service.CodeSummary{Digits: int(n), PeriodSeconds: 30, Algorithm: s1, DriftSteps: -1, LastStep: u}
	case 2:
		view.Element = service.AppSummary{PublicKeyAlg: s1}
	case 3:
		view.Element = service.WipedSummary{Wiped: flags&1 != 0}
	}
	login := service.LoginResult{Session: s1, SessionID: s2, Level: s3, ExpiresAt: at, Authenticators: []string{s1, s2}, Authenticator: view}
	if flags&128 != 0 {
		login.Authenticators = nil
	}
	copts := service.CreationOptions{Challenge: s1, RP: webauthn.RPEntity{ID: s2, Name: s3}, User: webauthn.UserEntity{ID: s3, Name: s1, DisplayName: s2},
		PubKeyCredParams: []webauthn.CredentialParameter{{Type: "public-key", Alg: -7}, {Type: s1, Alg: n}}, Timeout: n,
		ExcludeCredentials: []service.CredentialDescriptor{}, Attestation: "direct",
		AuthenticatorSelection: webauthn.AuthenticatorSelection{UserVerification: "discouraged"}}
	if flags&4 != 0 {
		copts.ExcludeCredentials = []service.CredentialDescriptor{{Type: "public-key", ID: s2, Transports: []string{s3}}, {Type: s1, ID: s3}}
		copts.Hints = []string{s2, "security-key"}
		copts.AuthenticatorSelection = webauthn.AuthenticatorSelection{AuthenticatorAttachment: s1, ResidentKey: s2, RequireResidentKey: true, UserVerification: s3}
	}
	if flags&8 != 0 {
		copts.ExcludeCredentials, copts.PubKeyCredParams, copts.Attestation = nil, nil, ""
		copts.AuthenticatorSelection = webauthn.AuthenticatorSelection{ResidentKey: s1}
	}
	pending := view
	pending.State, pending.CredentialID, pending.Element = domain.StatePending, "", struct{}{}
	if flags&16 != 0 {
		pending.Element = service.PasswordSummary{}
	}
	added := service.AddResult{Authenticator: pending, Activation: service.ChipActivation{Ceremony: s1, PublicKey: copts}}
	return []any{chip, app, pw, login, view, added}
}

// FuzzAppendAnswer: what appendAnswer writes is byte for byte what
// encoding/json writes.
func FuzzAppendAnswer(f *testing.F) {
	f.Add("t3.azE.AbCdEf", "chip-1", "q83vEjRWeJA", int64(300000), uint64(7), int64(1772442000123456789), int64(0), uint8(0))
	f.Add("a<b", "ä", "\u2028", int64(-5), uint64(1<<63), int64(-1<<62), int64(999999999), uint8(0xff))
	f.Add("", "", "", int64(0), uint64(0), int64(0), int64(0), uint8(0x3e))
	f.Add("x", "y", "z", int64(25*3600), uint64(1), int64(253402300800), int64(5), uint8(1))
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, n int64, u uint64, t1, t2 int64, flags uint8) {
		for _, v := range answers(s1, s2, s3, n, u, t1, t2, flags) {
			fast, ok := appendAnswer(nil, v)
			if !ok {
				continue
			}
			strict, err := encodeStrict(v)
			if err != nil {
				t.Fatalf("%#v: written by hand, refused by encoding/json: %v", v, err)
			}
			if !bytes.Equal(fast, strict) {
				t.Fatalf("%#v:\n%s by hand,\n%s by encoding/json", v, fast, strict)
			}
		}
	})
}

// TestAppendAnswer: the login steps' answers with plain values are written
// by hand; a value that needs an escape is left to encoding/json.
func TestAppendAnswer(t *testing.T) {
	for i, v := range answers("t3.azE.AbCdEf-_", "chip-1", "q83vEjRWeJA", 300000, 7, 1772442000123456789, 0, 0) {
		if _, ok := appendAnswer(nil, v); !ok {
			t.Errorf("answer %d (%T) was not written by hand", i, v)
		}
	}
	for i, v := range answers("a&b", "chip-1", "x", 300000, 7, 1772442000123456789, 0, 0) {
		if _, ok := appendAnswer(nil, v); ok {
			t.Errorf("answer %d (%T) with an & was written by hand", i, v)
		}
	}
	if _, ok := appendAnswer(nil, service.AddResult{Activation: service.AppActivation{}}); ok {
		t.Error("the answer of adding an app was written by hand")
	}
	if _, ok := appendAnswer(nil, service.IdentityView{}); ok {
		t.Error("an answer of another endpoint was written by hand")
	}
}

// BenchmarkLoginBodies compares, for the bodies and answers of a chip's
// login, the hand-written decoder and encoder ("fast") with encoding/json
// ("strict"), what each request cost before.
//
//	go test -run '^$' -bench LoginBodies -benchmem ./server/api
func BenchmarkLoginBodies(b *testing.B) {
	seeds := loginBodySeeds(b)
	bodies := []struct {
		name string
		body []byte
		v    func() any
	}{
		{"password", seeds["password.json"], func() any { return new(service.PasswordLoginRequest) }},
		{"second", seeds["second.json"], func() any { return new(service.SecondFactorRequest) }},
		{"finish", seeds["finish-chip.json"], func() any { return new(service.FinishLoginRequest) }},
		{"activate", enrollBodySeeds(b)["activate-chip.json"], func() any { return new(service.ActivateRequest) }},
	}
	for _, bd := range bodies {
		b.Run("decode/"+bd.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !fastDecode(bd.body, bd.v()) {
					b.Fatal("declined")
				}
			}
		})
		b.Run("decode/"+bd.name+"/strict", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := unmarshalStrict(bd.body, bd.v()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	vs := answers("t3.azE.AbCdEf-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "chip-3kq0d7n2x9ab", "q83vEjRWeJAq83vEjRWeJA", 300000, 7, 1772442000123456789, 0, 2)
	for i, name := range []string{"factor", "", "password", "login", "authenticator", "added"} {
		if name == "" {
			continue
		}
		v := vs[i]
		var buf []byte
		b.Run("encode/"+name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				if buf, ok = appendAnswer(buf[:0], v); !ok {
					b.Fatal("declined")
				}
			}
		})
		b.Run("encode/"+name+"/strict", func(b *testing.B) {
			b.ReportAllocs()
			var w bytes.Buffer
			enc := json.NewEncoder(&w)
			for b.Loop() {
				w.Reset()
				if err := enc.Encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendUTC holds the hand-written times to time.Time.AppendFormat
// with RFC 3339 and nanoseconds, over the ends of the years the answers
// write, fractions with and without trailing zeros, and random instants.
func TestAppendUTC(t *testing.T) {
	times := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 2, 9, 0, 0, 100000000, time.UTC),
		time.Date(2026, 3, 2, 9, 0, 0, 120, time.UTC),
		time.Date(2024, 2, 29, 12, 34, 56, 7, time.UTC),
		time.Date(2026, 3, 2, 9, 0, 0, 5, time.FixedZone("", 0)),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(rng.Int64N(253402300800), rng.Int64N(1e9)).UTC())
	}
	for _, tm := range times {
		want := tm.AppendFormat(nil, time.RFC3339Nano)
		if got := appendUTC(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("appendUTC(%v) = %s, want %s", tm, got, want)
		}
	}
}
