package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/authbench/authbench/internal/sizedread"
)

// requestError is a problem with the request itself, answered before the
// service is called.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, args...)}
}

// readBody reads at most max bytes of the body, checking its media type
// against want (the first is the canonical one). An empty body is returned
// as nil without a media type check.
func readBody(w http.ResponseWriter, r *http.Request, max int64, want ...string) ([]byte, error) {
	// Room for what the request declares, up to 16 KiB: a declared length
	// costs nothing until the bytes come.
	body, err := sizedread.Read(http.MaxBytesReader(w, r.Body, max), min(r.ContentLength, max, 16<<10))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{http.StatusRequestEntityTooLarge, CodeTooLarge,
				fmt.Sprintf("The request body is larger than %d bytes.", max)}
		}
		return nil, badRequest("The request body could not be read.")
	}
	if len(body) == 0 {
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == want[0] {
		// The canonical type as it is, without parameters: what
		// ParseMediaType would accept, without its map.
		return body, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	ok := err == nil
	if ok {
		ok = false
		for _, w := range want {
			ok = ok || mt == w
		}
		if cs, has := params["charset"]; has && !strings.EqualFold(cs, "utf-8") {
			ok = false
		}
	}
	if !ok {
		return nil, &requestError{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			fmt.Sprintf("The request body must be %s.", strings.Join(want, " or "))}
	}
	return body, nil
}

// decodeJSON decodes a JSON request body into v strictly: one JSON object,
// no unknown fields, nothing after it. An empty body counts as {}.
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	body, err := readBody(w, r, max, "application/json")
	if err != nil {
		return err
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		// encoding/json would put U+FFFD in place of the bad bytes, and
		// two different passwords could then match one verifier.
		return badRequest("The request body is not valid UTF-8; JSON text is UTF-8 (RFC 8259 §8.1).")
	}
	if fastDecode(body, v) {
		return nil
	}
	// What the fast path filled in before it declined is not kept.
	reflect.ValueOf(v).Elem().SetZero()
	return unmarshalStrict(body, v)
}

// unmarshalStrict decodes one JSON object from b into v, refusing unknown
// fields, wrong types and trailing data, with a message for a person.
func unmarshalStrict(b []byte, v any) error {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("The request body holds data after the JSON object.")
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("The request body is not valid JSON (at byte %d).", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("The field %q must be a JSON %s.", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return "The request body has a value of the wrong type."
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "The request body is truncated JSON."
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "Unknown field " + f + "."
	}
	return "The request body is not acceptable JSON."
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}
