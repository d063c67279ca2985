package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// EnvVar is the environment variable that may hold the master key (in any
// key file format). The caller reads it and passes its value to
// Load.
const EnvVar = "AUTHBENCH_MASTER_KEY"

// maxKeyFileSize bounds what is read from a key file.
const maxKeyFileSize = 64 << 10

// keyFile is the JSON form of a keyring.
type keyFile struct {
	Current string            `json:"current"`
	Keys    map[string]string `json:"keys"`
}

// ParseKeyring reads a keyring in one of the key file formats of the
// package doc: a single key (64 hex digits, or base64 of 32 bytes), named
// by its fingerprint, or a JSON keyring. Surrounding white space is
// ignored.
//
// It returns a *KeyFileError (wrapping ErrKeyFile) when data is none of
// these; the error never quotes data.
func ParseKeyring(data []byte) (*Keyring, error) {
	return parseKeyring(data, "master key")
}

func parseKeyring(data []byte, source string) (*Keyring, error) {
	bad := func(format string, args ...any) (*Keyring, error) {
		return nil, &KeyFileError{Source: source, Detail: fmt.Sprintf(format, args...)}
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return bad("empty")
	}
	if data[0] != '{' {
		key, ok := decodeKey(data)
		if !ok {
			return bad("expected %d bytes as 64 hex digits or base64, or a JSON keyring {\"current\": ID, \"keys\": {ID: key, ...}}", KeySize)
		}
		defer clear(key)
		k, err := NewKeyring(KeyID(key), key)
		if err != nil {
			return bad("%s", detail(err))
		}
		return k, nil
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return bad("invalid JSON at byte %d", syn.Offset)
		}
		return bad("a JSON keyring has exactly the fields \"current\" (a key ID) and \"keys\" (an object of key ID to key)")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON keyring")
	}
	if len(kf.Keys) == 0 {
		return bad("the JSON keyring has no keys")
	}
	k := new(Keyring)
	ids := make([]string, 0, len(kf.Keys))
	for id := range kf.Keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		key, ok := decodeKey([]byte(kf.Keys[id]))
		if !ok {
			if checkKeyID(id) != nil {
				return bad("invalid key ID %s", showID(id))
			}
			return bad("key %s: expected %d bytes as 64 hex digits or base64", showID(id), KeySize)
		}
		err := k.AddKey(id, key)
		clear(key)
		if err != nil {
			return bad("%s", detail(err))
		}
	}
	if kf.Current == "" {
		return bad("the JSON keyring names no current key")
	}
	if err := k.SetCurrent(kf.Current); err != nil {
		return bad("the current key %s is not among the keys", showID(kf.Current))
	}
	return k, nil
}

// detail returns the Detail of a *KeyFileError, or err's message.
func detail(err error) string {
	var kfe *KeyFileError
	if errors.As(err, &kfe) {
		return kfe.Detail
	}
	return err.Error()
}

// decodeKey decodes one key: 64 hex digits, or base64 of KeySize bytes in
// the standard or URL alphabet, padded or not.
func decodeKey(b []byte) ([]byte, bool) {
	s := string(bytes.TrimSpace(b))
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.Strict().DecodeString(s); err == nil && len(key) == KeySize {
			return key, true
		}
	}
	return nil, false
}

// MarshalKeyFile returns k in the JSON key file format, keys in hex, with
// a final newline. The result holds key material: write it only to a file
// of mode 0600 (WriteFile does). It returns an error for an empty keyring.
func (k *Keyring) MarshalKeyFile() ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == "" || len(k.keys) == 0 {
		return nil, errors.New("secrets: the keyring is empty")
	}
	kf := keyFile{Current: k.current, Keys: make(map[string]string, len(k.keys))}
	for id, mk := range k.keys {
		kf.Keys[id] = hex.EncodeToString(mk.key[:])
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteFile saves k to path in the JSON key file format with mode 0600,
// replacing the file atomically (a temporary file in the same directory,
// then a rename). It returns the errors of MarshalKeyFile and of the file
// system.
func (k *Keyring) WriteFile(path string) error {
	b, err := k.MarshalKeyFile()
	if err != nil {
		return err
	}
	defer clear(b)
	f, err := os.CreateTemp(filepath.Dir(path), ".authbench-key-*")
	if err != nil {
		return fmt.Errorf("secrets: writing key file: %w", err)
	}
	tmp := f.Name()
	if err := writeSync(f, b); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("secrets: writing key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("secrets: writing key file: %w", err)
	}
	return nil
}

// writeSync writes b to f with mode 0600, syncs and closes it.
func writeSync(f *os.File, b []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// createFile creates path with contents b and mode 0600 unless it exists
// (then it returns an error wrapping fs.ErrExist). Where the file system
// has hard links, the file appears complete or not at all: it is written
// under a temporary name and linked into place.
func createFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".authbench-key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := writeSync(f, b); err != nil {
		return err
	}
	err = os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	// No hard links here: create it in place.
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeSync(f, b); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// LoadFile reads the keyring in the key file at path (see ParseKeyring),
// warning through logger (nil means slog.Default()) when the file can be
// read by group or others.
//
// It returns the file system's error (fs.ErrNotExist when there is no
// file), or a *KeyFileError wrapping ErrKeyFile when the file is not a
// regular file, is larger than 64 KiB, or is malformed.
func LoadFile(path string, logger *slog.Logger) (*Keyring, error) {
	if logger == nil {
		logger = slog.Default()
	}
	// Stat first: opening a FIFO would block.
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Source: path, Detail: "not a regular file"}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Source: path, Detail: "not a regular file"}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("master key file is readable by others; restrict it with chmod 600",
			"path", path, "mode", fmt.Sprintf("%#o", perm))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("secrets: reading %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, &KeyFileError{Source: path, Detail: "larger than 64 KiB"}
	}
	return parseKeyring(data, path)
}

// Load returns the server's master keyring. env is the value of the
// EnvVar environment variable (the caller passes os.Getenv(secrets.EnvVar));
// when it is not empty it is parsed and path is not read. Otherwise the key
// file at path is loaded (LoadFile). Key material is never logged; key IDs
// are.
//
// It returns a *KeyFileError (wrapping ErrKeyFile) when env or the file is
// malformed, an error wrapping fs.ErrNotExist when there is no key file (a
// caller may then Create one, if nothing was ever sealed), the file
// system's other errors, and an error when both env and path are empty.
func Load(path, env string, logger *slog.Logger) (*Keyring, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if env != "" {
		k, err := parseKeyring([]byte(env), EnvVar)
		if err != nil {
			return nil, err
		}
		logger.Info("master key loaded from the environment", "variable", EnvVar, "current", k.Current(), "keys", k.IDs())
		return k, nil
	}
	if path == "" {
		return nil, fmt.Errorf("secrets: no master key: set %s or give a key file path", EnvVar)
	}
	k, err := LoadFile(path, logger)
	if err != nil {
		return nil, err
	}
	logger.Info("master key loaded", "path", path, "current", k.Current(), "keys", k.IDs())
	return k, nil
}

// Create generates a new random master key and writes it to a new key
// file at path with mode 0600 (creating its directory with mode 0700), and
// logs a warning that the key must be backed up. When the file appears
// meanwhile (another replica created it first), that file's keyring is
// loaded and returned instead. Call it only when nothing was ever sealed:
// a new key opens nothing sealed under another.
//
// It returns the errors of GenerateKeyring, LoadFile and the file system.
func Create(path string, logger *slog.Logger) (*Keyring, error) {
	if logger == nil {
		logger = slog.Default()
	}
	k, err := GenerateKeyring(nil)
	if err != nil {
		return nil, err
	}
	b, err := k.MarshalKeyFile()
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("secrets: creating the key file's directory: %w", err)
		}
	}
	if err := createFile(path, b); errors.Is(err, fs.ErrExist) {
		// Another replica created it first: use theirs.
		return LoadFile(path, logger)
	} else if err != nil {
		return nil, fmt.Errorf("secrets: creating the key file: %w", err)
	}
	logger.Warn("WARNING: generated a new master key; back up the key file now: without it no sealed secret can be opened again",
		"path", path, "key_id", k.Current())
	return k, nil
}
