package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
)

// maxArgon2Wait bounds --argon2-wait: a request that waited longer would
// not be answered before the server's 30 s write timeout.
const maxArgon2Wait = 20 * time.Second

// maxSecretFile bounds what is read from a file of secrets.
const maxSecretFile = 1 << 20

// readSecretFile reads a file that holds secrets (support tokens, a PSKC
// key), named by the flag it came from. Like ssh with a private key, it
// refuses a file that users other than its owner may read or write: the
// error says which chmod fixes it. It also refuses what is not a regular
// file (a FIFO would block the start) and files over 1 MiB.
//
// It returns an error wrapping fs.ErrNotExist when there is no file.
func readSecretFile(flag, path string) ([]byte, error) {
	// Stat first: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", flag, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	// The mode of the file opened, not of whatever the name meant a moment
	// ago.
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", flag, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &openFileError{flag: flag, path: path, perm: perm}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if len(data) > maxSecretFile {
		clear(data)
		return nil, fmt.Errorf("%s %s: larger than 1 MiB", flag, path)
	}
	return data, nil
}

// openFileError is a file of secrets that others may read or write.
type openFileError struct {
	flag, path string
	perm       fs.FileMode
}

func (e *openFileError) Error() string {
	return fmt.Sprintf("%s %s: permissions %#o are too open: other users of this machine could read or replace the secrets in it, so it is not used. "+
		"Make it readable by its owner only: chmod 600 %s", e.flag, e.path, uint32(e.perm), shellQuote(e.path))
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pskcKeyEnv is the environment variable that may hold the pre-shared
// PSKC key, in hex, instead of --pskc-key-file.
const pskcKeyEnv = "AUTHBENCH_PSKC_KEY"

// pskcKey returns the pre-shared PSKC key (RFC 6030 §6.1) from
// --pskc-key-file FILE (readable by its owner only) or $AUTHBENCH_PSKC_KEY,
// never from the command line, where every user could read it in
// /proc/PID/cmdline. It returns nil when neither is given, and an error when
// both are, or when the key is not 16, 24 or 32 bytes in hex.
func pskcKey(file, env string) ([]byte, error) {
	source, text := "", ""
	switch {
	case file != "" && env != "":
		return nil, usageError{errors.New("give the PSKC key once: --pskc-key-file FILE or $" + pskcKeyEnv)}
	case file != "":
		b, err := readSecretFile("--pskc-key-file", file)
		if err != nil {
			return nil, err
		}
		source, text = "--pskc-key-file "+file, string(b)
		clear(b)
	case env != "":
		source, text = "$"+pskcKeyEnv, env
	default:
		return nil, nil
	}
	key, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(text), "0x"))
	if err != nil {
		return nil, fmt.Errorf("%s: the PSKC key is an AES key in hex (32, 48 or 64 hex digits)", source)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, usageError{fmt.Errorf("%s: an AES key has 16, 24 or 32 bytes, not %d", source, n)}
	}
	return key, nil
}

// pskcPassphraseEnv may hold the passphrase of PBKDF2-protected PSKC
// documents (RFC 6030 §6.2).
const pskcPassphraseEnv = "AUTHBENCH_PSKC_PASSPHRASE"

// pskcPassphrase returns the PSKC passphrase: the first line of file
// (--pskc-passphrase-file, read as a secret file), else env, else "".
func pskcPassphrase(file, env string) (string, error) {
	if file == "" {
		return env, nil
	}
	b, err := readSecretFile("--pskc-passphrase-file", file)
	if err != nil {
		return "", err
	}
	pass, _, _ := strings.Cut(string(b), "\n")
	clear(b)
	if pass = strings.TrimRight(pass, "\r"); pass == "" {
		return "", fmt.Errorf("--pskc-passphrase-file %s: no passphrase in it", file)
	}
	return pass, nil
}

// masterKeyHelp turns a master key that does not fit the store
// (service.ErrMasterKey) into what the operator must do. keyFile is the
// --master-key file, db the store (without a password), fromEnv whether
// the key came from $AUTHBENCH_MASTER_KEY, missing whether serve found no
// key at all.
func masterKeyHelp(err error, keyFile, db string, fromEnv, missing bool) error {
	var mk *service.MasterKeyError
	if !errors.As(err, &mk) {
		return err
	}
	if missing {
		return fmt.Errorf("--master-key %s does not exist, but the store %s holds %s: "+
			"a new key could open none of them, and every code-device login would fail. "+
			"Restore the key file from your backup (or set $%s to the key) and start again",
			keyFile, db, sealedUnder(mk.Missing), secrets.EnvVar)
	}
	source := "--master-key " + keyFile
	if fromEnv {
		source = "$" + secrets.EnvVar
	}
	var why []string
	if len(mk.Missing) > 0 {
		why = append(why, sealedUnder(mk.Missing)+", which it does not hold")
	}
	if len(mk.Wrong) > 0 {
		why = append(why, sealedUnder(mk.Wrong)+", which it holds under the same ID but with other key material")
	}
	return fmt.Errorf("%s does not open the secrets sealed in the store %s: %s (it holds %s). "+
		"Start with the key that sealed them: restore its key file from your backup; after a rotation, keep the old key in the JSON keyring {\"current\": ID, \"keys\": {ID: key, ...}}",
		source, db, strings.Join(why, "; "), strings.Join(mk.Have, ", "))
}

// sealedUnder says how many secrets ks hold under which keys: "2 sealed
// secrets under key k-1a2b3c4d".
func sealedUnder(ks []store.SealedKey) string {
	n, ids := 0, make([]string, len(ks))
	for i, k := range ks {
		n += k.Count
		ids[i] = k.KeyID
	}
	what := fmt.Sprintf("%d sealed secrets", n)
	if n == 1 {
		what = "1 sealed secret"
	}
	if len(ids) == 1 {
		return what + " under key " + ids[0]
	}
	return what + " under keys " + strings.Join(ids, ", ")
}
