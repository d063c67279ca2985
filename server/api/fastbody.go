package api

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/service"
)

// The bodies of the login steps are the hottest requests of the API (three
// per login), those of a chip's enrolment (add, activate with the
// attestation) and of block come next, and encoding/json decodes them by
// reflection. fastDecode decodes them by hand, but only in the plain shape
// every client sends:
// one JSON object whose keys are exactly the fields' names (no escapes, no
// other case), each at most once, whose values are strings without escape
// sequences or null, and, for a chip's assertion or attestation, the
// nested credential with its response and an empty (or null)
// clientExtensionResults (an attestation's transports an array of such
// strings, its publicKeyAlgorithm an integer without fraction or exponent).
// Anything else (an escape, an unknown or duplicated key, a number, a
// non-empty extension result, broken JSON) is left to unmarshalStrict,
// which decides and words the answer. So what fastDecode accepts it
// decodes exactly as unmarshalStrict would (FuzzFastDecode checks that),
// and what it declines costs one extra pass over a few hundred bytes.

// fastDecode decodes b into v when v is the body of a login step, of
// adding, activating or blocking an authenticator, and b is in the plain
// shape; it reports whether it did. v must be a zero value.
func fastDecode(b []byte, v any) bool {
	d := scanner{b: b}
	var ok bool
	switch v := v.(type) {
	case *service.PasswordLoginRequest:
		ok = d.object(func(key []byte) bool {
			switch string(key) {
			case "password":
				return d.str(&v.Password)
			case "second":
				return d.str(&v.Second)
			}
			return false
		})
	case *service.SecondFactorRequest:
		ok = d.object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.str(&v.Ceremony)
			case "authenticator":
				return d.str(&v.Authenticator)
			}
			return false
		})
	case *service.FinishLoginRequest:
		ok = d.object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.str(&v.Ceremony)
			case "code":
				return d.str(&v.Code)
			case "pin":
				return d.str(&v.PIN)
			case "signature":
				return d.str(&v.Signature)
			case "credential":
				return d.authenticationResponse(&v.Credential)
			}
			return false
		})
	case *service.AddRequest:
		ok = d.object(func(key []byte) bool {
			switch string(key) {
			case "kind":
				return d.str(&v.Kind)
			case "label":
				return d.str(&v.Label)
			case "serial":
				return d.str(&v.Serial)
			case "public_key":
				return d.str(&v.PublicKey)
			case "pin":
				return d.str(&v.PIN)
			case "password":
				return d.str(&v.Password)
			}
			return false
		})
	case *service.ActivateRequest:
		ok = d.object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.str(&v.Ceremony)
			case "code":
				return d.str(&v.Code)
			case "signature":
				return d.str(&v.Signature)
			case "credential":
				return d.registrationResponse(&v.Credential)
			}
			return false
		})
	case *service.BlockRequest:
		ok = d.object(func(key []byte) bool {
			if string(key) == "reason" {
				return d.str(&v.Reason)
			}
			return false
		})
	default:
		return false
	}
	return ok && d.end()
}

// authenticationResponse decodes a credential (AuthenticationResponseJSON)
// into *p, allocating it, or leaves *p nil for null.
func (d *scanner) authenticationResponse(p **webauthn.AuthenticationResponse) bool {
	if d.null() {
		return true
	}
	r := new(webauthn.AuthenticationResponse)
	*p = r
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.str(&r.ID)
		case "rawId":
			return d.str(&r.RawID)
		case "type":
			return d.str(&r.Type)
		case "authenticatorAttachment":
			return d.str(&r.AuthenticatorAttachment)
		case "clientExtensionResults":
			return d.emptyExtensions(&r.ClientExtensionResults)
		case "response":
			if d.null() {
				return true
			}
			a := &r.Response
			return d.object(func(key []byte) bool {
				switch string(key) {
				case "clientDataJSON":
					return d.str(&a.ClientDataJSON)
				case "authenticatorData":
					return d.str(&a.AuthenticatorData)
				case "signature":
					return d.str(&a.Signature)
				case "userHandle":
					return d.str(&a.UserHandle)
				case "attestationObject":
					return d.str(&a.AttestationObject)
				}
				return false
			})
		}
		return false
	})
}

// registrationResponse decodes a credential (RegistrationResponseJSON)
// into *p, allocating it, or leaves *p nil for null.
func (d *scanner) registrationResponse(p **webauthn.RegistrationResponse) bool {
	if d.null() {
		return true
	}
	r := new(webauthn.RegistrationResponse)
	*p = r
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.str(&r.ID)
		case "rawId":
			return d.str(&r.RawID)
		case "type":
			return d.str(&r.Type)
		case "authenticatorAttachment":
			return d.str(&r.AuthenticatorAttachment)
		case "clientExtensionResults":
			return d.emptyExtensions(&r.ClientExtensionResults)
		case "response":
			if d.null() {
				return true
			}
			a := &r.Response
			return d.object(func(key []byte) bool {
				switch string(key) {
				case "clientDataJSON":
					return d.str(&a.ClientDataJSON)
				case "attestationObject":
					return d.str(&a.AttestationObject)
				case "authenticatorData":
					return d.str(&a.AuthenticatorData)
				case "publicKey":
					return d.str(&a.PublicKey)
				case "transports":
					return d.strs(&a.Transports)
				case "publicKeyAlgorithm":
					return d.int64(&a.PublicKeyAlgorithm)
				}
				return false
			})
		}
		return false
	})
}

// scanner walks a JSON text for fastDecode. Every method reports false as
// soon as the text leaves the plain shape.
type scanner struct {
	b []byte
	i int
}

func (d *scanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (d *scanner) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// null consumes a null, if that is what comes next.
func (d *scanner) null() bool {
	d.ws()
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// raw returns the bytes of the next string, without its quotes, when it
// holds no escape and no control character.
func (d *scanner) raw() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			s := d.b[start:j]
			// encoding/json would put U+FFFD in place of bad UTF-8.
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// str decodes a string (or null, which leaves *p as it is) into *p.
func (d *scanner) str(p *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.raw()
	if ok {
		*p = string(s)
	}
	return ok
}

// strs decodes an array of strings into *p (null leaves *p as it is; []
// is an empty slice, not nil). The strings, like those of str, hold no
// escape and no null.
func (d *scanner) strs(p *[]string) bool {
	if d.null() {
		return true
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '[' {
		return false
	}
	d.i++
	l := []string{}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		*p = l
		return true
	}
	for {
		s, ok := d.raw()
		if !ok {
			return false
		}
		l = append(l, string(s))
		d.ws()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			*p = l
			return true
		default:
			return false
		}
	}
}

// int64 decodes an integer (JSON's grammar: an optional minus, then 0 or
// digits without a leading zero; no fraction, no exponent) that fits an
// int64 into *p; null leaves *p as it is.
func (d *scanner) int64(p *int64) bool {
	if d.null() {
		return true
	}
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	switch n := d.i - digits; {
	case n == 0, n > 1 && d.b[digits] == '0', n > 19:
		return false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return false
	}
	*p = v
	return true
}

// emptyExtensions decodes {} (an empty map) or null (nil) into *p.
func (d *scanner) emptyExtensions(p *map[string]json.RawMessage) bool {
	if d.null() {
		return true
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '}' {
		return false
	}
	d.i++
	*p = map[string]json.RawMessage{}
	return true
}

// object decodes an object, calling field for each key with the scanner
// at its value. A key seen before declines (encoding/json would let the
// later value win, or merge objects).
func (d *scanner) object(field func(key []byte) bool) bool {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return true
	}
	var seen [8][]byte
	n := 0
	for {
		k, ok := d.raw()
		if !ok {
			return false
		}
		for _, s := range seen[:n] {
			if string(s) == string(k) {
				return false
			}
		}
		if n == len(seen) {
			return false
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return false
		}
		d.i++
		if !field(k) {
			return false
		}
		seen[n] = k
		n++
		d.ws()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}
