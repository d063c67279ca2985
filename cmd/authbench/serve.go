package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/alecthomas/kong"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

// serveCmd is `authbench serve`. Every setting comes from its flag, else
// its environment variable, else the --config file, else the default.
// Secrets come only from files or the environment.
type serveCmd struct {
	Config               kong.ConfigFlag `placeholder:"FILE" help:"JSON file of settings whose keys are the long flag names, such as {\"addr\": \"0.0.0.0:8080\", \"log-level\": \"debug\"}; flags and environment variables win over it."`
	Addr                 string          `default:"127.0.0.1:8080" env:"AUTHBENCH_ADDR" placeholder:"HOST:PORT" help:"Address to listen on (port 0 picks a free one)."`
	DB                   string          `default:"./authbench.db" env:"AUTHBENCH_DB" placeholder:"FILE|URL" help:"SQLite database file (created if missing), or the postgres://USER:PASSWORD@HOST/DB URL of a PostgreSQL database that several servers share."`
	MasterKey            string          `default:"./authbench-master.key" env:"AUTHBENCH_MASTER_KEY_FILE" placeholder:"FILE" help:"Master key file that seals OTP secrets; created on the first run, and only while the store holds nothing sealed (back it up!); a missing or wrong key for a store with sealed secrets stops the start. $AUTHBENCH_MASTER_KEY, holding the key itself, overrides it."`
	SupportTokenFile     string          `default:"./authbench-support-tokens" env:"AUTHBENCH_SUPPORT_TOKEN_FILE" placeholder:"FILE" help:"File of support tokens, one \"operator-id token\" per line; created with one random token when missing."`
	RPID                 string          `name:"rp-id" default:"localhost" env:"AUTHBENCH_RP_ID" placeholder:"DOMAIN" help:"WebAuthn relying party ID (a domain)."`
	Origin               string          `env:"AUTHBENCH_ORIGIN" placeholder:"ORIGIN[,ORIGIN...]" help:"WebAuthn origins accepted in client data, comma separated, such as http://localhost:8080 (default: https://RP-ID; for the RP ID localhost also the server's own http(s)://localhost:PORT, so the pages work out of the box)."`
	AttestationRoots     string          `env:"AUTHBENCH_ATTESTATION_ROOTS" placeholder:"PEM-FILE" help:"CA certificates a chip's attestation must chain to; without them no chip is trusted (testdata/attestation/ca.pem trusts simulated chips)."`
	AllowNoneAttestation bool            `env:"AUTHBENCH_ALLOW_NONE_ATTESTATION" help:"Accept chips without a trusted attestation (recorded as untrusted); for development only."`
	PSKCKeyFile          string          `name:"pskc-key-file" env:"AUTHBENCH_PSKC_KEY_FILE" placeholder:"FILE" help:"File holding, in hex, the pre-shared AES key that protects imported PSKC documents (RFC 6030 §6.1). $AUTHBENCH_PSKC_KEY may hold the hex instead."`
	PSKCPassphraseFile   string          `name:"pskc-passphrase-file" env:"AUTHBENCH_PSKC_PASSPHRASE_FILE" placeholder:"FILE" help:"File whose first line is the passphrase of PBKDF2-protected PSKC documents (RFC 6030 §6.2). $AUTHBENCH_PSKC_PASSPHRASE may hold it instead."`
	PSKCAllowPlaintext   bool            `name:"pskc-allow-plaintext" env:"AUTHBENCH_PSKC_ALLOW_PLAINTEXT" help:"Accept PSKC documents whose secrets are in the clear (PlainValue, RFC 6030 §4.2); for test documents only: whoever saw such a document knows the secrets. Without it they are refused (400 pskc_invalid)."`
	Argon2MemoryBudget   uint64          `name:"argon2-memory-budget" default:"${argon2_budget}" env:"AUTHBENCH_ARGON2_MEMORY_BUDGET" placeholder:"MiB" help:"MiB of memory that password and PIN hashes (argon2id, 19 MiB each) may hold at once; a request that finds no room within --argon2-wait is answered 503 busy with Retry-After."`
	Argon2Wait           time.Duration   `name:"argon2-wait" default:"${argon2_wait}" env:"AUTHBENCH_ARGON2_WAIT" placeholder:"DURATION" help:"How long a password or PIN hash waits for room under --argon2-memory-budget before the request is answered 503 busy (0: at once; at most 20s)."`
	Argon2               argon2Flag      `name:"argon2" default:"${argon2_params}" env:"AUTHBENCH_ARGON2" placeholder:"m=KiB,t=N,p=N" help:"argon2id parameters of new password and PIN verifiers (the default is the first setting of the OWASP Password Storage Cheat Sheet); a verifier made with others is rehashed at its next right login. Cheaper ones, such as m=64,t=1,p=1, protect nothing and are for load tests only (authbench load runs its PostgreSQL replicas with its --argon2)."`
	LoginLimitSource     rateFlag        `env:"AUTHBENCH_LOGIN_LIMIT_SOURCE" placeholder:"BURST/EVERY" help:"Login and activation requests allowed per client address, such as 60/100ms (the default), or off."`
	LoginLimitAuth       rateFlag        `name:"login-limit-authenticator" aliases:"login-limit-identity" env:"AUTHBENCH_LOGIN_LIMIT_AUTHENTICATOR,AUTHBENCH_LOGIN_LIMIT_IDENTITY" placeholder:"BURST/EVERY" help:"Checks of one authenticator's secret allowed, per identity and authenticator once they are known to exist, such as 30/200ms (the default), or off; a refused request is not a failed attempt. (--login-limit-identity is its former name.)"`
	TLSCert              string          `name:"tls-cert" env:"AUTHBENCH_TLS_CERT" placeholder:"PEM-FILE" help:"Serve HTTPS with this certificate (and --tls-key); the pages' cookies are then Secure. Without it the server speaks plain HTTP (http://localhost is a secure context for WebAuthn)."`
	TLSKey               string          `name:"tls-key" env:"AUTHBENCH_TLS_KEY" placeholder:"PEM-FILE" help:"The private key of --tls-cert."`
	Demo                 bool            `help:"Serve the pages for a first look: a throw-away database with a ready-made person (user ID, password, and a simulated code display whose codes are printed here), any security key accepted; --db, --master-key and --support-token-file are not used."`
	LogLevel             string          `default:"info" enum:"debug,info,warn,error" env:"AUTHBENCH_LOG_LEVEL" help:"Log level on stderr."`
	CPUProfile           string          `name:"cpu-profile" type:"path" env:"AUTHBENCH_CPU_PROFILE" placeholder:"FILE" help:"Write a CPU profile of this server to FILE (go tool pprof), from the start until it shuts down; for measuring, such as authbench load's PostgreSQL replicas (its --cpu-profile passes it on)."`
	GCHeadroom           gcHeadroomFlag  `name:"gc-headroom" default:"argon2" env:"AUTHBENCH_GC_HEADROOM" placeholder:"MiB|argon2|off" help:"${gc_headroom_help}"`
	AuditCheckpointEvery time.Duration   `name:"audit-checkpoint-every" default:"${checkpoint_every}" env:"AUTHBENCH_AUDIT_CHECKPOINT_EVERY" placeholder:"DURATION" help:"How often the heads of the audit chains are sealed in a MACed checkpoint (and once more at shutdown); records newer than the last checkpoint could be cut without audit verify noticing."`
}

func (*serveCmd) runsUntilInterrupted() {}

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

func (r *rateFlag) UnmarshalText(b []byte) error {
	v := string(b)
	if v == "off" {
		*r = rateFlag{Every: -1}
		return nil
	}
	bs, e, ok := strings.Cut(v, "/")
	burst, err := strconv.Atoi(bs)
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

func (c *serveCmd) Run(ctx context.Context, e *env) error {
	cfg := *c
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel)}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if cfg.Demo {
		return cfg.runDemo(ctx, e, log)
	}
	opts, err := serveOptions(cfg, log)
	if err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	defer cfg.GCHeadroom.start(cfg.Argon2MemoryBudget<<10, log)()
	opts.Wrap = e.wrapAPI
	srv, err := embedded.Start(ctx, opts)
	if errors.Is(err, service.ErrMasterKey) {
		return masterKeyHelp(err, cfg.MasterKey, redactURL(cfg.DB), os.Getenv(secrets.EnvVar) != "", opts.Keyring == nil)
	}
	if err != nil {
		if errors.Is(err, embedded.ErrPostgres) {
			// The URL is not in err: pgx names the host, user and
			// database, never the password.
			return fmt.Errorf("--db %s: %w", redactURL(cfg.DB), err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "authbench server listening on %s\n", srv.URL)
	fmt.Fprintf(e.stdout, "pages: %s/ (self-service) and %s/support (support console)\n", pagesURL(srv.URL), pagesURL(srv.URL))
	fmt.Fprintf(e.stdout, "support tokens: %s\n", cfg.SupportTokenFile)
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
func serveOptions(cfg serveCmd, log *slog.Logger) (embedded.Options, error) {
	o := embedded.Options{
		Addr:                 cfg.Addr,
		DB:                   cfg.DB,
		RPID:                 cfg.RPID,
		AllowNoneAttestation: cfg.AllowNoneAttestation,
		Logger:               log,
		RateLimit:            api.RateLimit{PerSource: api.Rate(cfg.LoginLimitSource), PerAuthenticator: api.Rate(cfg.LoginLimitAuth)},
		TLSCertFile:          cfg.TLSCert,
		TLSKeyFile:           cfg.TLSKey,
		CheckpointEvery:      cfg.AuditCheckpointEvery,
	}
	if cfg.AuditCheckpointEvery <= 0 {
		return o, usageError{errors.New("--audit-checkpoint-every: a positive duration such as 1m")}
	}
	key, err := pskcKey(cfg.PSKCKeyFile, os.Getenv(pskcKeyEnv))
	if err != nil {
		return o, err
	}
	o.PSKCKey = key
	if o.PSKCAllowPlaintext = cfg.PSKCAllowPlaintext; o.PSKCAllowPlaintext {
		log.Warn("PSKC documents with secrets in the clear are accepted (--pskc-allow-plaintext): for test documents only")
	}
	if o.PSKCPassphrase, err = pskcPassphrase(cfg.PSKCPassphraseFile, os.Getenv(pskcPassphraseEnv)); err != nil {
		return o, err
	}
	if cfg.Argon2MemoryBudget == 0 || cfg.Argon2MemoryBudget > 1<<20 {
		return o, usageError{fmt.Errorf("--argon2-memory-budget %d: give 1 to %d MiB", cfg.Argon2MemoryBudget, 1<<20)}
	}
	if cfg.Argon2Wait < 0 || cfg.Argon2Wait > maxArgon2Wait {
		return o, usageError{fmt.Errorf("--argon2-wait %v: give 0 to %v, so that a waiting request is still answered within the server's write timeout", cfg.Argon2Wait, maxArgon2Wait)}
	}
	o.Hasher = cfg.Argon2.params()
	if cfg.Argon2.weaker() {
		log.Warn("argon2id parameters below the default: password and PIN verifiers are cheap to guess (for load tests only)", "argon2id", o.Hasher.String(), "default", secrets.DefaultParams().String())
	}
	lim := secrets.NewLimiter(cfg.Argon2MemoryBudget<<10, cfg.Argon2Wait)
	secrets.SetLimiter(lim)
	log.Info("password and PIN hashing bounded", "argon2id", o.Hasher.String(), "argon2id_memory_budget_mib", cfg.Argon2MemoryBudget,
		"concurrent_hashes", lim.Slots(o.Hasher.Memory), "wait", cfg.Argon2Wait)
	if cfg.DB == "" {
		return o, usageError{errors.New("--db: a database file or postgres:// URL is needed")}
	}
	o.RPOrigins = splitOrigins(cfg.Origin)
	if id := cfg.RPID; id == "" || strings.ContainsAny(id, "/: ") {
		return o, usageError{fmt.Errorf("--rp-id %q: a relying party ID is a domain such as localhost or example.com", id)}
	}
	if cfg.AttestationRoots != "" {
		pem, err := os.ReadFile(cfg.AttestationRoots)
		if err != nil {
			return o, fmt.Errorf("--attestation-roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("--attestation-roots %s: no PEM certificate in it", cfg.AttestationRoots)
		}
		o.AttestationRoots = pool
	} else if !cfg.AllowNoneAttestation {
		log.Warn("no --attestation-roots: no chip will be trusted, so no chip can be added (give a CA file, or --allow-none-attestation for development)")
	}
	// A missing key file is made by embedded.Start, and only for a store
	// that holds nothing sealed.
	keys, err := secrets.Load(cfg.MasterKey, os.Getenv(secrets.EnvVar), log)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o.NewMasterKeyFile = cfg.MasterKey
	case err != nil:
		return o, err
	default:
		o.Keyring = keys
	}
	tokens, created, err := loadSupportTokens(cfg.SupportTokenFile)
	if err != nil {
		return o, err
	}
	if created {
		log.Warn("created a support token file with one random token; keep it secret", "path", cfg.SupportTokenFile, "operator", embedded.DefaultOperator)
	}
	o.SupportTokens = tokens
	return o, nil
}

// splitOrigins splits the comma-separated --origin.
func splitOrigins(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// minTokenLen and maxTokenLen bound the support tokens accepted from a
// file; bearerToken is their form, the b64token of RFC 6750 §2.1 that the
// API's contract states for bearer tokens.
const (
	minTokenLen = 16
	maxTokenLen = 256
)

var bearerToken = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// loadSupportTokens reads a support token file: one "operator-id token"
// per line, blank lines and lines starting with # ignored. A missing file
// is created (mode 0600) with one random token for the operator
// "support"; created reports that.
func loadSupportTokens(path string) (tokens map[string]string, created bool, err error) {
	if path == "" {
		return nil, false, usageError{errors.New("--support-token-file: a file is needed")}
	}
	data, err := readSecretFile("--support-token-file", path)
	defer clear(data)
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
		return nil, false, err
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
		if !bearerToken.MatchString(f[1]) || len(f[1]) > maxTokenLen {
			return nil, false, fmt.Errorf("--support-token-file %s line %d: a token is at most %d letters, digits and - . _ ~ + /, then optional = (RFC 6750 b64token, as the API's contract says)", path, n, maxTokenLen)
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

// startCPUProfile writes a CPU profile of the process to path until stop
// is called (the --cpu-profile of serve and load).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
