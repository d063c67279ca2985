package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyForms returns the text forms of key that could leak into a message
// or a log.
func keyForms(key []byte) []string {
	return []string{
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		string(key),
	}
}

func assertNoKey(t *testing.T, what, out string, key []byte) {
	t.Helper()
	for _, f := range keyForms(key) {
		if strings.Contains(out, f) {
			t.Fatalf("%s reveals the key: %s", what, out)
		}
	}
}

func TestParseKeyring(t *testing.T) {
	key1, key2 := testKey(1), testKey(2)
	h1, h2 := hex.EncodeToString(key1), hex.EncodeToString(key2)
	id1 := KeyID(key1)
	tests := []struct {
		name    string
		in      string
		current string
		ids     []string
		err     string // part of the error message; "" for success
	}{
		{"hex", h1, id1, []string{id1}, ""},
		{"upper hex with newline", strings.ToUpper(h1) + "\n", id1, []string{id1}, ""},
		{"base64", base64.StdEncoding.EncodeToString(key1), id1, []string{id1}, ""},
		{"raw base64", base64.RawStdEncoding.EncodeToString(key1), id1, []string{id1}, ""},
		{"base64url", base64.URLEncoding.EncodeToString(key1), id1, []string{id1}, ""},
		{"raw base64url", "  " + base64.RawURLEncoding.EncodeToString(key1) + "\r\n", id1, []string{id1}, ""},
		{"json", `{"current":"k2","keys":{"k1":"` + h1 + `","k2":"` + base64.StdEncoding.EncodeToString(key2) + `"}}`, "k2", []string{"k1", "k2"}, ""},
		{"json one key", "{\n \"keys\": {\"main\": \"" + h2 + "\"},\n \"current\": \"main\"\n}\n", "main", []string{"main"}, ""},

		{"empty", " \n", "", nil, "empty"},
		{"short hex", h1[:62], "", nil, "64 hex digits"},
		{"long hex", h1 + "00", "", nil, "64 hex digits"},
		{"16-byte base64", base64.StdEncoding.EncodeToString(key1[:16]), "", nil, "64 hex digits"},
		{"zero key", strings.Repeat("0", 64), "", nil, "placeholder"},
		{"passphrase", "correct horse battery staple", "", nil, "64 hex digits"},
		{"bad json", `{"current":"k1","keys":{"k1":` + h1 + `}}`, "", nil, "invalid JSON"},
		{"unknown field", `{"current":"k1","keys":{"k1":"` + h1 + `"},"extra":1}`, "", nil, "exactly the fields"},
		{"number key", `{"current":"k1","keys":{"k1":5}}`, "", nil, "exactly the fields"},
		{"trailing data", `{"current":"k1","keys":{"k1":"` + h1 + `"}} {}`, "", nil, "data after"},
		{"no keys", `{"current":"k1","keys":{}}`, "", nil, "no keys"},
		{"no current", `{"keys":{"k1":"` + h1 + `"}}`, "", nil, "no current key"},
		{"current missing", `{"current":"k3","keys":{"k1":"` + h1 + `"}}`, "", nil, `"k3" is not among`},
		{"bad key value", `{"current":"k1","keys":{"k1":"` + h1[:60] + `"}}`, "", nil, `key "k1": expected`},
		{"bad key ID", `{"current":"k 1","keys":{"k 1":"` + h1 + `"}}`, "", nil, `key ID "k 1"`},
		{"key and ID swapped", `{"current":"k1","keys":{"` + h1 + `":"k1"}}`, "", nil, "looks like a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeyring([]byte(tt.in))
			if tt.err != "" {
				var kfe *KeyFileError
				if k != nil || !errors.Is(err, ErrKeyFile) || !errors.As(err, &kfe) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseKeyring = %v, %v; want an error with %q", k, err, tt.err)
				}
				assertNoKey(t, "error", err.Error(), key1)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Current() != tt.current || strings.Join(k.IDs(), ",") != strings.Join(tt.ids, ",") {
				t.Fatalf("ParseKeyring = %v", k)
			}
			// The canonical file form parses to the same keyring and is a
			// fixed point.
			b, err := k.MarshalKeyFile()
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ParseKeyring(b)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := k2.MarshalKeyFile()
			if !bytes.Equal(b, b2) {
				t.Fatalf("MarshalKeyFile not canonical:\n%s\n%s", b, b2)
			}
		})
	}
}

// logBuffer returns a logger writing text to the returned buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestLoadCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "master.key")

	logger, logs := logBuffer()
	if _, err := Load(path, "", logger); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key file: %v, want fs.ErrNotExist", err)
	}
	k1, err := Create(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file has mode %v", fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("new key directory has mode %v", di.Mode())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "back up") ||
		!strings.Contains(logs.String(), k1.Current()) {
		t.Errorf("first run logged %q", logs)
	}
	file, _ := os.ReadFile(path)
	var kf keyFile
	if err := json.Unmarshal(file, &kf); err != nil {
		t.Fatal(err)
	}
	k1key, _ := hex.DecodeString(kf.Keys[k1.Current()])
	if len(k1key) != KeySize {
		t.Fatalf("cannot find the key in %s", file)
	}
	assertNoKey(t, "first-run log", logs.String(), k1key)

	s, _ := k1.Seal([]byte("otp"), nil)

	// The second run loads the same key, quietly.
	logger, logs = logBuffer()
	k2, err := Load(path, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k2.Open(s, nil); err != nil || string(pt) != "otp" {
		t.Fatalf("second run opens %q, %v", pt, err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("second run warned: %s", logs)
	}
	assertNoKey(t, "second-run log", logs.String(), k1key)

	// Group- or world-readable: a warning, still loaded.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	logger, logs = logBuffer()
	if _, err := Load(path, "", logger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "chmod 600") {
		t.Errorf("mode 0644 logged %q", logs)
	}

	// The environment wins over the file.
	envKey := testKey(50)
	logger, logs = logBuffer()
	k3, err := Load(path, hex.EncodeToString(envKey), logger)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Current() != KeyID(envKey) {
		t.Fatalf("env keyring = %v", k3)
	}
	assertNoKey(t, "env log", logs.String(), envKey)

	// Malformed: clear errors, no key material.
	if _, err := Load(path, "not a key", logger); !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("malformed env: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte(hex.EncodeToString(k1key)[:40]+"\n"), 0o600)
	_, err = Load(bad, "", logger)
	if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("malformed file: %v", err)
	}
	assertNoKey(t, "error", err.Error(), k1key)
	if _, err := Load(dir, "", logger); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("a directory as key file: %v", err)
	}
	big := filepath.Join(dir, "big.key")
	os.WriteFile(big, bytes.Repeat([]byte(" "), maxKeyFileSize+1), 0o600)
	if _, err := Load(big, "", logger); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("a huge key file: %v", err)
	}
	if _, err := Load("", "", logger); err == nil {
		t.Fatal("no path and no env gave a keyring")
	}
	if _, err := LoadFile(filepath.Join(dir, "none"), logger); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile of a missing file: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	k := newTestKeyring(t)
	old, _ := k.Seal([]byte("a"), nil)
	id, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if err := k.WriteFile(path); err != nil { // replaces
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	k2, err := LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Current() != id || len(k2.IDs()) != 2 {
		t.Fatalf("reloaded %v", k2)
	}
	if pt, err := k2.Open(old, nil); err != nil || string(pt) != "a" {
		t.Fatalf("old value after reload: %q, %v", pt, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	var empty Keyring
	if err := empty.WriteFile(path); err == nil {
		t.Fatal("wrote an empty keyring")
	}
}

// TestCreateRace: replicas starting together on one file system all
// end up with the same key, and none reads a half-written file.
func TestCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	rings := make([]*Keyring, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := range n {
		go func() {
			rings[i], errs[i] = Create(path, slog.New(slog.DiscardHandler))
			done <- i
		}()
	}
	for range n {
		<-done
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if rings[i].Current() != rings[0].Current() {
			t.Fatalf("replica %d has key %s, replica 0 %s", i, rings[i].Current(), rings[0].Current())
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
}

func TestLoadFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := mkfifo(path); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	if _, err := LoadFile(path, nil); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("LoadFile(FIFO) = %v", err)
	}
}
