package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// CheckKeyring checks, before a server serves, that keys opens what st
// holds sealed (DESIGN §5, "Secrets at rest"): for every master key ID
// that sealed values in the store name, keys must hold that key, and one
// of the values must open under it with the associated data of its record.
// A nil keys stands for "no key at all": it passes only when the store
// holds nothing sealed, the one case in which a new key may be made.
//
// Without this check a server started with a lost or wrong key would
// serve, and answer every code-device login and activation with an
// internal error.
//
// It returns nil when every sealed value can be opened, a *MasterKeyError
// (wrapping ErrMasterKey) naming the keys that are missing or do not open,
// or the store's error.
func CheckKeyring(ctx context.Context, st store.Sealing, keys *secrets.Keyring) error {
	sealed, err := st.SealedKeys(ctx)
	if err != nil {
		return fmt.Errorf("service: listing the sealed secrets in the store: %w", err)
	}
	e := &MasterKeyError{}
	if keys != nil {
		e.Have = keys.IDs()
	}
	for _, k := range sealed {
		e.Sealed += k.Count
		if keys == nil {
			e.Missing = append(e.Missing, k)
			continue
		}
		ad := otpAD(k.AuthenticatorID)
		if k.AuthenticatorID == "" {
			ad = importAD(k.Serial)
		}
		pt, err := keys.Open(secrets.Sealed{KeyID: k.Sample.KeyID, Blob: k.Sample.Blob}, ad)
		clear(pt)
		switch {
		case err == nil:
		case errors.Is(err, secrets.ErrUnknownKey):
			e.Missing = append(e.Missing, k)
		default:
			e.Wrong = append(e.Wrong, k)
		}
	}
	if len(e.Missing) == 0 && len(e.Wrong) == 0 {
		return nil
	}
	return e
}

// MasterKeyError is a master keyring that cannot open what the store holds
// sealed (CheckKeyring). It unwraps to ErrMasterKey.
type MasterKeyError struct {
	Sealed  int               // sealed values in the store, under all keys
	Missing []store.SealedKey // keys the values name that the keyring lacks (all of them when there is no keyring)
	Wrong   []store.SealedKey // keys the keyring has under the same ID whose values do not open
	Have    []string          // the IDs of the keys in the keyring; nil when there is none
}

// Error says how many secrets are sealed under which keys, which of them
// the keyring lacks or holds wrongly, and what the keyring holds. It names
// key IDs only, never key material.
func (e *MasterKeyError) Error() string {
	var b strings.Builder
	b.WriteString("service: ")
	b.WriteString(ErrMasterKey.Error())
	fmt.Fprintf(&b, ": the store holds %d sealed secret%s", e.Sealed, plural(e.Sealed))
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "; %s sealed under %s, which the keyring does not hold", countOf(e.Missing), keyList(e.Missing))
	}
	if len(e.Wrong) > 0 {
		fmt.Fprintf(&b, "; %s sealed under %s, which the keyring holds under the same ID but which do not open with it (a different key)", countOf(e.Wrong), keyList(e.Wrong))
	}
	if e.Have == nil {
		b.WriteString("; there is no master key")
	} else {
		fmt.Fprintf(&b, "; the keyring holds %s", strings.Join(e.Have, ", "))
	}
	return b.String()
}

// Unwrap returns ErrMasterKey.
func (e *MasterKeyError) Unwrap() error { return ErrMasterKey }

// countOf says how many values ks hold: "3 are" / "1 is".
func countOf(ks []store.SealedKey) string {
	n := 0
	for _, k := range ks {
		n += k.Count
	}
	if n == 1 {
		return "1 is"
	}
	return fmt.Sprintf("%d are", n)
}

// keyList names the keys of ks: "key k-1a2b3c4d" or "keys k1, k2".
func keyList(ks []store.SealedKey) string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.KeyID
	}
	if len(ids) == 1 {
		return "key " + ids[0]
	}
	return "keys " + strings.Join(ids, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
