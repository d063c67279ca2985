package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "run the authbench server: HTTP JSON API over an SQLite or PostgreSQL store",
		usage:   "[--addr HOST:PORT] [--db FILE|postgres://URL] [--master-key FILE] [--support-token-file FILE] [--attestation-roots PEM] [flags]",
		run:     runServe,
	})
}

// serveConfig is what `authbench serve` was asked to run.
type serveConfig struct {
	addr, db, masterKey, tokenFile string
	rpID, origin, roots            string
	allowNone                      bool
	pskcKey                        hexFlag
	pskcPass                       string
	logLevel                       string
	limitSource, limitIdentity     rateFlag
	checkpointEvery                time.Duration
}

// rateFlag is a login rate limit written BURST/EVERY ("30/200ms": bursts
// of 30, then one every 200 ms), or "off". The zero value keeps the
// server's default.
type rateFlag api.Rate

func (r *rateFlag) String() string {
	switch {
	case r.Burst == 0 && r.Every == 0:
		return ""
	case r.Every < 0:
		return "off"
	}
	return fmt.Sprintf("%d/%v", r.Burst, r.Every)
}

func (r *rateFlag) Set(v string) error {
	if v == "off" {
		*r = rateFlag{Every: -1}
		return nil
	}
	b, e, ok := strings.Cut(v, "/")
	burst, err := strconv.Atoi(b)
	if !ok || err != nil || burst < 1 {
		return fmt.Errorf("want BURST/EVERY such as 30/200ms, or off")
	}
	every, err := time.ParseDuration(e)
	if err != nil || every <= 0 {
		return fmt.Errorf("want BURST/EVERY such as 30/200ms, or off")
	}
	*r = rateFlag{Burst: burst, Every: every}
	return nil
}

func runServe(ctx context.Context, e *env, args []string) error {
	c := commands["serve"]
	fs := newFlags(c, e)
	var cfg serveConfig
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (port 0 picks a free one)")
	fs.StringVar(&cfg.db, "db", "./authbench.db", "SQLite database `FILE` (created if missing), or the postgres://USER:PASSWORD@HOST/DB URL of a PostgreSQL database that several servers share")
	fs.StringVar(&cfg.masterKey, "master-key", "./authbench-master.key", "master key `FILE` that seals OTP secrets; created on the first run (back it up!). $"+secrets.EnvVar+" overrides it")
	fs.StringVar(&cfg.tokenFile, "support-token-file", "./authbench-support-tokens", "`FILE` of support tokens, one \"operator-id token\" per line; created with one random token when missing")
	fs.StringVar(&cfg.rpID, "rp-id", "localhost", "WebAuthn relying party `ID` (a domain)")
	fs.StringVar(&cfg.origin, "origin", "", "WebAuthn `ORIGIN`s accepted in client data, comma separated (default https://RP-ID)")
	fs.StringVar(&cfg.roots, "attestation-roots", "", "`PEM` file of the CA certificates a chip's attestation must chain to; without it no chip is trusted (e.g. testdata/attestation/ca.pem trusts simulated chips)")
	fs.BoolVar(&cfg.allowNone, "allow-none-attestation", false, "accept chips without a trusted attestation (recorded as untrusted); for development only")
	fs.Var(&cfg.pskcKey, "pskc-key", "pre-shared AES key, in `HEX`, that protects imported PSKC documents (RFC 6030 §6.1)")
	fs.StringVar(&cfg.pskcPass, "pskc-passphrase", "", "`PASSPHRASE` of PBKDF2-protected PSKC documents (RFC 6030 §6.2); $AUTHBENCH_PSKC_PASSPHRASE works too and is not visible to other users")
	fs.Var(&cfg.limitSource, "login-limit-source", "login requests allowed per client address, as `BURST/EVERY` (default 60/100ms), or off")
	fs.Var(&cfg.limitIdentity, "login-limit-identity", "login requests allowed per identity, as `BURST/EVERY` (default 30/200ms), or off; a refused request is not a failed attempt")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log `LEVEL` on stderr: debug, info, warn or error")
	fs.DurationVar(&cfg.checkpointEvery, "audit-checkpoint-every", embedded.DefaultCheckpointEvery, "seal the audit chains' heads in a MACed checkpoint this often (`DURATION`), and at shutdown; records newer than the last checkpoint can be cut without `audit verify` noticing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.logLevel)}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	opts, err := serveOptions(cfg, log)
	if err != nil {
		return err
	}
	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		if errors.Is(err, embedded.ErrPostgres) {
			// The URL is not in err: pgx names the host, user and
			// database, never the password.
			return fmt.Errorf("--db %s: %w", redactURL(cfg.db), err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "authbench server listening on %s\n", srv.URL)
	fmt.Fprintf(e.stdout, "support tokens: %s\n", cfg.tokenFile)
	select {
	case <-ctx.Done():
	case <-srv.Done():
	}
	fmt.Fprintln(e.stderr, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := srv.Err()
	return errors.Join(serr, srv.Shutdown(sctx))
}

// serveOptions turns the command line into the server's options: it loads
// (or creates) the master key and the support tokens and reads the trust
// roots.
func serveOptions(cfg serveConfig, log *slog.Logger) (embedded.Options, error) {
	o := embedded.Options{
		Addr:                 cfg.addr,
		DB:                   cfg.db,
		RPID:                 cfg.rpID,
		AllowNoneAttestation: cfg.allowNone,
		PSKCKey:              cfg.pskcKey,
		PSKCPassphrase:       cfg.pskcPass,
		Logger:               log,
		RateLimit:            api.RateLimit{PerSource: api.Rate(cfg.limitSource), PerIdentity: api.Rate(cfg.limitIdentity)},
		CheckpointEvery:      cfg.checkpointEvery,
	}
	if cfg.checkpointEvery <= 0 {
		return o, usageError{errors.New("--audit-checkpoint-every: a positive duration such as 1m")}
	}
	if o.PSKCPassphrase == "" {
		o.PSKCPassphrase = os.Getenv("AUTHBENCH_PSKC_PASSPHRASE")
	}
	if n := len(cfg.pskcKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return o, usageError{fmt.Errorf("--pskc-key: an AES key has 16, 24 or 32 bytes, not %d", n)}
	}
	if cfg.db == "" {
		return o, usageError{errors.New("--db: a database file or postgres:// URL is needed")}
	}
	if cfg.origin != "" {
		for _, s := range strings.Split(cfg.origin, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.RPOrigins = append(o.RPOrigins, s)
			}
		}
	}
	if id := cfg.rpID; id == "" || strings.ContainsAny(id, "/: ") {
		return o, usageError{fmt.Errorf("--rp-id %q: a relying party ID is a domain such as localhost or example.com", id)}
	}
	if cfg.roots != "" {
		pem, err := os.ReadFile(cfg.roots)
		if err != nil {
			return o, fmt.Errorf("--attestation-roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("--attestation-roots %s: no PEM certificate in it", cfg.roots)
		}
		o.AttestationRoots = pool
	} else if !cfg.allowNone {
		log.Warn("no --attestation-roots: no chip will be trusted, so no chip can be added (give a CA file, or --allow-none-attestation for development)")
	}
	keys, err := secrets.LoadOrCreate(cfg.masterKey, os.Getenv(secrets.EnvVar), log)
	if err != nil {
		return o, err
	}
	o.Keyring = keys
	tokens, created, err := loadSupportTokens(cfg.tokenFile)
	if err != nil {
		return o, err
	}
	if created {
		log.Warn("created a support token file with one random token; keep it secret", "path", cfg.tokenFile, "operator", embedded.DefaultOperator)
	}
	o.SupportTokens = tokens
	return o, nil
}

// minTokenLen is the shortest support token accepted from a file.
const minTokenLen = 16

// loadSupportTokens reads a support token file: one "operator-id token"
// per line, blank lines and lines starting with # ignored. A missing file
// is created (mode 0600) with one random token for the operator
// "support"; created reports that.
func loadSupportTokens(path string) (tokens map[string]string, created bool, err error) {
	if path == "" {
		return nil, false, usageError{errors.New("--support-token-file: a file is needed")}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		tok, err := embedded.NewToken()
		if err != nil {
			return nil, false, err
		}
		content := "# authbench support tokens: one \"operator-id token\" per line. Keep this file secret.\n" +
			embedded.DefaultOperator + " " + tok + "\n"
		if err := writeNew(path, []byte(content)); err != nil {
			return nil, false, fmt.Errorf("--support-token-file: %w", err)
		}
		return map[string]string{tok: embedded.DefaultOperator}, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("--support-token-file: %w", err)
	}
	tokens = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, false, fmt.Errorf("--support-token-file %s line %d: want \"operator-id token\"", path, n)
		}
		if err := service.CheckID("the operator ID", f[0]); err != nil {
			return nil, false, fmt.Errorf("--support-token-file %s line %d: %v", path, n, err)
		}
		if len(f[1]) < minTokenLen {
			return nil, false, fmt.Errorf("--support-token-file %s line %d: a token needs at least %d characters", path, n, minTokenLen)
		}
		if _, dup := tokens[f[1]]; dup {
			return nil, false, fmt.Errorf("--support-token-file %s line %d: the same token twice", path, n)
		}
		tokens[f[1]] = f[0]
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("--support-token-file %s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, false, fmt.Errorf("--support-token-file %s holds no token", path)
	}
	return tokens, false, nil
}

// writeNew creates path with mode 0600 (its directory with 0700) and
// writes data, failing if the file exists.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
			return s[:scheme+3] + "…" + s[at:]
		}
	}
	return s
}
