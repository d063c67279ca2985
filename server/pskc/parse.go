package pskc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device/otp"
)

// Limits. Options can lower or raise the first three.
const (
	DefaultMaxBytes      = 4 << 20   // largest document Parse reads
	DefaultMaxKeys       = 10000     // most KeyPackages in one document
	DefaultMaxIterations = 2_000_000 // highest PBKDF2 IterationCount accepted
	MaxSecretSize        = 1024      // longest OTP secret, in bytes
	maxDepth             = 64        // deepest element nesting
	maxAttrs             = 64        // most attributes on one element
)

// Options tunes Parse. The zero value is the strict default: no plaintext
// secrets, the Default limits.
type Options struct {
	// AllowPlain accepts secrets sent in the clear (PlainValue, RFC 6030
	// §4.2). Without it such a document fails with ErrPlaintext. Use it
	// for test documents only.
	AllowPlain bool
	// MaxBytes bounds the document size; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxKeys bounds the number of KeyPackages; 0 means DefaultMaxKeys.
	MaxKeys int
	// MaxIterations bounds the PBKDF2 IterationCount (RFC 6030 §6.2), and
	// so the time a hostile document can make Parse spend; 0 means
	// DefaultMaxIterations.
	MaxIterations int
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

func (o Options) maxKeys() int {
	if o.MaxKeys <= 0 {
		return DefaultMaxKeys
	}
	return o.MaxKeys
}

func (o Options) maxIterations() int {
	if o.MaxIterations <= 0 {
		return DefaultMaxIterations
	}
	return o.MaxIterations
}

// Parse reads a PSKC document with the default Options (no plaintext
// secrets). See Options.Parse.
func Parse(r io.Reader, keys KeySource) (*Container, error) {
	return Options{}.Parse(r, keys)
}

// Parse reads one PSKC 1.0 KeyContainer (RFC 6030 §4) from r and returns
// its TOTP and HOTP keys with their secrets decrypted, taking the
// decryption key from keys (which may be nil for a document without
// encryption).
//
// The import is all or nothing: when any key package fails, Parse returns
// nil and an error naming that package, and wipes the secrets it had
// already decrypted. Encrypted values are checked strictly (RFC 6030
// §6.1.1): each needs a ValueMAC under a declared MACMethod with a MACKey,
// and the MAC over IV||ciphertext is compared (in constant time) before
// anything is decrypted.
//
// Errors: an *Error unwrapping to ErrFormat (not XML, not PSKC 1.0, a
// DOCTYPE or other <!...> declaration, a malformed value, a duplicated
// element or Key Id), ErrUnsupported (other algorithms, encryption or
// key policies, RFC 6030 §5), ErrMAC, ErrDecrypt, ErrNoKey, ErrPlaintext or
// ErrTooLarge; or the error of r, wrapped, when reading fails.
//
// Parse may be called concurrently; it keeps no state between calls.
func (o Options) Parse(r io.Reader, keys KeySource) (*Container, error) {
	limit := o.maxBytes()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("pskc: reading document: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, &Error{Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	doc, err := o.decode(data)
	if err != nil {
		return nil, err
	}
	p := &parser{o: o, keys: keys}
	defer p.wipe()
	c, err := p.container(doc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// guard sits between the XML tokenizer and the decoder: it refuses
// directives (DOCTYPE, ENTITY, ...), duplicate attributes and deep nesting,
// and counts key packages, before encoding/xml builds anything.
type guard struct {
	d        *xml.Decoder
	depth    int
	packages int
	maxKeys  int
	err      error
}

func (g *guard) Token() (xml.Token, error) {
	if g.err != nil {
		return nil, g.err
	}
	t, err := g.d.RawToken()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case xml.Directive:
		line, _ := g.d.InputPos()
		g.err = &Error{Err: fmt.Errorf("%w: line %d: DOCTYPE, ENTITY and other <!...> declarations are refused", ErrFormat, line)}
		return nil, g.err
	case xml.StartElement:
		g.depth++
		if g.depth > maxDepth {
			g.err = &Error{Err: fmt.Errorf("%w: elements nested more than %d deep", ErrFormat, maxDepth)}
			return nil, g.err
		}
		if len(t.Attr) > maxAttrs {
			g.err = &Error{Field: t.Name.Local, Err: fmt.Errorf("%w: more than %d attributes", ErrFormat, maxAttrs)}
			return nil, g.err
		}
		for i := range t.Attr {
			for j := range i {
				if t.Attr[i].Name == t.Attr[j].Name {
					g.err = &Error{Field: t.Name.Local + "/@" + t.Attr[i].Name.Local, Err: fmt.Errorf("%w: duplicate attribute", ErrFormat)}
					return nil, g.err
				}
			}
		}
		if g.depth == 2 && t.Name.Local == "KeyPackage" {
			g.packages++
			if g.packages > g.maxKeys {
				g.err = &Error{Err: fmt.Errorf("%w: more than %d key packages", ErrTooLarge, g.maxKeys)}
				return nil, g.err
			}
		}
	case xml.EndElement:
		g.depth--
	}
	return t, nil
}

func (g *guard) fail(err error) error {
	if g.err != nil {
		return g.err
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	// The decoder reading from g counts no lines; the tokenizer does.
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		line, _ := g.d.InputPos()
		return &Error{Err: fmt.Errorf("%w: XML syntax error near line %d: %s", ErrFormat, line, se.Msg)}
	}
	return &Error{Err: fmt.Errorf("%w: %v", ErrFormat, err)}
}

// decode parses the XML into the schema structs. Only UTF-8 is accepted.
func (o Options) decode(data []byte) (*xContainer, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	g := &guard{d: xml.NewDecoder(bytes.NewReader(data)), maxKeys: o.maxKeys()}
	d := xml.NewTokenDecoder(g)
	var doc *xContainer
	for {
		t, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, g.fail(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if doc != nil {
				return nil, &Error{Field: t.Name.Local, Err: fmt.Errorf("%w: a second root element", ErrFormat)}
			}
			if t.Name.Space != nsPSKC || t.Name.Local != "KeyContainer" {
				return nil, &Error{Field: t.Name.Local, Err: fmt.Errorf("%w: root element is {%s}%s, want KeyContainer in namespace %s", ErrFormat, t.Name.Space, t.Name.Local, nsPSKC)}
			}
			doc = new(xContainer)
			if err := d.DecodeElement(doc, &t); err != nil {
				return nil, g.fail(err)
			}
		case xml.CharData:
			if len(bytes.Trim(t, xmlSpace)) != 0 {
				return nil, &Error{Err: fmt.Errorf("%w: text outside the root element", ErrFormat)}
			}
		}
	}
	if doc == nil {
		return nil, &Error{Err: fmt.Errorf("%w: no KeyContainer element", ErrFormat)}
	}
	return doc, nil
}

// xmlSpace is the XML whitespace set (XML 1.0 §2.3 production S).
const xmlSpace = " \t\r\n"

func trim(s string) string { return strings.Trim(s, xmlSpace) }

// decodeBase64 decodes xs:base64Binary, ignoring XML whitespace.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(xmlSpace, r) {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.Strict().DecodeString(s)
}

// fieldErr returns an *Error for field; the caller adds the key package.
func fieldErr(field string, sentinel error, format string, args ...any) error {
	return &Error{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// one returns the only element of s, nil when s is empty, and an error
// when s has more than one element.
func one[T any](s []T, field string) (*T, error) {
	switch len(s) {
	case 0:
		return nil, nil
	case 1:
		return &s[0], nil
	}
	return nil, fieldErr(field, ErrFormat, "%d elements where at most one is allowed", len(s))
}

// oneText returns the trimmed text of the only element of s.
func oneText(s []string, field string) (string, bool, error) {
	v, err := one(s, field)
	if err != nil || v == nil {
		return "", false, err
	}
	return trim(*v), true, nil
}

// parser holds the state of one Parse call.
type parser struct {
	o       Options
	keys    KeySource
	enc     *encKey          // nil without EncryptionKey
	macHash func() hash.Hash // nil without MACMethod
	macKey  []byte           // the MAC key: macRaw without its padding
	macRaw  []byte
	seen    map[string]struct{} // CipherValues already used
	secrets [][]byte            // decrypted so far, wiped on failure
	ok      bool
}

func (p *parser) wipe() {
	if p.enc != nil {
		for _, k := range p.enc.derived {
			clear(k)
		}
	}
	clear(p.macRaw)
	if !p.ok {
		for _, s := range p.secrets {
			clear(s)
		}
	}
}

func (p *parser) container(doc *xContainer) (*Container, error) {
	if doc.Version != "1.0" {
		return nil, fieldErr("KeyContainer/@Version", ErrUnsupported, "version %q, want \"1.0\"", doc.Version)
	}
	if err := p.setup(doc); err != nil {
		return nil, err
	}
	c := &Container{ID: trim(doc.ID), Keys: make([]Key, 0, len(doc.Packages))}
	ids := make(map[string]int, len(doc.Packages))
	for i := range doc.Packages {
		k, err := p.keyPackage(&doc.Packages[i])
		if err == nil {
			if first, dup := ids[k.ID]; dup {
				err = fieldErr("Key/@Id", ErrFormat, "the same Id as key package %d", first)
			}
			ids[k.ID] = i + 1
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Package, e.Serial, e.KeyID = i+1, k.Serial, k.ID
				return nil, e
			}
			return nil, &Error{Package: i + 1, Serial: k.Serial, KeyID: k.ID, Err: err}
		}
		c.Keys = append(c.Keys, k)
	}
	p.ok = true
	return c, nil
}

// keyPackage converts one KeyPackage. On error the returned Key still
// carries Serial and ID when they were read, so the error can name them.
func (p *parser) keyPackage(kp *xPackage) (Key, error) {
	var k Key
	di, err := one(kp.DeviceInfo, "DeviceInfo")
	if err != nil {
		return k, err
	}
	if di != nil {
		if k.Serial, _, err = oneText(di.SerialNo, "DeviceInfo/SerialNo"); err != nil {
			return k, err
		}
		if k.Manufacturer, _, err = oneText(di.Manufacturer, "DeviceInfo/Manufacturer"); err != nil {
			return k, err
		}
		if k.Model, _, err = oneText(di.Model, "DeviceInfo/Model"); err != nil {
			return k, err
		}
	}
	xk, err := one(kp.Key, "Key")
	if err != nil {
		return k, err
	}
	if xk == nil {
		return k, fieldErr("Key", ErrFormat, "missing")
	}
	k.ID = trim(xk.ID)
	if k.ID == "" {
		return k, fieldErr("Key/@Id", ErrFormat, "missing")
	}
	switch trim(xk.Algorithm) {
	case uriTOTP:
		k.Algorithm = TOTP
	case uriHOTP:
		k.Algorithm = HOTP
	default:
		return k, fieldErr("Key/@Algorithm", ErrUnsupported, "algorithm %q, want TOTP or HOTP", xk.Algorithm)
	}
	if err := p.params(xk, &k); err != nil {
		return k, err
	}
	if err := p.data(xk, &k); err != nil {
		return k, err
	}
	if err := p.policy(xk, &k); err != nil {
		return k, err
	}
	return k, nil
}

// params reads AlgorithmParameters (RFC 6030 §4.1): Suite, which names the
// HMAC hash, and ResponseFormat, which gives the number of digits.
func (p *parser) params(xk *xKey, k *Key) error {
	k.Hash = otp.SHA1
	ap, err := one(xk.Params, "Key/AlgorithmParameters")
	if err != nil || ap == nil {
		return err
	}
	const fs = "Key/AlgorithmParameters/Suite"
	s, ok, err := oneText(ap.Suite, fs)
	if err != nil {
		return err
	}
	if ok && s != "" {
		h, err := parseSuite(s)
		if err != nil {
			return fieldErr(fs, ErrUnsupported, "hash %q, want HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512", s)
		}
		k.Hash = h
	}
	const fr = "Key/AlgorithmParameters/ResponseFormat"
	rf, err := one(ap.ResponseFormat, fr)
	if err != nil || rf == nil {
		return err
	}
	if rf.Length == nil {
		return fieldErr(fr+"/@Length", ErrFormat, "missing")
	}
	n, err := strconv.Atoi(trim(*rf.Length))
	if err != nil {
		return fieldErr(fr+"/@Length", ErrFormat, "not an integer: %q", *rf.Length)
	}
	if n < otp.MinDigits || n > otp.MaxDigits {
		return fieldErr(fr+"/@Length", ErrUnsupported, "%d digits, want %d to %d", n, otp.MinDigits, otp.MaxDigits)
	}
	k.Digits = n
	if rf.Encoding == nil || trim(*rf.Encoding) != "DECIMAL" {
		enc := ""
		if rf.Encoding != nil {
			enc = *rf.Encoding
		}
		return fieldErr(fr+"/@Encoding", ErrUnsupported, "encoding %q, want DECIMAL", enc)
	}
	if rf.CheckDigits != nil {
		switch trim(*rf.CheckDigits) {
		case "false", "0":
		case "true", "1":
			return fieldErr(fr+"/@CheckDigits", ErrUnsupported, "check digits are not supported")
		default:
			return fieldErr(fr+"/@CheckDigits", ErrFormat, "not a boolean: %q", *rf.CheckDigits)
		}
	}
	return nil
}

// parseSuite accepts "HMAC-SHA256", "SHA256", "hmac-sha-256" and the like.
func parseSuite(s string) (otp.Algorithm, error) {
	s = strings.ToLower(s)
	s = strings.TrimPrefix(s, "hmac-")
	s = strings.TrimPrefix(s, "hmac")
	return otp.ParseAlgorithm(s)
}

// suiteName is the Suite text Write uses for h.
func suiteName(h otp.Algorithm) string {
	return "HMAC-" + strings.ToUpper(h.String())
}

// data reads Data: Secret, Counter, Time, TimeInterval, TimeDrift
// (RFC 6030 §4.1, §4.2).
func (p *parser) data(xk *xKey, k *Key) error {
	d, err := one(xk.Data, "Key/Data")
	if err != nil {
		return err
	}
	if d == nil {
		return fieldErr("Key/Data", ErrFormat, "missing: no secret")
	}
	sv, err := one(d.Secret, "Key/Data/Secret")
	if err != nil {
		return err
	}
	if sv == nil {
		return fieldErr("Key/Data/Secret", ErrFormat, "missing")
	}
	if k.Secret, err = p.secret(sv); err != nil {
		return err
	}
	p.secrets = append(p.secrets, k.Secret)
	if len(k.Secret) == 0 {
		return fieldErr("Key/Data/Secret", ErrFormat, "empty secret")
	}
	if len(k.Secret) > MaxSecretSize {
		return fieldErr("Key/Data/Secret", ErrUnsupported, "%d-byte secret, more than %d", len(k.Secret), MaxSecretSize)
	}
	n, ok, err := intValue(d.Counter, "Key/Data/Counter", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	if ok {
		k.Counter = uint64(n)
	}
	if k.Time, _, err = intValue(d.Time, "Key/Data/Time", math.MinInt64, math.MaxInt64); err != nil {
		return err
	}
	n, ok, err = intValue(d.TimeInterval, "Key/Data/TimeInterval", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	if ok {
		k.Period = time.Duration(n) * time.Second
	}
	n, _, err = intValue(d.TimeDrift, "Key/Data/TimeDrift", math.MinInt32, math.MaxInt32)
	if err != nil {
		return err
	}
	k.Drift = int(n)
	return nil
}

// intValue reads an intDataType or longDataType element in the clear.
func intValue(s []xValue, field string, lo, hi int64) (int64, bool, error) {
	v, err := one(s, field)
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v.Encrypted) > 0 || len(v.MAC) > 0 {
		return 0, false, fieldErr(field, ErrUnsupported, "only a PlainValue is supported here")
	}
	text, ok, err := oneText(v.Plain, field+"/PlainValue")
	if err != nil {
		return 0, false, err
	}
	if !ok {
		return 0, false, fieldErr(field+"/PlainValue", ErrFormat, "missing")
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false, fieldErr(field+"/PlainValue", ErrFormat, "not an integer: %q", text)
	}
	if n < lo || n > hi {
		return 0, false, fieldErr(field+"/PlainValue", ErrFormat, "%d is out of range %d to %d", n, lo, hi)
	}
	return n, true, nil
}

// secret reads the Secret value, in the clear or encrypted.
func (p *parser) secret(v *xValue) ([]byte, error) {
	const f = "Key/Data/Secret"
	if len(v.Plain)+len(v.Encrypted) != 1 {
		return nil, fieldErr(f, ErrFormat, "want exactly one PlainValue or EncryptedValue, found %d and %d", len(v.Plain), len(v.Encrypted))
	}
	if len(v.Plain) == 1 {
		if len(v.MAC) > 0 {
			return nil, fieldErr(f+"/ValueMAC", ErrUnsupported, "a ValueMAC over a PlainValue (pre-RFC 6030 drafts)")
		}
		if !p.o.AllowPlain {
			return nil, fieldErr(f+"/PlainValue", ErrPlaintext, "the secret is not encrypted (set Options.AllowPlain for test documents)")
		}
		b, err := decodeBase64(v.Plain[0])
		if err != nil {
			return nil, fieldErr(f+"/PlainValue", ErrFormat, "not base64")
		}
		return b, nil
	}
	return p.decrypt(&v.Encrypted[0], v.MAC, f)
}

// policy reads Policy (RFC 6030 §5). A policy element this package does
// not understand makes the key unusable, as §5 requires, so the document
// fails.
func (p *parser) policy(xk *xKey, k *Key) error {
	pol, err := one(xk.Policy, "Key/Policy")
	if err != nil || pol == nil {
		return err
	}
	if len(pol.Other) > 0 {
		n := pol.Other[0].XMLName.Local
		return fieldErr("Key/Policy/"+n, ErrUnsupported, "policy not understood, so the key must not be used (RFC 6030 §5)")
	}
	for _, u := range pol.KeyUsage {
		if trim(u) != "OTP" {
			return fieldErr("Key/Policy/KeyUsage", ErrUnsupported, "key usage %q, want OTP", trim(u))
		}
	}
	if k.NotBefore, err = date(pol.StartDate, "Key/Policy/StartDate"); err != nil {
		return err
	}
	if k.NotAfter, err = date(pol.ExpiryDate, "Key/Policy/ExpiryDate"); err != nil {
		return err
	}
	return nil
}

// date reads an xs:dateTime with a time zone, as UTC.
func date(s []string, field string) (time.Time, error) {
	text, ok, err := oneText(s, field)
	if err != nil || !ok {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return time.Time{}, fieldErr(field, ErrFormat, "not a date and time with a zone: %q", text)
	}
	return t.UTC(), nil
}
