// Package embedded starts a complete authbench server in-process: a store
// (SQLite, or PostgreSQL for a postgres:// URL), the service, the HTTP
// API, on a TCP listener. The `authbench serve` command runs through it,
// and so do the demo and the tests that need a real server (by default on
// 127.0.0.1:0 with a temporary database).
//
// It sits on top of the server packages (DESIGN §2, §5): server/api over
// server/service over server/store/sqlite or server/store/postgres, with
// the keys of server/secrets. It opens the database and the listener
// itself; Close releases both and stops the background work (sweeping
// expired ceremonies and sessions, sealing audit checkpoints), after one
// last checkpoint.
package embedded

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/metadata"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/web"
)

// ErrPostgres: the PostgreSQL database of a postgres:// URL could not be
// opened (unreachable, refused, or at a newer schema). Start's error wraps
// it together with the cause.
var ErrPostgres = errors.New("embedded: cannot open the PostgreSQL store")

// IsPostgresURL reports whether db names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than an SQLite file.
func IsPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// postgresOpenTimeout bounds connecting to PostgreSQL and migrating when
// the caller's ctx has no deadline.
const postgresOpenTimeout = 30 * time.Second

// DefaultOperator is the operator ID of the support token Start makes
// when Options.SupportTokens is empty.
const DefaultOperator = "support"

// Options configure Start. The zero value starts a throw-away server on
// 127.0.0.1:0 with a temporary database, a random master key and one
// random support token.
type Options struct {
	// Addr is the TCP address to listen on; default "127.0.0.1:0".
	Addr string
	// Listener, when set, is used instead of listening on Addr; Close
	// closes it.
	Listener net.Listener
	// DB is the SQLite database path, or a postgres:// (postgresql://)
	// URL of a PostgreSQL database that several servers may share
	// (server/store/postgres). "" means a new SQLite database in a
	// temporary directory that Close removes; ":memory:" an in-memory one.
	DB string
	// Keyring is the master keyring. nil means a new one: written to
	// NewMasterKeyFile when that is set, else a random one that dies with
	// the process (fine for tests and the demo).
	Keyring *secrets.Keyring
	// NewMasterKeyFile is where a new master key is written (secrets.Create)
	// when Keyring is nil. Start makes a new key only for a store that
	// holds nothing sealed: when the store holds sealed secrets, a new key
	// could open none of them, and Start fails with an error wrapping a
	// *service.MasterKeyError instead.
	NewMasterKeyFile string
	// SupportTokens maps support tokens to operator IDs; empty means one
	// random token for DefaultOperator (Server.SupportToken).
	SupportTokens map[string]string

	// The service's settings (see service.Options).
	Policy               domain.Policy
	RPID                 string
	RPOrigins            []string
	AttestationRoots     *x509.CertPool
	AttestationMetadata  metadata.Provider // FIDO MDS3 of real keys (see device/webauthn)
	AllowNoneAttestation bool
	SessionTTL           time.Duration
	Hasher               secrets.Params
	PSKCKey              []byte
	PSKCPassphrase       string
	PSKCAllowPlaintext   bool // test documents only (service.Options.PSKCAllowPlaintext)
	Now                  func() time.Time
	// Rand is the service's source of randomness (IDs, challenges,
	// session tokens); nil means crypto/rand. The demo passes a seeded
	// stream so that a seed gives the same IDs.
	Rand io.Reader

	// RateLimit configures the login rate limits (see api.RateLimit); the
	// pages take the same.
	RateLimit api.RateLimit
	// TLSCertFile and TLSKeyFile, when both are set, serve HTTPS with
	// that certificate (PEM) instead of HTTP: the pages' cookies are then
	// Secure, with __Host- names.
	TLSCertFile, TLSKeyFile string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// SweepEvery is how often expired ceremonies and sessions are
	// deleted; default 1 min.
	SweepEvery time.Duration
	// CheckpointEvery is how often the server seals the heads of the
	// audit chains in a MACed checkpoint (server/audit), when any moved;
	// default DefaultCheckpointEvery. Records appended since the newest
	// checkpoint can be cut without `audit verify` noticing, so this is
	// that window. Shutdown seals once more. Negative turns periodic
	// checkpoints off (the one at shutdown stays).
	CheckpointEvery time.Duration
	// Wrap, when set, wraps the API handler the HTTP server serves (not
	// the pages, which the contract does not describe): the tests check
	// every exchange against the OpenAPI document with it
	// (server/api/apitest).
	Wrap func(http.Handler) http.Handler
}

// DefaultCheckpointEvery is the default of Options.CheckpointEvery.
const DefaultCheckpointEvery = time.Minute

// Server is a running server.
type Server struct {
	// URL is the base URL, such as "http://127.0.0.1:41234".
	URL string
	// Addr is the address the server listens on.
	Addr string
	// SupportToken is a support token (the generated one when
	// Options.SupportTokens was empty, else the first in token order).
	SupportToken string
	// Service, Handler and Pages are the layers under the HTTP server, for
	// callers that want to reach them directly: the API (/v1/..., /healthz,
	// /metrics) and the pages (everything else: / and /support).
	Service *service.Service
	Handler *api.Handler
	Pages   *web.Handler

	srv     *http.Server
	ln      net.Listener // until the HTTP server owns it
	st      store.Store
	svc     *service.Service
	tmpDir  string
	dbName  string
	log     *slog.Logger
	stop    context.CancelFunc
	wg      sync.WaitGroup
	serveMu sync.Mutex
	err     error
	done    chan struct{}
	closed  bool
}

// Start opens the store, builds the service and API, and serves HTTP in
// the background until Close or Shutdown. ctx bounds the startup only.
//
// It returns an error wrapping ErrPostgres when a postgres:// DB cannot be
// opened, one wrapping a *service.MasterKeyError (service.ErrMasterKey)
// when the master keyring does not open the secrets sealed in the store (or
// none was given for a store that holds some), an error wrapping service.ErrInvalid for
// bad service options, or the error of opening the database, the temporary
// directory, the key file or the listener.
func Start(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()
	st, err := s.openStore(ctx, opts, log)
	if err != nil {
		return nil, err
	}
	s.st = st
	metrics := api.NewMetrics()
	keys, err := masterKeys(ctx, st, opts, log)
	if err != nil {
		return nil, err
	}
	tokens := opts.SupportTokens
	if len(tokens) == 0 {
		tok, err := NewToken()
		if err != nil {
			return nil, err
		}
		tokens = map[string]string{tok: DefaultOperator}
	}
	s.SupportToken = firstToken(tokens)
	tlsOn := opts.TLSCertFile != "" || opts.TLSKeyFile != ""
	if tlsOn && (opts.TLSCertFile == "" || opts.TLSKeyFile == "") {
		return nil, errors.New("embedded: a TLS certificate needs its key, and a key its certificate")
	}
	var cert tls.Certificate
	if tlsOn {
		if cert, err = tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("embedded: TLS: %w", err)
		}
	}
	ln := opts.Listener
	if ln == nil {
		addr := opts.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	// A listener handed in is closed by Close, also when Start fails.
	s.ln = ln
	s.Addr = ln.Addr().String()
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	s.URL = scheme + "://" + s.Addr
	svc, err := service.New(service.Options{
		Store:                st,
		Metrics:              metrics,
		LoginLimit:           opts.RateLimit.PerAuthenticator,
		Keyring:              keys,
		Policy:               opts.Policy,
		RPID:                 opts.RPID,
		RPOrigins:            origins(opts, scheme, ln.Addr()),
		AttestationRoots:     opts.AttestationRoots,
		AttestationMetadata:  opts.AttestationMetadata,
		AllowNoneAttestation: opts.AllowNoneAttestation,
		SessionTTL:           opts.SessionTTL,
		Now:                  opts.Now,
		Rand:                 opts.Rand,
		Logger:               log,
		Hasher:               opts.Hasher,
		PSKCKey:              opts.PSKCKey,
		PSKCPassphrase:       opts.PSKCPassphrase,
		PSKCAllowPlaintext:   opts.PSKCAllowPlaintext,
	})
	if err != nil {
		return nil, err
	}
	s.Service, s.svc = svc, svc
	s.Handler = api.NewHandler(svc, api.Options{SupportTokens: tokens, Logger: log, Metrics: metrics, RateLimit: opts.RateLimit, Now: opts.Now})
	s.Pages, err = web.New(web.Options{Service: svc, SupportTokens: tokens, Secure: tlsOn, SourceLimit: s.Handler.SourceLimiter(),
		Logger: log, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	var apiH http.Handler = s.Handler
	if opts.Wrap != nil {
		apiH = opts.Wrap(apiH)
	}
	s.srv = &http.Server{
		Handler:           front(apiH, s.Pages),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	every := opts.SweepEvery
	if every <= 0 {
		every = time.Minute
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cpEvery := opts.CheckpointEvery
	if cpEvery == 0 {
		cpEvery = DefaultCheckpointEvery
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		defer close(s.done)
		var err error
		if tlsOn {
			s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveMu.Lock()
		s.err = err
		s.serveMu.Unlock()
	}()
	go func() {
		defer s.wg.Done()
		sweep(bg, st, now, every, log)
	}()
	if cpEvery > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sealEvery(bg, svc, cpEvery, log)
		}()
	}
	ok = true
	s.ln = nil // the HTTP server closes it now
	log.Info("authbench server listening", "url", s.URL, "db", s.dbName)
	return s, nil
}

// masterKeys returns the master keyring for opts (Options.Keyring,
// Options.NewMasterKeyFile) after checking that it opens what st holds
// sealed (service.CheckKeyring). It returns an error wrapping a
// *service.MasterKeyError when it does not, or when a new key would be made
// for a store that holds sealed secrets.
func masterKeys(ctx context.Context, st store.Store, opts Options, log *slog.Logger) (*secrets.Keyring, error) {
	keys := opts.Keyring
	if keys == nil {
		// A new key opens nothing sealed under another: make one only for
		// a store that holds nothing sealed.
		if err := service.CheckKeyring(ctx, st, nil); err != nil {
			return nil, fmt.Errorf("embedded: no master key: %w", err)
		}
		var err error
		if opts.NewMasterKeyFile != "" {
			keys, err = secrets.Create(opts.NewMasterKeyFile, log)
		} else {
			keys, err = secrets.GenerateKeyring(nil)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := service.CheckKeyring(ctx, st, keys); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return keys, nil
}

// Done is closed when the HTTP server stops serving (after Shutdown, or
// when the listener fails); Err then says why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the error that stopped the server, nil after a clean
// shutdown or while it runs.
func (s *Server) Err() error {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	return s.err
}

// Shutdown stops accepting connections, waits for the requests in flight
// until ctx ends, then closes the store and removes a temporary database.
// It returns the error of the HTTP shutdown or of closing the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.serveMu.Lock()
	if s.closed {
		s.serveMu.Unlock()
		return nil
	}
	s.closed = true
	s.serveMu.Unlock()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	s.stop()
	s.wg.Wait()
	s.seal(ctx)
	return errors.Join(err, s.release())
}

// seal writes a last audit checkpoint, so that a clean shutdown leaves no
// record unsealed. It gets at least 5 seconds, whatever is left of ctx.
func (s *Server) seal(ctx context.Context) {
	if s.svc == nil || s.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.svc.SealAudit(ctx, 0); err != nil {
		s.log.Warn("embedded: the audit checkpoint at shutdown failed; the records since the last one are unsealed", "err", err)
	}
}

// sealEvery writes an audit checkpoint every interval until ctx ends. A
// checkpoint another replica wrote less than half an interval ago counts
// as this one's.
func sealEvery(ctx context.Context, svc *service.Service, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := svc.SealAudit(ctx, every/2); err != nil && ctx.Err() == nil {
				log.Warn("embedded: audit checkpoint", "err", err)
			}
		}
	}
}

// Close shuts the server down, giving requests in flight 5 seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// release closes the store and removes the temporary directory.
func (s *Server) release() error {
	var err error
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.st != nil {
		err = s.st.Close()
		s.st = nil
	}
	if s.tmpDir != "" {
		err = errors.Join(err, os.RemoveAll(s.tmpDir))
		s.tmpDir = ""
	}
	return err
}

// sweep deletes expired ceremonies, sessions and lapsed attempts every
// interval until ctx ends.
func sweep(ctx context.Context, st store.Store, now func() time.Time, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := st.SweepCeremonies(ctx, now()); err != nil && ctx.Err() == nil {
				log.Warn("embedded: sweeping ceremonies", "err", err)
			}
			if _, err := st.SweepSessions(ctx, now()); err != nil && ctx.Err() == nil {
				log.Warn("embedded: sweeping sessions", "err", err)
			}
			if _, err := st.SweepAttempts(ctx, now()); err != nil && ctx.Err() == nil {
				log.Warn("embedded: sweeping lapsed attempts", "err", err)
			}
		}
	}
}

// front sends the API's paths (/v1/..., /healthz, /metrics) to the API and
// every other path to the pages.
func front(apiH, pages http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/v1" || strings.HasPrefix(p, "/v1/") || p == "/healthz" || p == "/metrics" {
			apiH.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
}

// origins returns the WebAuthn origins of the service: Options.RPOrigins,
// or, for the default relying party localhost, https://localhost and the
// server's own origin on localhost (a browser that opens
// http://localhost:PORT sends that), so that the pages work out of the
// box. Other RP IDs default to https://RP-ID (service.Options).
func origins(opts Options, scheme string, addr net.Addr) []string {
	if len(opts.RPOrigins) > 0 || opts.RPID != "" && opts.RPID != "localhost" {
		return opts.RPOrigins
	}
	list := []string{"https://localhost"}
	if ta, ok := addr.(*net.TCPAddr); ok {
		o := scheme + "://localhost:" + strconv.Itoa(ta.Port)
		if !(scheme == "https" && ta.Port == 443) && !(scheme == "http" && ta.Port == 80) {
			list = append(list, o)
		} else {
			list = append(list, scheme+"://localhost")
		}
	}
	return list
}

// NewToken returns a new random support token (32 bytes, unpadded
// base64url).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func firstToken(tokens map[string]string) string {
	first := ""
	for t := range tokens {
		if first == "" || t < first {
			first = t
		}
	}
	return first
}

// openStore opens the store opts.DB names: PostgreSQL for a postgres://
// URL, else SQLite (in a temporary directory when DB is empty). It sets
// s.tmpDir and s.dbName (for the log, without a password).
func (s *Server) openStore(ctx context.Context, opts Options, log *slog.Logger) (store.Store, error) {
	if IsPostgresURL(opts.DB) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, postgresOpenTimeout)
			defer cancel()
		}
		s.dbName = "postgresql"
		st, err := postgres.Open(ctx, opts.DB, postgres.Options{Chain: service.Chain{}, Now: opts.Now, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPostgres, err)
		}
		return st, nil
	}
	path := opts.DB
	s.dbName = path
	if path == "" {
		dir, err := os.MkdirTemp("", "authbench-server-")
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		s.tmpDir = dir
		s.dbName = "temporary"
		path = filepath.Join(dir, "authbench.db")
	}
	if path != ":memory:" {
		// The database holds sealed secrets and verifiers: create it
		// readable by its owner only (SQLite gives its -wal and -shm
		// files the same mode). An empty file is an empty database.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		}
	}
	st, err := sqlite.Open(ctx, path, sqlite.Options{Chain: service.Chain{}, Now: opts.Now, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("embedded: store: %w", err)
	}
	return st, nil
}
