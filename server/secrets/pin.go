package secrets

import "fmt"

// PINLen is the length of a MitID app PIN (DESIGN §1: "device key pair +
// 6-digit PIN").
const PINLen = 6

// CheckPIN reports whether pin is acceptable as a new app PIN: exactly
// PINLen ASCII digits, and not one of the PINs people guess first:
//
//   - one digit repeated (000000, 777777);
//   - a run of consecutive digits, up or down (012345, 123456, 987654);
//   - a pair or a triple of digits repeated (121212, 123123).
//
// It returns an error wrapping ErrBadPIN for the format and ErrWeakPIN for
// a guessable PIN. It checks new PINs only: VerifyPIN checks the format and
// nothing else.
func CheckPIN(pin string) error {
	if !pinFormat(pin) {
		return fmt.Errorf("secrets: %w", ErrBadPIN)
	}
	up, down, same := true, true, true
	for i := 1; i < len(pin); i++ {
		d := int(pin[i]) - int(pin[i-1])
		up = up && d == 1
		down = down && d == -1
		same = same && d == 0
	}
	switch {
	case same:
		return fmt.Errorf("secrets: %w: one digit repeated", ErrWeakPIN)
	case up || down:
		return fmt.Errorf("secrets: %w: consecutive digits", ErrWeakPIN)
	case pin[0:2] == pin[2:4] && pin[2:4] == pin[4:6], pin[0:3] == pin[3:6]:
		return fmt.Errorf("secrets: %w: a group of digits repeated", ErrWeakPIN)
	}
	return nil
}

// pinFormat reports whether pin is exactly PINLen ASCII digits.
func pinFormat(pin string) bool {
	if len(pin) != PINLen {
		return false
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return false
		}
	}
	return true
}

// HashPIN returns an argon2id verifier of a new app PIN under p (see
// Params.Hash). It returns the errors of CheckPIN and of Params.Hash.
func HashPIN(pin string, p Params) (string, error) {
	if err := CheckPIN(pin); err != nil {
		return "", err
	}
	return p.Hash(pin)
}

// VerifyPIN reports whether pin matches the verifier encoded, as
// VerifyPassword does; a pin that is not PINLen digits does not match and
// is not hashed. It returns the errors of Params.Verify.
func VerifyPIN(encoded, pin string) (ok, needsRehash bool, err error) {
	if _, err := ParseVerifier(encoded); err != nil {
		return false, false, err
	}
	if !pinFormat(pin) {
		return false, false, nil
	}
	return VerifyPassword(encoded, pin)
}
