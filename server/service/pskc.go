package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/store"
)

// ImportResult is the answer to ImportPSKC.
type ImportResult struct {
	Imported int      `json:"imported"`
	Serials  []string `json:"serials"`
}

// EventImported is the audit event of a code-device secret imported from
// PSKC. It belongs to no identity yet.
const EventImported domain.EventType = "code_device.imported"

// pskcKeys serves the configured pre-shared key whatever name the
// document gives it (RFC 6030 §6.1), and the configured passphrase
// (§6.2).
type pskcKeys struct {
	key  []byte
	pass string
}

func (k pskcKeys) PreSharedKey(name string) ([]byte, error) {
	if len(k.key) == 0 {
		return nil, fmt.Errorf("%w: the server has no pre-shared PSKC key (start it with --pskc-key-file FILE or $AUTHBENCH_PSKC_KEY)", pskc.ErrNoKey)
	}
	return append([]byte(nil), k.key...), nil
}

func (k pskcKeys) Passphrase() ([]byte, error) {
	if k.pass == "" {
		return nil, fmt.Errorf("%w: the server has no PSKC passphrase (start it with $AUTHBENCH_PSKC_PASSPHRASE)", pskc.ErrNoKey)
	}
	return []byte(k.pass), nil
}

// ImportPSKC imports the TOTP secrets of code devices from a PSKC document
// (RFC 6030), decrypted with the configured pre-shared key or passphrase
// (support only). Each secret is sealed under the master keyring and waits
// for its serial to be added and activated (AddAuthenticator, Activate).
// The import is all or nothing: a document with a bad MAC, a key that is
// not TOTP, a key without a serial, or a serial that is revoked, in use or
// already waiting imports nothing. A waiting serial that is locked after
// too many wrong activation codes (ErrSerialLocked) is imported anew, which
// unlocks it.
//
// It returns an error wrapping ErrForbidden, ErrPSKCMAC, ErrPSKCInvalid,
// or the store's error.
func (s *Service) ImportPSKC(ctx context.Context, by domain.Actor, doc []byte) (ImportResult, error) {
	if err := authorize(by, "", true); err != nil {
		return ImportResult{}, err
	}
	c, err := pskc.Options{AllowPlain: s.pskcPlain}.Parse(bytes.NewReader(doc), pskcKeys{key: s.pskcKey, pass: s.pskcPass})
	switch {
	case errors.Is(err, pskc.ErrMAC):
		return ImportResult{}, fmt.Errorf("service: %w: %v", ErrPSKCMAC, err)
	case errors.Is(err, pskc.ErrPlaintext):
		return ImportResult{}, fmt.Errorf("service: %w: %v: this server refuses secrets in the clear; protect them with the pre-shared key or passphrase (RFC 6030 §6), or, for test documents only, start the server with --pskc-allow-plaintext",
			ErrPSKCInvalid, plaintextField(err))
	case err != nil:
		return ImportResult{}, fmt.Errorf("service: %w: %v", ErrPSKCInvalid, err)
	}
	defer c.Wipe()
	bad := func(i int, why string) error {
		return fmt.Errorf("service: %w: key package %d: %s", ErrPSKCInvalid, i+1, why)
	}
	if len(c.Keys) == 0 {
		return ImportResult{}, fmt.Errorf("service: %w: the document holds no key", ErrPSKCInvalid)
	}
	now := s.clock()
	imports := make([]store.Import, 0, len(c.Keys))
	var replacements []store.Import // locked serials, unlocked by the new import
	seen := map[string]bool{}
	for i := range c.Keys {
		k := &c.Keys[i]
		if k.Algorithm != pskc.TOTP {
			return ImportResult{}, bad(i, "not a TOTP key (code devices are time based)")
		}
		if err := checkText("the serial", k.Serial, MaxSerialLen); err != nil || k.Serial == "" {
			return ImportResult{}, bad(i, "no usable DeviceInfo/SerialNo")
		}
		if seen[k.Serial] {
			return ImportResult{}, bad(i, "serial "+k.Serial+" appears twice")
		}
		seen[k.Serial] = true
		if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
			return ImportResult{}, bad(i, "the key expired "+k.NotAfter.Format("2006-01-02"))
		}
		t, err := k.TOTP()
		if err != nil {
			return ImportResult{}, bad(i, "its TOTP parameters are not usable")
		}
		params := store.OTPParams{Digits: t.Digits, Period: t.Period, Algorithm: t.Algorithm}
		if err := params.Check(); err != nil {
			return ImportResult{}, bad(i, "its TOTP parameters are out of range")
		}
		replace, err := s.checkImportable(ctx, k.Serial)
		if err != nil {
			return ImportResult{}, bad(i, err.Error())
		}
		sealed, err := s.keys.Seal(k.Secret, importAD(k.Serial))
		if err != nil {
			return ImportResult{}, err
		}
		im := store.Import{Serial: k.Serial, Secret: store.Sealed{KeyID: sealed.KeyID, Blob: sealed.Blob},
			OTPParams: params, ImportedAt: now}
		if replace {
			replacements = append(replacements, im)
		} else {
			imports = append(imports, im)
		}
	}
	var done []string
	for _, im := range imports {
		if err := s.st.PutImport(ctx, im); err != nil {
			// All or nothing: take back what was put.
			for _, serial := range done {
				if _, terr := s.st.TakeImport(ctx, serial); terr != nil {
					s.log.WarnContext(ctx, "service: could not undo a partial PSKC import", "serial", serial, "err", terr)
				}
			}
			if errors.Is(err, store.ErrDuplicate) {
				return ImportResult{}, fmt.Errorf("service: %w: serial %s is already waiting to be added", ErrPSKCInvalid, im.Serial)
			}
			return ImportResult{}, storeErr(err, "the import of serial "+im.Serial)
		}
		done = append(done, im.Serial)
	}
	for _, im := range replacements {
		if err := s.st.ReplaceImport(ctx, im); err != nil {
			return ImportResult{}, storeErr(err, "the import of serial "+im.Serial)
		}
		done = append(done, im.Serial)
	}
	ev := domain.Event{Type: EventImported, Actor: by, At: now,
		Details: map[string]string{"count": strconv.Itoa(len(done)), "first_serial": done[0]}}
	if err := s.st.AppendAudit(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "service: could not audit a PSKC import", "err", err)
	}
	s.log.InfoContext(ctx, string(EventImported), "count", len(done), "actor", by.String())
	return ImportResult{Imported: len(done), Serials: done}, nil
}

// plaintextField names where a PSKC document holds a secret in the clear,
// from the *pskc.Error of Parse (without its advice to library users).
func plaintextField(err error) string {
	var pe *pskc.Error
	if errors.As(err, &pe) {
		where := fmt.Sprintf("key package %d", pe.Package)
		if pe.Serial != "" {
			where += " (serial " + pe.Serial + ")"
		}
		if pe.Field != "" {
			where += ", " + pe.Field
		}
		return where + ": a secret in the clear (PlainValue)"
	}
	return "a secret in the clear (PlainValue)"
}

// checkImportable refuses a serial that was revoked, is in use (active
// or suspended; a pending add holds nothing of the secret), or waits
// already. A waiting import that took too many wrong activation codes
// (ErrSerialLocked) is replaced: replace reports it.
func (s *Service) checkImportable(ctx context.Context, serial string) (replace bool, err error) {
	tombs, err := s.st.FindTombstones(ctx, domain.Ref{Serial: serial})
	if err != nil {
		return false, storeErr(err, "tombstones")
	}
	for i := range tombs {
		if tombs[i].RevokesSerial() {
			return false, errors.New("serial " + serial + " was permanently blocked and cannot be imported again")
		}
	}
	found, err := s.st.FindAuthenticators(ctx, domain.Ref{Serial: serial})
	if err != nil {
		return false, storeErr(err, "authenticators")
	}
	for _, a := range found {
		if (a.Kind == device.KindCodeDisplay || a.Kind == device.KindAudioCodeReader) && a.State != domain.StateBlocked && a.State != domain.StatePending {
			return false, errors.New("serial " + serial + " is in use by authenticator " + a.ID)
		}
	}
	im, err := s.st.Import(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, storeErr(err, "the import of serial "+serial)
	case s.unlocked(&im) != nil:
		return true, nil
	}
	return false, errors.New("serial " + serial + " is already waiting to be added")
}
