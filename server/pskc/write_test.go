package pskc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/pskc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/pskc")

// stationKeys is a batch as a provisioning station would write it, with
// every field set somewhere.
func stationKeys() []pskc.Key {
	return []pskc.Key{
		{Serial: "CD-000001", Manufacturer: "authbench", Model: "code-display v1", ID: "CD-000001#1",
			Algorithm: pskc.TOTP, Hash: otp.SHA1, Digits: 6, Period: 30 * time.Second,
			Secret: []byte("12345678901234567890")},
		{Serial: "AR-000002", Manufacturer: "authbench", Model: "audio-code-reader v1", ID: "AR-000002#1",
			Algorithm: pskc.TOTP, Hash: otp.SHA256, Digits: 8, Period: 60 * time.Second, Time: 1234567890, Drift: -2,
			Secret:    []byte("12345678901234567890123456789012"),
			NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 12, 31, 23, 59, 59, 500, time.UTC)},
		{Serial: "HT-3", ID: "hotp <&> \"3\"", Algorithm: pskc.HOTP, Hash: otp.SHA512, Digits: 7, Counter: 42,
			Secret: bytes.Repeat([]byte{0xA5}, 64)},
		{ID: "minimal", Algorithm: pskc.TOTP, Secret: []byte{1}},
	}
}

var stationPSK = unhex("000102030405060708090a0b0c0d0e0f")

func TestWriteRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		enc  pskc.EncryptOptions
		keys pskc.KeySource
	}{
		{"pre-shared AES-128", pskc.EncryptOptions{Key: stationPSK}, pskc.PreShared{pskc.DefaultKeyName: stationPSK}},
		{"pre-shared AES-192 named", pskc.EncryptOptions{KeyName: "station 7", Key: make([]byte, 24)}, pskc.PreShared{"station 7": make([]byte, 24)}},
		{"pre-shared AES-256", pskc.EncryptOptions{Key: bytes.Repeat([]byte{7}, 32)}, pskc.PreShared{pskc.DefaultKeyName: bytes.Repeat([]byte{7}, 32)}},
		{"passphrase", pskc.EncryptOptions{Passphrase: []byte("correct horse"), Iterations: 1000}, pskc.Passphrase("correct horse")},
		{"passphrase named", pskc.EncryptOptions{KeyName: "batch 9", Passphrase: []byte("pw"), Iterations: 1}, pskc.Passphrase("pw")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := pskc.Write(&buf, stationKeys(), tt.enc); err != nil {
				t.Fatal(err)
			}
			c, err := pskc.Parse(bytes.NewReader(buf.Bytes()), tt.keys)
			if err != nil {
				t.Fatalf("%v\n%s", err, buf.Bytes())
			}
			want := stationKeys()
			want[3].Hash = otp.SHA1 // a zero Hash is left out; Parse reports the default
			checkKeys(t, c.Keys, want)
			if bytes.Contains(buf.Bytes(), []byte("12345678901234567890")) {
				t.Error("the document holds a secret in the clear")
			}
		})
	}
}

// TestWriteGolden pins the document layout; regenerate with -update.
func TestWriteGolden(t *testing.T) {
	for _, tt := range []struct {
		file string
		enc  pskc.EncryptOptions
	}{
		{"station-preshared.xml", pskc.EncryptOptions{KeyName: "station-1", Key: stationPSK}},
		{"station-passphrase.xml", pskc.EncryptOptions{KeyName: "batch-1", Passphrase: []byte("qwerty"), Iterations: 1000}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			tt.enc.Rand = &countingRand{}
			var buf bytes.Buffer
			if err := pskc.Write(&buf, stationKeys(), tt.enc); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdataDir, tt.file)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readTestdata(t, tt.file)
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("Write output differs from %s (run with -update if intended):\n%s", tt.file, buf.Bytes())
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	ok := func() pskc.Key {
		return pskc.Key{ID: "k", Algorithm: pskc.TOTP, Secret: []byte("12345678901234567890")}
	}
	tests := []struct {
		name  string
		edit  func(k *pskc.Key)
		want  error
		field string
	}{
		{"empty Id", func(k *pskc.Key) { k.ID = "" }, pskc.ErrFormat, "Key/@Id"},
		{"Id with leading space", func(k *pskc.Key) { k.ID = " k" }, pskc.ErrFormat, "Key/@Id"},
		{"serial with NUL", func(k *pskc.Key) { k.Serial = "a\x00b" }, pskc.ErrFormat, "DeviceInfo/SerialNo"},
		{"model not UTF-8", func(k *pskc.Key) { k.Model = "\xff" }, pskc.ErrFormat, "DeviceInfo/Model"},
		{"other algorithm", func(k *pskc.Key) { k.Algorithm = "ocra" }, pskc.ErrUnsupported, "Key/@Algorithm"},
		{"bad hash", func(k *pskc.Key) { k.Hash = 9 }, pskc.ErrUnsupported, "Key/AlgorithmParameters/Suite"},
		{"5 digits", func(k *pskc.Key) { k.Digits = 5 }, pskc.ErrUnsupported, "Key/AlgorithmParameters/ResponseFormat/@Length"},
		{"fractional period", func(k *pskc.Key) { k.Period = 1500 * time.Millisecond }, pskc.ErrFormat, "Key/Data/TimeInterval"},
		{"negative period", func(k *pskc.Key) { k.Period = -time.Second }, pskc.ErrFormat, "Key/Data/TimeInterval"},
		{"counter too big", func(k *pskc.Key) { k.Counter = math.MaxInt64 + 1 }, pskc.ErrFormat, "Key/Data/Counter"},
		{"drift too big", func(k *pskc.Key) { k.Drift = math.MaxInt32 + 1 }, pskc.ErrFormat, "Key/Data/TimeDrift"},
		{"year 10000", func(k *pskc.Key) { k.NotAfter = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, pskc.ErrFormat, "Key/Policy/ExpiryDate"},
		{"no secret", func(k *pskc.Key) { k.Secret = nil }, pskc.ErrFormat, "Key/Data/Secret"},
		{"secret too long", func(k *pskc.Key) { k.Secret = make([]byte, pskc.MaxSecretSize+1) }, pskc.ErrFormat, "Key/Data/Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ok()
			tt.edit(&k)
			var buf bytes.Buffer
			err := pskc.Write(&buf, []pskc.Key{ok2(), k}, pskc.EncryptOptions{Key: stationPSK})
			e := wantErr(t, err, tt.want)
			if e.Package != 2 || e.Field != tt.field {
				t.Errorf("package %d field %q, want 2 %q: %v", e.Package, e.Field, tt.field, err)
			}
			if buf.Len() != 0 {
				t.Error("Write wrote a partial document")
			}
		})
	}
	t.Run("duplicate Id", func(t *testing.T) {
		err := pskc.Write(&bytes.Buffer{}, []pskc.Key{ok(), ok()}, pskc.EncryptOptions{Key: stationPSK})
		wantErr(t, err, pskc.ErrFormat)
	})
	for _, tt := range []struct {
		name string
		enc  pskc.EncryptOptions
		want error
	}{
		{"no key", pskc.EncryptOptions{}, pskc.ErrNoKey},
		{"empty passphrase", pskc.EncryptOptions{Passphrase: []byte{}}, pskc.ErrNoKey},
		{"both", pskc.EncryptOptions{Key: stationPSK, Passphrase: []byte("x")}, pskc.ErrUnsupported},
		{"short key", pskc.EncryptOptions{Key: make([]byte, 15)}, pskc.ErrUnsupported},
		{"key name with control character", pskc.EncryptOptions{KeyName: "a\x01", Key: stationPSK}, pskc.ErrUnsupported},
		{"negative iterations", pskc.EncryptOptions{Passphrase: []byte("x"), Iterations: -1}, pskc.ErrUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := pskc.Write(&buf, []pskc.Key{ok()}, tt.enc)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Error("Write wrote something")
			}
		})
	}
}

func ok2() pskc.Key {
	return pskc.Key{ID: "first", Algorithm: pskc.HOTP, Secret: []byte("12345678901234567890")}
}

func TestWriteIOErrors(t *testing.T) {
	boom := errors.New("boom")
	keys := []pskc.Key{ok2()}
	if err := pskc.Write(&bytes.Buffer{}, keys, pskc.EncryptOptions{Key: stationPSK, Rand: iotest.ErrReader(boom)}); !errors.Is(err, boom) {
		t.Errorf("Rand error: got %v", err)
	}
	if err := pskc.Write(errWriter{boom}, keys, pskc.EncryptOptions{Key: stationPSK}); !errors.Is(err, boom) {
		t.Errorf("writer error: got %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestSecretNeverPrinted formats keys every way a log line might, and
// looks for the secret.
func TestSecretNeverPrinted(t *testing.T) {
	secret := []byte("SUPERSECRET-0123456789")
	k := pskc.Key{Serial: "CD-1", ID: "k1", Algorithm: pskc.TOTP, Hash: otp.SHA1, Digits: 6, Secret: secret}
	c := &pskc.Container{Keys: []pskc.Key{k}}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.Keys))
	}
	outputs = append(outputs, k.String(), fmt.Sprint(k), fmt.Sprintln(c))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		slog.New(h).Info("imported", "key", k, "ptr", &k, "container", c)
	}
	outputs = append(outputs, logs.String())
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	for _, out := range outputs {
		low := strings.ToLower(out)
		for _, needle := range []string{"supersecret", fmt.Sprintf("%x", secret), fmt.Sprintf("%v", secret[:4])} {
			if strings.Contains(low, strings.ToLower(needle)) {
				t.Errorf("secret printed: %s", out)
			}
		}
	}
	if !strings.Contains(k.String(), "redacted") || !strings.Contains(logs.String(), "secret_set") {
		t.Errorf("unexpected String %q / logs %s", k.String(), logs.String())
	}
}

func TestWipe(t *testing.T) {
	s := []byte("12345678901234567890")
	c := &pskc.Container{Keys: []pskc.Key{{Secret: s}}}
	c.Wipe()
	if c.Keys[0].Secret != nil || !bytes.Equal(s, make([]byte, len(s))) {
		t.Errorf("after Wipe: %v, backing %x", c.Keys[0].Secret == nil, s)
	}
}
