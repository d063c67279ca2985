// Package plainjson decodes JSON texts of a plain shape by hand, for the
// hottest bodies and answers of the API, which encoding/json decodes by
// reflection: objects whose keys are exactly the fields' names (no
// escapes, no other case), each at most once; strings without escape
// sequences or control characters; integers without fraction or exponent;
// true, false and null.
//
// Every method of Scanner reports false as soon as the text leaves that
// shape, and the caller then hands the whole text to encoding/json, which
// decides and words the answer. A caller therefore decodes by hand only
// what encoding/json would decode to the same value; its fuzzer holds the
// two to that (server/api FuzzFastDecode, server/client FuzzFastAnswer).
// null leaves a value as it is, as encoding/json does, except for
// pointers, maps and slices, which it sets to nil.
package plainjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Scanner walks a JSON text.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner at the start of b.
func New(b []byte) Scanner { return Scanner{b: b} }

func (d *Scanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// End reports whether only white space is left.
func (d *Scanner) End() bool {
	d.ws()
	return d.i == len(d.b)
}

// Null consumes a null, if that is what comes next.
func (d *Scanner) Null() bool { return d.literal("null") }

func (d *Scanner) literal(l string) bool {
	d.ws()
	if len(d.b)-d.i >= len(l) && string(d.b[d.i:d.i+len(l)]) == l {
		d.i += len(l)
		return true
	}
	return false
}

// Raw returns the bytes of the next string, without its quotes, when it
// holds no escape and no control character and is valid UTF-8.
func (d *Scanner) Raw() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	end := bytes.IndexByte(d.b[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := d.b[start : start+end]
	// The classes of s's bytes, or-ed: one pass with no branch per byte.
	var seen byte
	for _, c := range s {
		seen |= rawClass[c]
	}
	if seen&rawBad != 0 {
		return nil, false
	}
	d.i = start + end + 1
	// encoding/json would put U+FFFD in place of bad UTF-8.
	return s, seen&rawHigh == 0 || utf8.Valid(s)
}

// The classes of the bytes of a string for Raw: a backslash (the start
// of an escape) or a control character refuses it; a byte of 0x80 or more
// makes it need a UTF-8 check.
const (
	rawHigh = 1 << iota
	rawBad
)

var rawClass = func() (t [256]byte) {
	for c := range t {
		switch {
		case c == '\\' || c < 0x20:
			t[c] = rawBad
		case c >= 0x80:
			t[c] = rawHigh
		}
	}
	return t
}()

// Str decodes a string (or null, which leaves *p as it is) into *p.
func (d *Scanner) Str(p *string) bool {
	if d.Null() {
		return true
	}
	s, ok := d.Raw()
	if ok {
		*p = string(s)
	}
	return ok
}

// Strs decodes an array of strings into *p (null sets *p to nil, as
// encoding/json does; [] is an empty slice, not nil).
func (d *Scanner) Strs(p *[]string) bool {
	l := []string{}
	null, ok := d.array(func() bool {
		var s string
		if !d.Str(&s) {
			return false
		}
		l = append(l, s)
		return true
	})
	switch {
	case ok && null:
		*p = nil
	case ok:
		*p = l
	}
	return ok
}

// List decodes an array into *p, elem decoding each element into the
// value it is given (a zero value); null sets *p to nil, as
// encoding/json does, and [] makes an empty slice, not nil.
func List[T any](d *Scanner, p *[]T, elem func(*T) bool) bool {
	l := []T{}
	null, ok := d.array(func() bool {
		var v T
		if !elem(&v) {
			return false
		}
		l = append(l, v)
		return true
	})
	switch {
	case ok && null:
		*p = nil
	case ok:
		*p = l
	}
	return ok
}

// array decodes an array, calling elem for each element with the scanner
// at it; null reports that it was null instead.
func (d *Scanner) array(elem func() bool) (null, ok bool) {
	if d.Null() {
		return true, true
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '[' {
		return false, false
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return false, true
	}
	for {
		if !elem() {
			return false, false
		}
		d.ws()
		if d.i >= len(d.b) {
			return false, false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return false, true
		default:
			return false, false
		}
	}
}

// integer returns the next integer's text (JSON's grammar: an optional
// minus, then 0 or digits without a leading zero), when it has no
// fraction and no exponent.
func (d *Scanner) integer(signed bool) ([]byte, bool) {
	d.ws()
	start := d.i
	if signed && d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	switch n := d.i - digits; {
	case n == 0, n > 1 && d.b[digits] == '0', n > 20:
		return nil, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return nil, false
		}
	}
	return d.b[start:d.i], true
}

// Int decodes an integer that fits bits (64 for int64, strconv.IntSize
// for int) into *p; null leaves *p as it is.
func (d *Scanner) Int(p *int64, bits int) bool {
	if d.Null() {
		return true
	}
	s, ok := d.integer(true)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(s), 10, bits)
	if err != nil {
		return false
	}
	*p = v
	return true
}

// IntOf decodes an integer that fits an int into *p; null leaves *p as
// it is.
func (d *Scanner) IntOf(p *int) bool {
	v := int64(*p)
	if !d.Int(&v, strconv.IntSize) {
		return false
	}
	*p = int(v)
	return true
}

// Uint decodes an unsigned integer that fits bits into *p; null leaves *p
// as it is.
func (d *Scanner) Uint(p *uint64, bits int) bool {
	if d.Null() {
		return true
	}
	s, ok := d.integer(false)
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(string(s), 10, bits)
	if err != nil {
		return false
	}
	*p = v
	return true
}

// Bool decodes true or false into *p; null leaves *p as it is.
func (d *Scanner) Bool(p *bool) bool {
	switch {
	case d.Null():
	case d.literal("true"):
		*p = true
	case d.literal("false"):
		*p = false
	default:
		return false
	}
	return true
}

// BoolPtr decodes true or false into a new *p; null sets *p to nil.
func (d *Scanner) BoolPtr(p **bool) bool {
	if d.Null() {
		*p = nil
		return true
	}
	var v bool
	if !d.Bool(&v) {
		return false
	}
	*p = &v
	return true
}

// Time decodes a string into *p as time.Time.UnmarshalJSON does (RFC 3339
// strictly); null leaves *p as it is.
func (d *Scanner) Time(p *time.Time) bool {
	if d.Null() {
		return true
	}
	d.ws()
	start := d.i
	if _, ok := d.Raw(); !ok {
		return false
	}
	return p.UnmarshalJSON(d.b[start:d.i]) == nil
}

// TimePtr decodes a string into a new *p as Time does; null sets *p to
// nil.
func (d *Scanner) TimePtr(p **time.Time) bool {
	if d.Null() {
		*p = nil
		return true
	}
	t := new(time.Time)
	if !d.Time(t) {
		return false
	}
	*p = t
	return true
}

// EmptyObject decodes {} (an empty map) or null (nil) into *p.
func (d *Scanner) EmptyObject(p *map[string]json.RawMessage) bool {
	if d.Null() {
		*p = nil
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

// maxKeys is the most keys an object may have.
const maxKeys = 24

// Object decodes an object, calling field for each key with the scanner
// at its value. A key seen before declines (encoding/json would let the
// later value win, or merge objects). null is not an object: a caller
// that takes one checks Null first.
func (d *Scanner) Object(field func(key []byte) bool) bool {
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
	var seen [maxKeys][]byte
	n := 0
	for {
		k, ok := d.Raw()
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
