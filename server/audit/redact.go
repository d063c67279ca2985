package audit

import (
	"unicode"
	"unicode/utf8"
)

// Redacted replaces the value of a detail whose key names a secret.
const Redacted = "[redacted]"

// secretWords are the words that make a detail key name a secret.
var secretWords = map[string]bool{
	"secret": true, "secrets": true,
	"pin": true, "pins": true, "puk": true,
	"password": true, "passwords": true, "passwd": true, "pwd": true, "passphrase": true,
	"otp": true, "totp": true, "hotp": true, "code": true, "codes": true,
	"key": true, "keys": true, "privkey": true, "seed": true,
	"token": true, "tokens": true, "cookie": true, "session": true,
	"credential": true, "credentials": true, "verifier": true,
}

// SecretKey reports whether a detail key names a secret: whether one of its
// words, split at anything but letters and digits and at lower-to-upper
// case changes ("otp_code", "appPIN", "Session-Token"), is one of pin,
// puk, password, passwd, pwd, passphrase, otp, totp, hotp, code, key,
// privkey, seed, secret, token, cookie, session, credential or verifier
// (or a plural). A key whose last word is "id"
// names an identifier, not a secret ("credential_id", "key_id").
func SecretKey(key string) bool {
	words, secret, lastID := 0, false, false
	eachWord(key, func(w []byte) {
		words++
		lastID = string(w) == "id"
		secret = secret || secretWords[string(w)]
	})
	return words > 0 && secret && !lastID
}

// eachWord calls fn with each word of key, lowercased: key is split at
// every rune that is not a letter or digit, before an upper-case letter
// that follows a lower-case letter or digit ("appPin"), and before the
// last upper-case letter of a run that a lower-case letter follows
// ("OTPCode"). fn must not keep w.
func eachWord(key string, fn func(w []byte)) {
	rs := []rune(key)
	var buf [64]byte
	cur := buf[:0]
	flush := func() {
		if len(cur) > 0 {
			fn(cur)
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || unicode.IsUpper(prev) && nextLower {
				flush()
			}
		}
		cur = utf8.AppendRune(cur, unicode.ToLower(r))
	}
	flush()
}

// RedactDetails returns a copy of d in which the value of every key that
// SecretKey names a secret is Redacted; the key stays, so the log still
// shows that the value was there. It returns nil for an empty d.
func RedactDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]string, len(d))
	for k, v := range d {
		if SecretKey(k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}
