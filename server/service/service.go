package service

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-webauthn/webauthn/metadata"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// Defaults of Options.
const (
	DefaultSessionTTL  = 15 * time.Minute
	DefaultCeremonyTTL = 5 * time.Minute
	DefaultMaxRetries  = 10
	DefaultRPName      = "authbench"
	// DefaultAttemptTTL is how long a reserved attempt lasts when the
	// replica checking it dies before recording the outcome.
	DefaultAttemptTTL = 30 * time.Second
	// DefaultAttemptWait is how long a guess waits for the guesses in
	// flight before it against the same authenticator to be decided.
	DefaultAttemptWait = 20 * time.Second
)

// Limits on identifiers and free text. IDs appear in URL paths, so they
// are restricted to letters, digits and "._-@", starting with a letter or
// digit.
const (
	MaxIDLen       = 64
	MaxLabelLen    = 128
	MaxSerialLen   = 64
	MaxReasonLen   = 256
	maxAuditLimit  = 1000
	maxCredentials = 32 // excludeCredentials entries
)

// Options configure New. The zero value of every field but Store and
// Keyring is a usable default.
type Options struct {
	// Store persists everything (required).
	Store store.Store
	// Keyring seals OTP secrets (required).
	Keyring *secrets.Keyring
	// Policy holds the lifecycle numbers; the zero Policy is the default.
	Policy domain.Policy
	// RPID is the WebAuthn relying party ID (WebAuthn Level 3 §5.1.2);
	// default "localhost".
	RPID string
	// RPName is the relying party's display name; default "authbench".
	RPName string
	// RPOrigins are the origins accepted in client data (WebAuthn Level 3
	// §7.1 step 9); default "https://" + RPID.
	RPOrigins []string
	// AttestationRoots are the CAs a chip's attestation certificate must
	// chain to (packed and fido-u2f x5c). nil trusts none.
	AttestationRoots *x509.CertPool
	// AttestationMetadata is a FIDO Metadata Service (MDS3) provider of
	// go-webauthn for real keys (see device/webauthn, Config.Metadata): a
	// chip its entry reports compromised is refused, and one that chains
	// to the entry's attestation roots is trusted. nil uses none.
	AttestationMetadata metadata.Provider
	// AllowNoneAttestation accepts chips without a trusted attestation
	// ("none", self attestation, or an x5c chain to no configured root);
	// they are recorded as not trusted.
	AllowNoneAttestation bool
	// SessionTTL is the lifetime of a self-service session; default 15 min.
	SessionTTL time.Duration
	// CeremonyTTL is how long a registration or login ceremony can be
	// finished; default 5 min.
	CeremonyTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of identifiers and challenges; nil means
	// crypto/rand. Given a source of its own (a seeded one, for a story
	// told the same way twice), the Service draws its IDs from it alone
	// (prefix-<16 hex digits>); with crypto/rand they begin with the time
	// (newID).
	Rand io.Reader
	// Logger receives one line per state change and refusal (IDs and
	// outcomes, never secrets); nil discards.
	Logger *slog.Logger
	// Hasher are the argon2id parameters of new PIN and password
	// verifiers; the zero Params is secrets.DefaultParams.
	Hasher secrets.Params
	// PSKCKey is the pre-shared AES key that protects imported PSKC
	// documents (RFC 6030 §6.1), whatever its KeyName.
	PSKCKey []byte
	// PSKCPassphrase is the passphrase for PBKDF2-protected PSKC documents
	// (RFC 6030 §6.2).
	PSKCPassphrase string
	// PSKCAllowPlaintext accepts PSKC documents whose secrets are in the
	// clear (PlainValue, RFC 6030 §4.2): for test documents only, since
	// whoever saw such a document knows the secrets. Without it they are
	// refused with ErrPSKCInvalid (authbench serve --pskc-allow-plaintext).
	PSKCAllowPlaintext bool
	// MaxRetries bounds the reload-and-retry loop on store.ErrConflict;
	// default 10.
	MaxRetries int
	// LoginLimit limits the checks of one authenticator's secret (a
	// password, a PIN, a code, a chip assertion, an activation code), per
	// identity and authenticator, once the authenticator is known: the
	// token bucket is keyed on what was resolved, so made-up IDs cost the
	// owner nothing. The zero Rate is DefaultLoginLimit; Every < 0 turns
	// it off.
	LoginLimit Rate
	// AttemptTTL is how long a reserved attempt lasts if the replica
	// checking it dies; default DefaultAttemptTTL.
	AttemptTTL time.Duration
	// AttemptWait bounds how long a guess waits while the attempts left
	// are all in flight; default DefaultAttemptWait.
	AttemptWait time.Duration
	// Metrics, when set, receives the store calls' latencies, the events
	// stored, and each evaluation of a secret against its verifier.
	Metrics Metrics
}

// DefaultLoginLimit is the default of Options.LoginLimit: bursts of 30,
// then one every 200 ms, per identity and authenticator.
var DefaultLoginLimit = Rate{Burst: 30, Every: 200 * time.Millisecond}

// Service runs the server's use cases over a store. It is safe for
// concurrent use; several Services (replicas) may share one database.
type Service struct {
	st         store.Store
	keys       *secrets.Keyring
	policy     domain.Policy
	rpID       string
	rp         *webauthn.RelyingParty
	sessionTTL time.Duration
	ceremonyTT time.Duration
	now        func() time.Time
	rand       io.Reader
	randomIDs  bool // IDs without the time (Options.Rand)
	log        *slog.Logger
	hasher     secrets.Params
	pskcKey    []byte
	pskcPass   string
	pskcPlain  bool
	retries    int
	sealer     *audit.Sealer
	limit      *Limiter
	attemptTTL time.Duration
	wait       time.Duration
	metrics    Metrics
	kinds      map[device.Kind]kind
	bell       bell
}

// New returns a Service. It returns an error wrapping ErrInvalid when
// Store or Keyring is missing or an origin is not an absolute URL.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Keyring == nil {
		return nil, fmt.Errorf("service: %w: Options.Store and Options.Keyring are required", ErrInvalid)
	}
	s := &Service{
		st:         opts.Store,
		keys:       opts.Keyring,
		policy:     opts.Policy,
		rpID:       opts.RPID,
		sessionTTL: opts.SessionTTL,
		ceremonyTT: opts.CeremonyTTL,
		now:        opts.Now,
		rand:       opts.Rand,
		randomIDs:  opts.Rand != nil,
		log:        opts.Logger,
		hasher:     opts.Hasher,
		pskcKey:    append([]byte(nil), opts.PSKCKey...),
		pskcPass:   opts.PSKCPassphrase,
		pskcPlain:  opts.PSKCAllowPlaintext,
		retries:    opts.MaxRetries,
	}
	if s.rpID == "" {
		s.rpID = "localhost"
	}
	rpName := opts.RPName
	if rpName == "" {
		rpName = DefaultRPName
	}
	rp, err := webauthn.New(webauthn.Config{
		ID:             s.rpID,
		Name:           rpName,
		Origins:        opts.RPOrigins,
		Roots:          opts.AttestationRoots,
		Metadata:       opts.AttestationMetadata,
		AllowUntrusted: opts.AllowNoneAttestation,
		Algorithms:     []int64{webauthn.AlgES256, webauthn.AlgEdDSA},
		Now:            s.clock,
	})
	if err != nil {
		return nil, fromWebAuthn(err)
	}
	s.rp = rp
	if s.sessionTTL <= 0 {
		s.sessionTTL = DefaultSessionTTL
	}
	if s.ceremonyTT <= 0 {
		s.ceremonyTT = DefaultCeremonyTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.retries <= 0 {
		s.retries = DefaultMaxRetries
	}
	s.limit = NewLimiter(opts.LoginLimit.or(DefaultLoginLimit), s.now)
	s.attemptTTL = opts.AttemptTTL
	if s.attemptTTL <= 0 {
		s.attemptTTL = DefaultAttemptTTL
	}
	s.wait = opts.AttemptWait
	if s.wait <= 0 {
		s.wait = DefaultAttemptWait
	}
	if opts.Metrics != nil {
		s.metrics = opts.Metrics
		s.st = instrument(s.st, opts.Metrics)
	}
	code := &codeKind{s}
	s.kinds = map[device.Kind]kind{
		device.KindPassword:        &passwordKind{s},
		device.KindApp:             &appKind{s},
		device.KindChip:            &chipKind{s},
		device.KindCodeDisplay:     code,
		device.KindAudioCodeReader: code,
	}
	s.sealer = &audit.Sealer{Log: s.st, Keys: s.keys, Now: s.now, Logger: s.log}
	return s, nil
}

// Policy returns the lifecycle policy in force.
func (s *Service) Policy() domain.Policy { return s.policy }

// RPID returns the WebAuthn relying party ID.
func (s *Service) RPID() string { return s.rpID }

// Ping reports whether the store answers. It returns an error wrapping
// ErrUnavailable when it does not.
func (s *Service) Ping(ctx context.Context) error {
	if _, err := s.st.LastAuditCheckpoint(ctx); err != nil {
		return fmt.Errorf("service: %w: %v", ErrUnavailable, err)
	}
	return nil
}

// clock returns the current time in UTC.
func (s *Service) clock() time.Time { return s.now().UTC() }

// random returns n bytes from the configured source.
func (s *Service) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("service: reading randomness: %w", err)
	}
	return b, nil
}

// newID returns prefix-<11 hex digits of the time><16 random hex digits>
// (prefix-<16 random hex digits> for a Service given its own Rand, whose
// IDs one seed reproduces).
// The time (Unix milliseconds, timeKey) first: the IDs a server draws in
// one stretch of time are neighbours in key order, so the rows a commit
// writes under them (an authenticator, its element, its tombstone) share
// the leaf pages of their B-trees instead of each dirtying a page of its
// own. The random part keeps IDs unique and unguessable as before.
func (s *Service) newID(prefix string) (string, error) {
	b, err := s.random(8)
	if err != nil {
		return "", err
	}
	id := make([]byte, 0, len(prefix)+1+timeKeyLen+2*len(b))
	id = append(append(id, prefix...), '-')
	if !s.randomIDs {
		id = appendTimeKey(id, s.clock())
	}
	return string(hex.AppendEncode(id, b)), nil
}

// timeKeyLen is the length of a time key (appendTimeKey).
const timeKeyLen = 11

// appendTimeKey appends t as timeKeyLen lower-case hex digits of its Unix
// milliseconds (zero-padded, so that the keys sort as their times until
// the year 2527, past the last expiry a time.Time in Unix nanoseconds can
// hold, 2262; a time before 1970 counts as 1970).
func appendTimeKey(b []byte, t time.Time) []byte {
	ms := max(t.UnixMilli(), 0)
	const digits = "0123456789abcdef"
	for i := timeKeyLen - 1; i >= 0; i-- {
		b = append(b, digits[(ms>>(4*i))&0xf])
	}
	return b
}

// b64 is unpadded base64url (RFC 4648 §5), the encoding of every binary
// value in the API.
var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes field value v, or returns an error wrapping ErrInvalid
// that names field.
func decodeB64(field, v string) ([]byte, error) {
	if v == "" {
		return nil, invalid("%s is missing", field)
	}
	b, err := b64.DecodeString(v)
	if err != nil {
		return nil, invalid("%s is not unpadded base64url", field)
	}
	return b, nil
}

// CheckID reports whether id is acceptable as an identity or authenticator
// ID: 1 to MaxIDLen characters from letters, digits and "._-@", starting
// with a letter or digit. It returns an error wrapping ErrInvalid.
func CheckID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return invalid("%s must have 1 to %d characters", what, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-' && c != '@') {
			return invalid("%s may hold only letters, digits and . _ - @, starting with a letter or digit", what)
		}
	}
	return nil
}

// checkText refuses free text that is too long, not UTF-8, or holds
// control characters.
func checkText(what, v string, max int) error {
	if len(v) > max {
		return invalid("%s is longer than %d bytes", what, max)
	}
	for _, r := range v {
		if r == 0xFFFD || r < 0x20 || r == 0x7F {
			return invalid("%s holds control characters or invalid UTF-8", what)
		}
	}
	return nil
}

// storeErr turns a store error into the service's, so that callers (the
// HTTP API) branch on this package's sentinels only: store.ErrNotFound is
// ErrNotFound with what named; store.ErrInvalid a bad request
// (ErrInvalid); store.ErrConflict, ErrDuplicate and ErrExhausted are
// ErrConflict. The store's sentinel is not wrapped any more; an error of
// the database itself, or the context's, is wrapped as it is.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("service: %w: %s", ErrNotFound, what)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("service: %w: %s: %v", ErrInvalid, what, err)
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrExhausted):
		return fmt.Errorf("service: %w: %s: %v", ErrConflict, what, err)
	}
	return fmt.Errorf("service: %s: %w", what, err)
}

// authorize checks that by may act on identity identityID: support always,
// the owner only on their own identity and only when !supportOnly. It
// returns an error wrapping ErrForbidden.
func authorize(by domain.Actor, identityID string, supportOnly bool) error {
	switch by.Kind {
	case domain.ActorSupport:
		if by.ID != "" {
			return nil
		}
	case domain.ActorOwner:
		if supportOnly {
			return fmt.Errorf("service: %w: only a support operator can do this", ErrForbidden)
		}
		if by.ID == identityID {
			return nil
		}
		return fmt.Errorf("service: %w: the session belongs to another identity", ErrForbidden)
	}
	return fmt.Errorf("service: %w: no valid credential", ErrForbidden)
}

// applyAuth reloads authenticator aid, runs f on it and applies the
// Change, retrying on store.ErrConflict. A *domain.TransitionError from f
// is audited (attributed to by) and returned.
func (s *Service) applyAuth(ctx context.Context, aid string, by domain.Actor, f func(a domain.Authenticator) (domain.Change, error)) (domain.Change, error) {
	for try := 0; ; try++ {
		a, err := s.st.Authenticator(ctx, aid)
		if err != nil {
			return domain.Change{}, storeErr(err, "authenticator "+aid)
		}
		c, err := f(a)
		if errors.Is(err, errAuditOnly) {
			return c, err
		}
		if err != nil {
			s.auditRefusal(ctx, err, by)
			return domain.Change{}, err
		}
		err = s.st.ApplyChange(ctx, c)
		if err == nil {
			s.logChange(ctx, c.Events)
			return c, nil
		}
		if !errors.Is(err, store.ErrConflict) || try >= s.retries {
			return domain.Change{}, storeErr(err, "authenticator "+aid)
		}
	}
}

// applyIdentity is applyAuth for identity transitions.
func (s *Service) applyIdentity(ctx context.Context, id string, by domain.Actor, f func(i domain.Identity) (domain.IdentityChange, error)) (domain.IdentityChange, error) {
	for try := 0; ; try++ {
		i, err := s.st.Identity(ctx, id)
		if err != nil {
			return domain.IdentityChange{}, storeErr(err, "identity "+id)
		}
		c, err := f(i)
		if err != nil {
			s.auditRefusal(ctx, err, by)
			return domain.IdentityChange{}, err
		}
		err = s.st.UpdateIdentity(ctx, c)
		if err == nil {
			s.logChange(ctx, c.Events)
			return c, nil
		}
		if !errors.Is(err, store.ErrConflict) || try >= s.retries {
			return domain.IdentityChange{}, storeErr(err, "identity "+id)
		}
	}
}

// auditRefusal appends the audit event of a refused transition. Errors of
// the append are logged: the refusal itself is what the caller sees.
func (s *Service) auditRefusal(ctx context.Context, err error, by domain.Actor) {
	var te *domain.TransitionError
	if !errors.As(err, &te) || te.IdentityID == "" {
		return
	}
	ev := te.Audit(by, s.clock())
	if aerr := s.st.AppendAudit(ctx, ev); aerr != nil {
		s.log.WarnContext(ctx, "service: could not audit a refusal", "identity", te.IdentityID, "authenticator", te.AuthenticatorID, "err", aerr)
	}
	s.log.InfoContext(ctx, "refused", "op", string(te.Event), "identity", te.IdentityID, "authenticator", te.AuthenticatorID, "reason", te.Reason.Error(), "actor", by.String())
}

// logChange logs the events of a stored change (types and IDs only).
func (s *Service) logChange(ctx context.Context, events []domain.Event) {
	if len(events) == 0 || !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	for _, e := range events {
		s.log.InfoContext(ctx, string(e.Type), "identity", e.IdentityID, "authenticator", e.AuthenticatorID, "actor", e.Actor.String(), "reason", e.Reason)
	}
}

// errAuditOnly tells applyAuth that the change is to be audited only, not
// written as a new version (see recordFailure).
var errAuditOnly = errors.New("service: audit only")
