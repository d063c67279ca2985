package otp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readCSV returns the rows of a testdata CSV file as maps keyed by the
// header line.
func readCSV(t testing.TB, name string) []map[string]string {
	t.Helper()
	f, err := os.Open("../../testdata/otp/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("%s: no rows", name)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

func mustUint(t testing.TB, s string, base int) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRFC4226 checks the HOTP values of RFC 4226 Appendix D, together with
// the intermediate HMAC and truncation values listed there.
func TestRFC4226(t *testing.T) {
	rows := readCSV(t, "rfc4226.csv")
	if len(rows) != 10 {
		t.Fatalf("want 10 vectors, have %d", len(rows))
	}
	for _, r := range rows {
		secret := []byte(r["secret_ascii"])
		counter := mustUint(t, r["counter"], 10)
		t.Run(r["counter"], func(t *testing.T) {
			mac := hmac.New(sha1.New, secret)
			binary.Write(mac, binary.BigEndian, counter)
			sum := mac.Sum(nil)
			if got := hex.EncodeToString(sum); got != r["hmac_sha1_hex"] {
				t.Errorf("HMAC = %s, want %s", got, r["hmac_sha1_hex"])
			}
			off := sum[19] & 0xf
			dbc := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
			if got := strconv.FormatUint(uint64(dbc), 16); got != r["truncated_hex"] {
				t.Errorf("truncated = %s, want %s", got, r["truncated_hex"])
			}
			if got := strconv.FormatUint(uint64(dbc), 10); got != r["truncated_decimal"] {
				t.Errorf("truncated = %s, want %s", got, r["truncated_decimal"])
			}
			code, err := HOTP(secret, counter, 6, SHA1)
			if err != nil || code != r["hotp"] {
				t.Errorf("HOTP = %q, %v; want %s", code, err, r["hotp"])
			}
			got, err := VerifyHOTP(secret, r["hotp"], 0, 9, 6, SHA1)
			if err != nil || got != counter {
				t.Errorf("VerifyHOTP = %d, %v; want %d", got, err, counter)
			}
		})
	}
}

// TestRFC6238 checks the TOTP values of RFC 6238 Appendix B for all three
// hashes, with the per-hash seeds of the RFC's reference code.
func TestRFC6238(t *testing.T) {
	rows := readCSV(t, "rfc6238.csv")
	if len(rows) != 18 {
		t.Fatalf("want 18 vectors, have %d", len(rows))
	}
	for _, r := range rows {
		alg, err := ParseAlgorithm(r["algorithm"])
		if err != nil {
			t.Fatal(err)
		}
		p := &TOTP{Secret: []byte(r["secret_ascii"]), Digits: 8, Algorithm: alg}
		sec := int64(mustUint(t, r["unix_time"], 10))
		tm := time.Unix(sec, 0)
		step := mustUint(t, r["step_hex"], 16)
		want := r["totp"]
		t.Run(r["unix_time"]+"/"+r["algorithm"], func(t *testing.T) {
			if got := tm.UTC().Format(time.DateTime); got != r["utc"] {
				t.Errorf("UTC = %s, want %s", got, r["utc"])
			}
			if got := p.Step(tm); got != step {
				t.Errorf("Step = %x, want %x", got, step)
			}
			code, s, err := p.At(tm)
			if err != nil || code != want || s != step {
				t.Errorf("At = %q, %x, %v; want %s, %x", code, s, err, want, step)
			}
			m, err := p.Verify(want, tm, 1, 0)
			if err != nil || m != (Match{Step: step}) {
				t.Errorf("Verify = %+v, %v; want step %x drift 0", m, err, step)
			}
			if _, err := p.Verify(want, tm, 1, step); !errors.Is(err, ErrReplayed) {
				t.Errorf("Verify at watermark: err = %v, want ErrReplayed", err)
			}
		})
	}
}

func TestHOTPParameters(t *testing.T) {
	secret := []byte("12345678901234567890")
	tests := []struct {
		name   string
		secret []byte
		digits int
		alg    Algorithm
		err    error
	}{
		{"ok6", secret, 6, SHA1, nil},
		{"ok7", secret, 7, SHA256, nil},
		{"ok8", secret, 8, SHA512, nil},
		{"empty secret", nil, 6, SHA1, ErrInvalidParameters},
		{"5 digits", secret, 5, SHA1, ErrInvalidParameters},
		{"9 digits", secret, 9, SHA1, ErrInvalidParameters},
		{"0 digits", secret, 0, SHA1, ErrInvalidParameters},
		{"alg 0", secret, 6, 0, ErrInvalidParameters},
		{"alg 4", secret, 6, 4, ErrInvalidParameters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := HOTP(tt.secret, 1, tt.digits, tt.alg)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if code != "" {
					t.Errorf("code %q returned with error", code)
				}
				if !strings.HasPrefix(err.Error(), "otp: ") {
					t.Errorf("error %q lacks package prefix", err)
				}
				return
			}
			if len(code) != tt.digits {
				t.Errorf("code %q has %d digits, want %d", code, len(code), tt.digits)
			}
		})
	}
}

func TestVerifyHOTPWindow(t *testing.T) {
	secret := []byte("12345678901234567890")
	code5, _ := HOTP(secret, 5, 6, SHA1) // 254676
	tests := []struct {
		name    string
		code    string
		counter uint64
		window  int
		want    uint64
		err     error
	}{
		{"exact", code5, 5, 0, 5, nil},
		{"ahead", code5, 3, 2, 5, nil},
		{"beyond window", code5, 3, 1, 0, ErrMismatch},
		{"behind", code5, 6, 10, 0, ErrMismatch},
		{"short", "25467", 5, 0, 0, ErrMismatch},
		{"letters", "25467a", 5, 0, 0, ErrMismatch},
		{"negative window", code5, 5, -1, 0, ErrInvalidParameters},
		{"huge window", code5, 5, MaxWindow + 1, 0, ErrInvalidParameters},
		{"top of counter space", "000000", ^uint64(0) - 1, 5, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "top of counter space" {
				// Whatever the codes up there are, the window must stop at
				// 2^64-1 instead of wrapping to counter 0.
				c, _ := HOTP(secret, ^uint64(0), 6, SHA1)
				got, err := VerifyHOTP(secret, c, tt.counter, tt.window, 6, SHA1)
				if err != nil || got < tt.counter {
					t.Fatalf("got %d, %v", got, err)
				}
				c0, _ := HOTP(secret, 0, 6, SHA1)
				c1, _ := HOTP(secret, tt.counter, 6, SHA1)
				c2, _ := HOTP(secret, ^uint64(0), 6, SHA1)
				if c0 != c1 && c0 != c2 {
					if _, err := VerifyHOTP(secret, c0, tt.counter, tt.window, 6, SHA1); !errors.Is(err, ErrMismatch) {
						t.Fatalf("wrapped to counter 0: %v", err)
					}
				}
				return
			}
			got, err := VerifyHOTP(secret, tt.code, tt.counter, tt.window, 6, SHA1)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestTOTPDefaults(t *testing.T) {
	p := &TOTP{Secret: []byte("12345678901234567890")}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tm := time.Unix(59, 0)
	code, step, err := p.At(tm)
	// 6 digits of the RFC 6238 SHA-1 value 94287082 at T = 1.
	if err != nil || code != "287082" || step != 1 {
		t.Fatalf("At = %q, %d, %v", code, step, err)
	}
	if got := p.Expires(1); !got.Equal(time.Unix(60, 0)) {
		t.Errorf("Expires(1) = %v", got)
	}
	if got := p.Start(1); !got.Equal(time.Unix(30, 0)) {
		t.Errorf("Start(1) = %v", got)
	}
	if got := p.ValidFor(tm); got != time.Second {
		t.Errorf("ValidFor = %v, want 1s", got)
	}
	if got := p.ValidFor(time.Unix(60, 0)); got != 30*time.Second {
		t.Errorf("ValidFor at a step boundary = %v, want 30s", got)
	}
}

func TestTOTPParameters(t *testing.T) {
	secret := []byte("12345678901234567890")
	tests := []struct {
		name string
		p    TOTP
		ok   bool
	}{
		{"defaults", TOTP{Secret: secret}, true},
		{"60s", TOTP{Secret: secret, Period: time.Minute}, true},
		{"1s", TOTP{Secret: secret, Period: time.Second}, true},
		{"no secret", TOTP{}, false},
		{"half second", TOTP{Secret: secret, Period: 500 * time.Millisecond}, false},
		{"1.5s", TOTP{Secret: secret, Period: 1500 * time.Millisecond}, false},
		{"negative period", TOTP{Secret: secret, Period: -time.Second}, false},
		{"5 digits", TOTP{Secret: secret, Digits: 5}, false},
		{"alg 9", TOTP{Secret: secret, Algorithm: 9}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidParameters)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			_, _, errAt := tt.p.At(time.Unix(1e9, 0))
			_, errCode := tt.p.Code(5)
			_, errVerify := tt.p.Verify("123456", time.Unix(1e9, 0), 1, 0)
			if !tt.ok {
				for _, e := range []error{errAt, errCode, errVerify} {
					if !errors.Is(e, ErrInvalidParameters) {
						t.Errorf("err = %v, want ErrInvalidParameters", e)
					}
				}
			}
		})
	}
}

func TestTOTPVerifySkew(t *testing.T) {
	p := &TOTP{Secret: []byte("12345678901234567890123456789012"), Algorithm: SHA256}
	now := time.Unix(1_700_000_015, 0)
	cur := p.Step(now)
	codeAt := func(d int) string {
		c, err := p.Code(uint64(int64(cur) + int64(d)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		code  string
		skew  int
		after uint64
		match Match
		err   error
	}{
		{"current", codeAt(0), 1, 0, Match{cur, 0}, nil},
		{"one behind", codeAt(-1), 1, 0, Match{cur - 1, -1}, nil},
		{"one ahead", codeAt(1), 1, 0, Match{cur + 1, 1}, nil},
		{"two behind, skew 1", codeAt(-2), 1, 0, Match{}, ErrMismatch},
		{"two ahead, skew 1", codeAt(2), 1, 0, Match{}, ErrMismatch},
		{"two behind, skew 2", codeAt(-2), 2, 0, Match{cur - 2, -2}, nil},
		{"one behind, skew 0", codeAt(-1), 0, 0, Match{}, ErrMismatch},
		{"current, used", codeAt(0), 1, cur, Match{}, ErrReplayed},
		{"behind the watermark", codeAt(-1), 1, cur - 1, Match{}, ErrReplayed},
		{"just above the watermark", codeAt(0), 1, cur - 1, Match{cur, 0}, nil},
		{"watermark in the future", codeAt(1), 1, cur + 1, Match{}, ErrReplayed},
		{"wrong", "000000", 1, 0, Match{}, ErrMismatch},
		{"too long", codeAt(0) + "0", 1, 0, Match{}, ErrMismatch},
		{"spaces", " " + codeAt(0)[1:], 1, 0, Match{}, ErrMismatch},
		{"empty", "", 1, 0, Match{}, ErrMismatch},
		{"negative skew", codeAt(0), -1, 0, Match{}, ErrInvalidParameters},
		{"skew too big", codeAt(0), MaxWindow + 1, 0, Match{}, ErrInvalidParameters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code == "000000" && tt.code == codeAt(0) {
				t.Skip("unlucky vector")
			}
			m, err := p.Verify(tt.code, now, tt.skew, tt.after)
			if !errors.Is(err, tt.err) || m != tt.match {
				t.Fatalf("Verify = %+v, %v; want %+v, %v", m, err, tt.match, tt.err)
			}
		})
	}
}

func TestTOTPNearT0(t *testing.T) {
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	p := &TOTP{Secret: []byte("12345678901234567890"), T0: t0}
	if got := p.Step(t0); got != 0 {
		t.Errorf("Step(T0) = %d", got)
	}
	if got := p.Step(t0.Add(30*time.Second - time.Nanosecond)); got != 0 {
		t.Errorf("Step(T0+30s-1ns) = %d", got)
	}
	if got := p.Step(t0.Add(30 * time.Second)); got != 1 {
		t.Errorf("Step(T0+30s) = %d", got)
	}
	before := t0.Add(-time.Nanosecond)
	if _, _, err := p.At(before); !errors.Is(err, ErrInvalidParameters) {
		t.Errorf("At before T0: %v", err)
	}
	if _, err := p.Verify("123456", before, 1, 0); !errors.Is(err, ErrInvalidParameters) {
		t.Errorf("Verify before T0: %v", err)
	}
	// At step 0 the candidate step -1 does not exist and is skipped.
	c0, _ := p.Code(0)
	if m, err := p.Verify(c0, t0, 1, 0); !errors.Is(err, ErrReplayed) {
		t.Errorf("step 0 with watermark 0: %+v, %v", m, err)
	}
	c1, _ := p.Code(1)
	if m, err := p.Verify(c1, t0, 1, 0); err != nil || m != (Match{1, 1}) {
		t.Errorf("step 1 from step 0: %+v, %v", m, err)
	}
	if got := p.Start(2); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Start(2) = %v", got)
	}
}

func TestTOTPFarFuture(t *testing.T) {
	p := &TOTP{Secret: []byte("x"), Period: time.Second}
	max := ^uint64(0)
	// Saturates instead of wrapping.
	for _, s := range []uint64{max, max - 1, max / 2} {
		if e := p.Expires(s); e.Before(p.Start(s)) {
			t.Errorf("Expires(%d) = %v before Start = %v", s, e, p.Start(s))
		}
	}
	far := time.Unix(1<<62, 0)
	code, step, err := p.At(far)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := p.Verify(code, far, MaxWindow, 0); err != nil || m.Step != step {
		t.Errorf("Verify far: %+v, %v", m, err)
	}
}

// TestSecretNotPrinted checks that no formatting path prints the secret.
func TestSecretNotPrinted(t *testing.T) {
	secret := []byte("TOPSECRET-0123456789")
	p := TOTP{Secret: secret, Digits: 8}
	forms := []string{hex.EncodeToString(secret), string(secret), fmt.Sprint(secret), fmt.Sprintf("%x", secret),
		fmt.Sprintf("%X", secret), fmt.Sprintf("%q", secret), fmt.Sprintf("%#v", secret)}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, p), fmt.Sprintf(verb, &p))
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "totp", p, "ptr", &p)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "totp", p)
	outs = append(outs, logBuf.String())
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	for _, out := range outs {
		for _, f := range forms {
			if strings.Contains(out, f) {
				t.Errorf("output %q contains the secret as %q", out, f)
			}
		}
	}
	if s := p.String(); !strings.Contains(s, "redacted") || !strings.Contains(s, "8 digits") {
		t.Errorf("String = %q", s)
	}
}

func FuzzTOTPVerify(f *testing.F) {
	for _, r := range readCSV(f, "rfc6238.csv") {
		alg, err := ParseAlgorithm(r["algorithm"])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r["totp"], int64(mustUint(f, r["unix_time"], 10)), uint8(1), uint64(0), uint8(8), uint8(alg), r["secret_ascii"])
	}
	for _, r := range readCSV(f, "rfc4226.csv") {
		f.Add(r["hotp"], int64(59), uint8(2), mustUint(f, r["counter"], 10), uint8(6), uint8(SHA1), r["secret_ascii"])
	}
	f.Add("", int64(-1), uint8(0), ^uint64(0), uint8(0), uint8(0), "")
	f.Add("12345٣", int64(1<<62), uint8(255), uint64(1), uint8(7), uint8(9), "k")
	f.Fuzz(func(t *testing.T, code string, unix int64, skew uint8, after uint64, digits, alg uint8, secret string) {
		p := &TOTP{Secret: []byte(secret), Digits: int(digits), Algorithm: Algorithm(alg)}
		tm := time.Unix(unix, 0)
		m, err := p.Verify(code, tm, int(skew), after)
		if err != nil {
			if m != (Match{}) {
				t.Fatalf("non-zero match %+v with error %v", m, err)
			}
			if !errors.Is(err, ErrInvalidParameters) && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrReplayed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// A match round-trips: the code is the code of the matched step,
		// the step is fresh and within the skew of the current one.
		if m.Step <= after {
			t.Fatalf("accepted step %d at or below watermark %d", m.Step, after)
		}
		if m.Drift < -int(skew) || m.Drift > int(skew) || p.Step(tm)+uint64(m.Drift) != m.Step {
			t.Fatalf("drift %d for step %d at step %d, skew %d", m.Drift, m.Step, p.Step(tm), skew)
		}
		c, err := p.Code(m.Step)
		if err != nil || c != code {
			t.Fatalf("Code(%d) = %q, %v; verified %q", m.Step, c, err, code)
		}
	})
}

func FuzzHOTP(f *testing.F) {
	for _, r := range readCSV(f, "rfc4226.csv") {
		f.Add([]byte(r["secret_ascii"]), mustUint(f, r["counter"], 10), uint8(6), uint8(SHA1))
	}
	f.Add([]byte{}, uint64(0), uint8(0), uint8(0))
	f.Add([]byte{0}, ^uint64(0), uint8(8), uint8(SHA512))
	f.Fuzz(func(t *testing.T, secret []byte, counter uint64, digits uint8, alg uint8) {
		code, err := HOTP(secret, counter, int(digits), Algorithm(alg))
		if err != nil {
			if code != "" || !errors.Is(err, ErrInvalidParameters) {
				t.Fatalf("HOTP = %q, %v", code, err)
			}
			return
		}
		if len(code) != int(digits) || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("HOTP = %q for %d digits", code, digits)
		}
		got, err := VerifyHOTP(secret, code, counter, 0, int(digits), Algorithm(alg))
		if err != nil || got != counter {
			t.Fatalf("VerifyHOTP = %d, %v; want %d", got, err, counter)
		}
	})
}

func BenchmarkHOTP(b *testing.B) {
	secret := []byte("12345678901234567890")
	for i := 0; b.Loop(); i++ {
		if _, err := HOTP(secret, uint64(i), 6, SHA1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHOTPWindow1(b *testing.B) {
	secret := []byte("12345678901234567890")
	code, _ := HOTP(secret, 8, 6, SHA1)
	for b.Loop() {
		if _, err := VerifyHOTP(secret, code, 7, 1, 6, SHA1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTOTPVerifySkew1(b *testing.B) {
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		b.Run(alg.String(), func(b *testing.B) {
			p := &TOTP{Secret: []byte("12345678901234567890"), Algorithm: alg}
			now := time.Unix(1_700_000_000, 0)
			code, step, err := p.At(now)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Verify(code, now, 1, step-1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
