package ctap2

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// maxNesting bounds how deeply arrays and maps may nest. CTAP 2.1 §8
// ("Message encoding") lets platforms use at most four levels; the bound here
// is looser and only protects the stack against hostile input.
const maxNesting = 16

// CBOR major types (RFC 8949 §3.1).
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// scanner walks encoded CBOR without building values. It always requires
// well-formed items (RFC 8949 §3) of definite length, without tags; the flags
// add the rules of the CTAP2 canonical CBOR encoding form and of CTAP
// messages.
type scanner struct {
	b []byte
	// canonical requires the CTAP2 canonical encoding form (CTAP 2.1 §8):
	// shortest integer and length arguments, and map keys in strictly
	// increasing bytewise order of their encodings (which also rules out
	// duplicate keys).
	canonical bool
	// noNull rejects the simple values null and undefined, which no CTAP
	// message carries.
	noNull bool
}

// head decodes the initial byte and argument of the item at off and returns
// the offset just after them.
func (s *scanner) head(off int) (major, ai byte, arg uint64, next int, err error) {
	if off >= len(s.b) {
		return 0, 0, 0, 0, fmt.Errorf("%w: truncated at offset %d", ErrInvalidCBOR, off)
	}
	ib := s.b[off]
	major, ai = ib>>5, ib&0x1f
	next = off + 1
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(s.b)-next < n {
			return 0, 0, 0, 0, fmt.Errorf("%w: truncated at offset %d", ErrInvalidCBOR, off)
		}
		for _, c := range s.b[next : next+n] {
			arg = arg<<8 | uint64(c)
		}
		next += n
	case ai == 31:
		return 0, 0, 0, 0, fmt.Errorf("%w: indefinite length at offset %d", ErrInvalidCBOR, off)
	default:
		return 0, 0, 0, 0, fmt.Errorf("%w: reserved additional information at offset %d", ErrInvalidCBOR, off)
	}
	if s.canonical && major != majorSimple && !minimalArg(ai, arg) {
		return 0, 0, 0, 0, fmt.Errorf("%w: argument not in shortest form at offset %d", ErrInvalidCBOR, off)
	}
	return major, ai, arg, next, nil
}

func minimalArg(ai byte, arg uint64) bool {
	switch ai {
	case 24:
		return arg >= 24
	case 25:
		return arg > 0xff
	case 26:
		return arg > 0xffff
	case 27:
		return arg > 0xffffffff
	}
	return true
}

// item checks the item that starts at off and returns the offset just past it.
func (s *scanner) item(off, depth int) (int, error) {
	if depth > maxNesting {
		return 0, fmt.Errorf("%w: nested more than %d levels", ErrInvalidCBOR, maxNesting)
	}
	major, ai, arg, p, err := s.head(off)
	if err != nil {
		return 0, err
	}
	rest := uint64(len(s.b) - p)
	switch major {
	case majorUint, majorNegInt:
		return p, nil
	case majorBytes, majorText:
		if arg > rest {
			return 0, fmt.Errorf("%w: string at offset %d runs past the end", ErrInvalidCBOR, off)
		}
		end := p + int(arg)
		if major == majorText && !utf8.Valid(s.b[p:end]) {
			return 0, fmt.Errorf("%w: text at offset %d is not UTF-8", ErrInvalidCBOR, off)
		}
		return end, nil
	case majorArray:
		if arg > rest {
			return 0, fmt.Errorf("%w: array at offset %d runs past the end", ErrInvalidCBOR, off)
		}
		for i := uint64(0); i < arg; i++ {
			if p, err = s.item(p, depth+1); err != nil {
				return 0, err
			}
		}
		return p, nil
	case majorMap:
		if arg > rest/2 {
			return 0, fmt.Errorf("%w: map at offset %d runs past the end", ErrInvalidCBOR, off)
		}
		var prev []byte
		for i := uint64(0); i < arg; i++ {
			k := p
			if p, err = s.item(p, depth+1); err != nil {
				return 0, err
			}
			key := s.b[k:p]
			if s.canonical && i > 0 && bytes.Compare(prev, key) >= 0 {
				return 0, fmt.Errorf("%w: map key at offset %d is out of canonical order or repeated", ErrInvalidCBOR, k)
			}
			prev = key
			if p, err = s.item(p, depth+1); err != nil {
				return 0, err
			}
		}
		return p, nil
	case majorTag:
		return 0, fmt.Errorf("%w: tag at offset %d", ErrInvalidCBOR, off)
	}
	// Major type 7: simple values and floats.
	switch {
	case ai == 22 || ai == 23:
		if s.noNull {
			return 0, fmt.Errorf("%w: null or undefined at offset %d", ErrCBORUnexpectedType, off)
		}
	case ai == 24 && arg < 32:
		return 0, fmt.Errorf("%w: malformed simple value at offset %d", ErrInvalidCBOR, off)
	case ai < 20 || ai == 24:
		// Unassigned simple values: no CTAP message carries them, and a
		// decoder would read them as the integer they number.
		if s.canonical || s.noNull {
			return 0, fmt.Errorf("%w: unassigned simple value at offset %d", ErrInvalidCBOR, off)
		}
	}
	return p, nil
}

// one checks that b holds exactly one item and returns the major type of it.
func (s *scanner) one() (byte, error) {
	end, err := s.item(0, 0)
	if err != nil {
		return 0, err
	}
	if end != len(s.b) {
		return 0, fmt.Errorf("%w: %d bytes after the item", ErrInvalidCBOR, len(s.b)-end)
	}
	return s.b[0] >> 5, nil
}

// CheckCanonical reports whether b is exactly one CBOR item in the CTAP2
// canonical CBOR encoding form (CTAP 2.1 §8, "Message encoding"): well-formed,
// definite lengths, no tags, integers and lengths in their shortest form, map
// keys sorted bytewise by their encodings and not repeated, text valid UTF-8,
// nothing after the item. Floating-point values may have any width (the form
// does not constrain them).
//
// It returns nil or an error wrapping ErrInvalidCBOR.
func CheckCanonical(b []byte) error {
	s := scanner{b: b, canonical: true}
	_, err := s.one()
	return err
}

// wellFormedMap checks that b is exactly one well-formed CBOR map of definite
// length without tags; it need not be canonical. Authenticator data embeds
// such maps (WebAuthn §6.1) and keeps their bytes as they are.
func wellFormedMap(b []byte) error {
	s := scanner{b: b}
	major, err := s.one()
	if err != nil {
		return err
	}
	if major != majorMap {
		return fmt.Errorf("%w: not a map", ErrCBORUnexpectedType)
	}
	return nil
}

// mapItemLen returns the length of the well-formed CBOR map at the start of b;
// bytes may follow it.
func mapItemLen(b []byte) (int, error) {
	s := scanner{b: b}
	end, err := s.item(0, 0)
	if err != nil {
		return 0, err
	}
	if b[0]>>5 != majorMap {
		return 0, fmt.Errorf("%w: not a map", ErrCBORUnexpectedType)
	}
	return end, nil
}

// messageKeys checks that b is a CTAP message body (canonical, no null, a map
// at the top) and returns the set of small unsigned integer keys of that map
// as a bit set: bit k is set when key k (k < 64) is present.
func messageKeys(b []byte) (uint64, error) {
	s := scanner{b: b, canonical: true, noNull: true}
	major, err := s.one()
	if err != nil {
		return 0, err
	}
	if major != majorMap {
		return 0, fmt.Errorf("%w: parameters are not a map", ErrCBORUnexpectedType)
	}
	// The scan above proved the whole map well-formed; walk its keys again.
	_, _, n, p, _ := s.head(0)
	var keys uint64
	for i := uint64(0); i < n; i++ {
		major, _, arg, _, _ := s.head(p)
		if major == majorUint && arg < 64 {
			keys |= 1 << arg
		}
		p, _ = s.item(p, 1) // key
		p, _ = s.item(p, 1) // value
	}
	return keys, nil
}
