package secrets

import (
	"errors"
	"strconv"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnknownKey: a Sealed value names a key ID the keyring does not
	// hold (an old key was removed too early, or the wrong key file was
	// loaded).
	ErrUnknownKey = errors.New("unknown key ID")
	// ErrOpen: a blob did not open: it was altered, truncated, copied from
	// another row (other associated data) or sealed under another key of
	// the same ID.
	ErrOpen = errors.New("message authentication failed")
	// ErrKeyFile: a key file or key variable is malformed.
	ErrKeyFile = errors.New("malformed master key")
	// ErrBadVerifier: a stored verifier string is malformed or has
	// parameters outside MaxParams.
	ErrBadVerifier = errors.New("malformed password verifier")
	// ErrBadParams: argon2id parameters outside the accepted range.
	ErrBadParams = errors.New("argon2id parameters out of range")
	// ErrBadPIN: a PIN is not exactly 6 ASCII digits.
	ErrBadPIN = errors.New("a PIN is exactly 6 digits")
	// ErrWeakPIN: a PIN is too easy to guess (CheckPIN says which ones).
	ErrWeakPIN = errors.New("the PIN is too easy to guess")
	// ErrBadPassword: a password is empty, longer than MaxPasswordLen, or
	// not valid UTF-8 text (NormalizePassword says which).
	ErrBadPassword = errors.New("unacceptable password")
	// ErrBusy: an argon2id computation found no room under the memory
	// budget of the Limiter in time; the error is a *BusyError.
	ErrBusy = errors.New("too many password hashes at once")
)

var (
	_ error = (*OpenError)(nil)
	_ error = (*KeyFileError)(nil)
	_ error = (*PasswordError)(nil)
	_ error = (*BusyError)(nil)
)

// PasswordError is a password (or PIN) that cannot be hashed: empty, too
// long, or not valid UTF-8 text (NormalizePassword). It never quotes the
// password. It unwraps to ErrBadPassword.
type PasswordError struct {
	Reason string // what is wrong, after "the password": "is empty"
}

// Error says what is wrong with the password.
func (e *PasswordError) Error() string {
	return "secrets: " + ErrBadPassword.Error() + ": the password " + e.Reason
}

// Unwrap returns ErrBadPassword.
func (e *PasswordError) Unwrap() error { return ErrBadPassword }

// OpenError is a Sealed value that Keyring.Open could not open. It unwraps
// to ErrUnknownKey or ErrOpen.
type OpenError struct {
	KeyID string // the key ID the value names
	Err   error  // ErrUnknownKey or ErrOpen
}

// Error names the key ID and the reason.
func (e *OpenError) Error() string {
	if errors.Is(e.Err, ErrUnknownKey) {
		return "secrets: cannot open sealed value: unknown key ID " + strconv.Quote(e.KeyID) + " (is the right key file loaded?)"
	}
	return "secrets: cannot open sealed value under key " + strconv.Quote(e.KeyID) + ": " + e.Err.Error() +
		" (altered, truncated, or copied from another record)"
}

// Unwrap returns Err.
func (e *OpenError) Unwrap() error { return e.Err }

// KeyFileError is a malformed key file or key variable. It never quotes
// the file's contents. It unwraps to ErrKeyFile.
type KeyFileError struct {
	Source string // the file path, or the variable name
	Detail string // what is wrong
}

// Error names the source and what is wrong with it.
func (e *KeyFileError) Error() string {
	return "secrets: " + e.Source + ": " + ErrKeyFile.Error() + ": " + e.Detail
}

// Unwrap returns ErrKeyFile.
func (e *KeyFileError) Unwrap() error { return ErrKeyFile }
