package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/internal/sizedread"
)

// DefaultMaxResponseBytes is the largest answer body a Client reads when
// Options.MaxResponseBytes is zero.
const DefaultMaxResponseBytes = 8 << 20

// Options configure a Client. The zero value is the default.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 30-second
	// timeout per request.
	HTTPClient *http.Client
	// Token is sent as "Authorization: Bearer TOKEN": a support token or a
	// self-service session token. Empty sends no Authorization header.
	Token string
	// Origin is the WebAuthn origin the chip ceremonies put into the client
	// data (WebAuthn §5.8.1); "" means "https://" followed by the RP ID of
	// the server's options.
	Origin string
	// MaxResponseBytes limits the size of an answer body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Keepalive, when set, receives the keepalive statuses a chip reports
	// during the chip ceremonies (ctap2.StatusUPNeeded: touch the chip), by
	// way of ctap2.WithKeepalive. When nil, a function the caller put into
	// the context with ctap2.WithKeepalive still receives them.
	Keepalive func(ctap2.KeepaliveStatus)
	// UserAgent is sent as User-Agent; "" means "authbench-client".
	UserAgent string
}

// Client talks to an authbench server's HTTP API v1. It is safe for
// concurrent use.
type Client struct {
	base    *url.URL
	baseURL string // base, as a string: what a request's path is appended to
	opts    Options
	hc      *http.Client
	// The values of the headers every request sends, made once: a
	// request's header map shares them (nothing in net/http changes a
	// request's header values).
	userAgent, auth []string // auth: nil without a token
}

// Header values every client sends.
var (
	acceptJSON = []string{"application/json"}
	typeJSON   = []string{"application/json"}
)

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080"; a path prefix is kept, a trailing /v1 dropped).
//
// Errors: an error when baseURL is not an absolute http or https URL.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", baseURL)
	}
	// The client adds the API's /v1 itself: a URL copied from the API's
	// address ("http://host:8080/v1") works too.
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/v1")
	u.RawQuery, u.Fragment = "", ""
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "authbench-client"
	}
	c := &Client{base: u, baseURL: u.String(), opts: opts, hc: hc, userAgent: []string{opts.UserAgent}}
	c.auth = bearer(opts.Token)
	return c, nil
}

// bearer returns the Authorization header's value for token, nil for
// none.
func bearer(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Bearer " + token}
}

// WithToken returns a copy of c that sends token (a support token, or the
// Token of a Session for self-service) instead of c's.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.opts.Token = token
	d.auth = bearer(token)
	return &d
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// request is one call of the API.
type request struct {
	method      string
	path        string     // starting with /, already escaped
	query       url.Values // optional
	body        any        // JSON-encoded unless raw is set
	raw         []byte     // sent as is with contentType
	contentType string
	accept      string // "" means application/json
}

// do sends r and decodes a 2xx JSON answer into out (when out is not nil).
// A *[]byte out receives the raw body.
func (c *Client) do(ctx context.Context, r request, out any) error {
	target := c.baseURL + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	ctype := r.contentType
	switch {
	case r.raw != nil:
		body = bytes.NewReader(r.raw)
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode request: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
		ctype = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	h := make(http.Header, 4)
	switch ctype {
	case "":
	case "application/json":
		h["Content-Type"] = typeJSON
	default:
		h["Content-Type"] = []string{ctype}
	}
	h["Accept"] = acceptJSON
	if r.accept != "" {
		h["Accept"] = []string{r.accept}
	}
	h["User-Agent"] = c.userAgent
	if c.auth != nil {
		h["Authorization"] = c.auth
	}
	req.Header = h
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("client: %s %s: %w", r.method, r.path, context.Cause(ctx))
		}
		return fmt.Errorf("client: %s %s: %w at %s: %w", r.method, r.path, ErrUnreachable, c.base.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, resp.ContentLength, c.opts.MaxResponseBytes)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("client: %s %s: %w", r.method, r.path, context.Cause(ctx))
		}
		return fmt.Errorf("client: %s %s: reading the answer: %w: %w", r.method, r.path, ErrUnreachable, err)
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return fmt.Errorf("client: %s %s: %w: answer larger than %d bytes", r.method, r.path, ErrBadResponse, c.opts.MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(r.method, r.path, resp.StatusCode, data)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if fastAnswer(data, out) {
		return nil
	}
	// What the fast path filled in before it declined is not kept.
	reflect.ValueOf(out).Elem().SetZero()
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: %w: %v", r.method, r.path, ErrBadResponse, err)
	}
	return nil
}

// readBody reads an answer's body to its end, and at most limit+1 bytes
// of it (more than limit is too large). An answer that says its length
// (size, -1 when unknown) is read into a buffer of that size plus the one
// byte that lets the last read see the end, so that it is not copied as
// it grows. It is read to its end, not only to its length, so that the
// connection is kept alive for the next request.
func readBody(body io.Reader, size, limit int64) ([]byte, error) {
	if size >= 0 {
		size = min(size, limit)
	}
	return sizedread.Read(io.LimitReader(body, limit+1), size)
}

// unwrapURLError drops the *url.Error layer, whose message repeats the
// method and the whole URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorBody is the error envelope of the contract.
type errorBody struct {
	Error *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// decodeError turns an error answer into an *APIError. A body that is not
// the contract's envelope (a proxy's HTML page, say) still gives an
// *APIError, with the generic code of the status and the start of the body
// as the message.
func decodeError(method, path string, status int, data []byte) *APIError {
	e := &APIError{Status: status, Method: method, Path: path}
	var b errorBody
	if err := json.Unmarshal(data, &b); err == nil && b.Error != nil && b.Error.Code != "" {
		e.Code, e.Message, e.Details = b.Error.Code, b.Error.Message, b.Error.Details
		return e
	}
	e.Code = statusCode(status)
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	e.Message = http.StatusText(status)
	if text != "" {
		e.Message += ": " + strings.ToValidUTF8(text, "?")
	}
	return e
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// CloseIdleConnections closes the idle keep-alive connections of the
// client's HTTP client (and so ends their goroutines). The Client stays
// usable.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }
