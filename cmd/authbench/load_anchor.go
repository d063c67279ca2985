package main

// The anchors of `authbench load`: what this machine can do at all,
// measured in the same run as the scenarios, so that the scenarios are
// judged as ratios. Raw crypto (ECDSA P-256 verify, argon2id,
// TOTP), and the minimal durable login: a login written by hand as small as
// it can be while doing what a login cannot skip.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store/sqlite"
)

// rawAnchors is the raw cryptography of the machine, measured in the same
// run with one goroutine per GOMAXPROCS.
type rawAnchors struct {
	Goroutines        int     `json:"goroutines"`
	Seconds           float64 `json:"seconds_each"`
	ECDSAVerifyPerSec float64 `json:"ecdsa_p256_verify_per_s"`
	Argon2Params      string  `json:"argon2id_params"`
	Argon2PerSec      float64 `json:"argon2id_per_s"`
	TOTPVerifyPerSec  float64 `json:"totp_verify_per_s"` // HMAC-SHA1, 6 digits, one step of skew either way
}

// measureRaw measures the raw anchors for d each: ECDSA P-256
// verifications of a 32-byte digest, argon2id hashes of a password with
// params, and RFC 6238 TOTP verifications (HMAC-SHA1, skew 1: up to three
// HMACs).
func measureRaw(ctx context.Context, d time.Duration, params secrets.Params, goroutines int) (*rawAnchors, error) {
	r := &rawAnchors{Goroutines: goroutines, Seconds: d.Seconds(), Argon2Params: params.String()}
	var err error
	if r.ECDSAVerifyPerSec, err = rawECDSA(ctx, d, goroutines); err != nil {
		return nil, err
	}
	if r.Argon2PerSec, err = rawArgon2(ctx, d, params, goroutines); err != nil {
		return nil, err
	}
	secret := sha256.Sum256([]byte("authbench load anchor"))
	t := &otp.TOTP{Secret: secret[:20]}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	code, _, err := t.At(at)
	if err != nil {
		return nil, err
	}
	if r.TOTPVerifyPerSec, err = opsPerSecond(ctx, d, goroutines, func() bool {
		_, err := t.Verify(code, at, 1, 0)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("load: TOTP anchor: %w", err)
	}
	return r, nil
}

// rawECDSA measures ECDSA P-256 verifications per second.
func rawECDSA(ctx context.Context, d time.Duration, goroutines int) (float64, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	h := sha256.Sum256([]byte("authenticator data and client data hash"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		return 0, err
	}
	v, err := opsPerSecond(ctx, d, goroutines, func() bool { return ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) })
	if err != nil {
		return 0, fmt.Errorf("load: ECDSA anchor: %w", err)
	}
	return v, nil
}

// rawArgon2 measures argon2id hashes per second with params (what a
// password check costs: one hash and a constant-time comparison).
func rawArgon2(ctx context.Context, d time.Duration, params secrets.Params, goroutines int) (float64, error) {
	salt := make([]byte, params.SaltLen)
	want := argon2.IDKey([]byte(loadPassword), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	v, err := opsPerSecond(ctx, d, goroutines, func() bool {
		got := argon2.IDKey([]byte(loadPassword), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
		return subtle.ConstantTimeCompare(got, want) == 1
	})
	if err != nil {
		return 0, fmt.Errorf("load: argon2id anchor: %w", err)
	}
	return v, nil
}

// opsPerSecond runs op on workers goroutines for d and returns how many
// times per second it ran. It fails when op reports false.
func opsPerSecond(ctx context.Context, d time.Duration, workers int, op func() bool) (float64, error) {
	var total atomic.Int64
	var bad atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			n := int64(0)
			defer func() { total.Add(n) }()
			for ctx.Err() == nil && !bad.Load() {
				if !op() {
					bad.Store(true)
					return
				}
				n++
				if time.Now().After(deadline) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bad.Load() {
		return 0, errors.New("the operation failed")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

// anchorServer is the minimal durable login: the login of the scenarios
// (password, then the second factor chosen, then its proof) with nothing
// but what a login cannot do without, written by hand:
//
//   - the same HTTP round trips (login/password → login/second →
//     login/finish), JSON over kept-alive loopback connections, with no
//     middleware;
//   - the same crypto: argon2id of the password with the load's
//     parameters and a constant-time comparison; for a chip an ECDSA P-256
//     verification of the assertion (over the authenticator data and the
//     hash of the client data, whose challenge must be the one handed
//     out); for a code an RFC 6238 verification (one step of skew) above
//     the highest step used;
//   - one durable write: the session row, group-committed into SQLite
//     (WAL, synchronous=FULL, as the store) or committed into PostgreSQL.
//
// Identities, their verifiers and keys, and the ceremonies are in memory;
// it audits nothing, counts no failures and has no rate limits.
type anchorServer struct {
	URL    string
	params secrets.Params
	now    func() time.Time
	w      durableWriter
	srv    *http.Server
	done   chan struct{}

	usersMu sync.RWMutex
	users   map[string]*anchorUser

	cerMu      sync.Mutex
	ceremonies map[string]*anchorCeremony
}

type anchorUser struct {
	salt, hash []byte
	chipKey    *ecdsa.PublicKey
	credID     []byte
	totp       *otp.TOTP
	mu         sync.Mutex // lastStep
	lastStep   uint64
}

type anchorCeremony struct {
	user      string
	stage     int    // 1 after the password, 2 after the choice of the second factor
	factor    string // "chip" or "code", at stage 2
	challenge []byte // chip, stage 2
	expires   time.Time
}

// startAnchor serves the minimal durable login on a loopback port,
// writing sessions with w.
func startAnchor(params secrets.Params, now func() time.Time, w durableWriter) (*anchorServer, error) {
	if now == nil {
		now = time.Now
	}
	a := &anchorServer{params: params, now: now, w: w, users: map[string]*anchorUser{}, ceremonies: map[string]*anchorCeremony{}, done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("load: the minimal durable login: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/{id}/password", a.password)
	mux.HandleFunc("POST /login/{id}/second", a.second)
	mux.HandleFunc("POST /login/{id}/finish", a.finish)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	a.URL = "http://" + ln.Addr().String()
	go func() {
		defer close(a.done)
		a.srv.Serve(ln)
	}()
	return a, nil
}

// close stops serving and closes the writer.
func (a *anchorServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	<-a.done
	return errors.Join(err, a.w.close())
}

// addUser gives identity id the load password (hashed with the anchor's
// parameters), and optionally a chip (registered now: the chip makes a
// credential for the anchor) and a TOTP secret.
func (a *anchorServer) addUser(ctx context.Context, id string, chip device.Chip, totp *otp.TOTP) error {
	u := &anchorUser{salt: make([]byte, a.params.SaltLen), totp: totp}
	if _, err := rand.Read(u.salt); err != nil {
		return err
	}
	u.hash = argon2.IDKey([]byte(loadPassword), u.salt, a.params.Time, a.params.Memory, a.params.Threads, a.params.KeyLen)
	if chip != nil {
		challenge := make([]byte, 32)
		rand.Read(challenge)
		opts := &client.CreationOptions{
			Challenge:        webauthn.Encode(challenge),
			RP:               webauthn.RPEntity{ID: loadRPID, Name: "authbench load anchor"},
			User:             webauthn.UserEntity{ID: webauthn.Encode([]byte(id)), Name: id, DisplayName: id},
			PubKeyCredParams: []webauthn.CredentialParameter{{Type: ctap2.CredentialTypePublicKey, Alg: webauthn.AlgES256}},
			Attestation:      "none",
		}
		reg, err := client.ChipRegistration(ctx, chip, opts, loadOrigin)
		if err != nil {
			return fmt.Errorf("load: the chip of %s for the minimal durable login: %w", id, err)
		}
		raw, err := webauthn.Decode("attestationObject", reg.Response.AttestationObject)
		if err != nil {
			return err
		}
		obj, err := webauthn.ParseAttestationObject(raw)
		if err != nil {
			return err
		}
		ad, err := ctap2.ParseAuthData(obj.AuthData)
		if err != nil {
			return err
		}
		if ad.AttestedCredential == nil {
			return errors.New("load: the chip's registration holds no credential")
		}
		pub, err := ctap2.ParsePublicKey(ad.AttestedCredential.PublicKey)
		if err != nil {
			return err
		}
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("load: the chip's credential key is a %T, not ECDSA", pub)
		}
		u.chipKey, u.credID = ek, ad.AttestedCredential.CredentialID
	}
	a.usersMu.Lock()
	a.users[id] = u
	a.usersMu.Unlock()
	return nil
}

func (a *anchorServer) user(id string) *anchorUser {
	a.usersMu.RLock()
	defer a.usersMu.RUnlock()
	return a.users[id]
}

// The bodies of the minimal durable login.
type (
	anchorPasswordReq struct {
		Password string `json:"password"`
	}
	anchorPasswordResp struct {
		Ceremony      string   `json:"ceremony"`
		SecondFactors []string `json:"second_factors"`
	}
	anchorSecondReq struct {
		Ceremony      string `json:"ceremony"`
		Authenticator string `json:"authenticator"` // "chip" or "code"
	}
	anchorSecondResp struct {
		Ceremony  string                 `json:"ceremony"`
		PublicKey *client.RequestOptions `json:"publicKey,omitempty"`
	}
	anchorFinishReq struct {
		Ceremony   string                         `json:"ceremony"`
		Credential *client.AuthenticationResponse `json:"credential,omitempty"`
		Code       string                         `json:"code,omitempty"`
	}
	anchorFinishResp struct {
		Token string `json:"token"`
	}
	anchorErrorResp struct {
		Code string `json:"code"`
	}
)

// ceremonyTTL is how long a ceremony of the minimal durable login lasts.
const ceremonyTTL = 5 * time.Minute

func (a *anchorServer) password(w http.ResponseWriter, r *http.Request) {
	var req anchorPasswordReq
	if !readJSON(w, r, &req) {
		return
	}
	u := a.user(r.PathValue("id"))
	if u == nil {
		writeJSON(w, http.StatusNotFound, anchorErrorResp{"not_found"})
		return
	}
	got := argon2.IDKey([]byte(req.Password), u.salt, a.params.Time, a.params.Memory, a.params.Threads, a.params.KeyLen)
	if subtle.ConstantTimeCompare(got, u.hash) != 1 {
		writeJSON(w, http.StatusUnauthorized, anchorErrorResp{"wrong_password"})
		return
	}
	tok := a.newCeremony(&anchorCeremony{user: r.PathValue("id"), stage: 1})
	resp := anchorPasswordResp{Ceremony: tok, SecondFactors: []string{}}
	if u.chipKey != nil {
		resp.SecondFactors = append(resp.SecondFactors, "chip")
	}
	if u.totp != nil {
		resp.SecondFactors = append(resp.SecondFactors, "code")
	}
	writeJSON(w, http.StatusOK, resp)
}

// step reads the request of a login's step into req, whose ceremony field
// is *ceremony, and takes that ceremony at stage for the identity of the
// path. When the request, the ceremony or the identity is wrong it answers
// and returns a nil ceremony.
func (a *anchorServer) step(w http.ResponseWriter, r *http.Request, req any, ceremony *string, stage int) (string, *anchorCeremony, *anchorUser) {
	if !readJSON(w, r, req) {
		return "", nil, nil
	}
	id := r.PathValue("id")
	c := a.takeCeremony(*ceremony, id, stage)
	u := a.user(id)
	if c == nil || u == nil {
		writeJSON(w, http.StatusBadRequest, anchorErrorResp{"ceremony_invalid"})
		return "", nil, nil
	}
	return id, c, u
}

func (a *anchorServer) second(w http.ResponseWriter, r *http.Request) {
	var req anchorSecondReq
	id, c, u := a.step(w, r, &req, &req.Ceremony, 1)
	switch {
	case c == nil:
		return
	case req.Authenticator == "chip" && u.chipKey != nil:
		next := &anchorCeremony{user: id, stage: 2, factor: "chip", challenge: make([]byte, 32)}
		rand.Read(next.challenge)
		tok := a.newCeremony(next)
		writeJSON(w, http.StatusOK, anchorSecondResp{Ceremony: tok, PublicKey: &client.RequestOptions{
			Challenge:        webauthn.Encode(next.challenge),
			RPID:             loadRPID,
			AllowCredentials: []client.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: webauthn.Encode(u.credID)}},
			UserVerification: "discouraged",
		}})
	case req.Authenticator == "code" && u.totp != nil:
		writeJSON(w, http.StatusOK, anchorSecondResp{Ceremony: a.newCeremony(&anchorCeremony{user: id, stage: 2, factor: "code"})})
	default:
		writeJSON(w, http.StatusNotFound, anchorErrorResp{"not_found"})
	}
}

func (a *anchorServer) finish(w http.ResponseWriter, r *http.Request) {
	var req anchorFinishReq
	id, c, u := a.step(w, r, &req, &req.Ceremony, 2)
	if c == nil {
		return
	}
	switch c.factor {
	case "chip":
		if req.Credential == nil || !a.verifyAssertion(u, c.challenge, &req.Credential.Response) {
			writeJSON(w, http.StatusUnauthorized, anchorErrorResp{"bad_signature"})
			return
		}
	case "code":
		u.mu.Lock()
		m, err := u.totp.Verify(req.Code, a.now(), 1, u.lastStep)
		if err == nil {
			u.lastStep = m.Step
		}
		u.mu.Unlock()
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, anchorErrorResp{"wrong_code"})
			return
		}
	}
	token := make([]byte, 32)
	rand.Read(token)
	h := sha256.Sum256(token)
	if err := a.w.write(r.Context(), h[:], id, c.factor, a.now()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, anchorErrorResp{"store"})
		return
	}
	writeJSON(w, http.StatusOK, anchorFinishResp{Token: base64.RawURLEncoding.EncodeToString(token)})
}

// verifyAssertion checks a chip's assertion: its client data names the
// challenge handed out, and its signature over the authenticator data and
// the client data's hash verifies with the chip's key (WebAuthn Level 3
// §7.2 steps 11-12 and 21, the crypto of them).
func (a *anchorServer) verifyAssertion(u *anchorUser, challenge []byte, r *webauthn.AssertionResponse) bool {
	cdj, err1 := webauthn.Decode("clientDataJSON", r.ClientDataJSON)
	authData, err2 := webauthn.Decode("authenticatorData", r.AuthenticatorData)
	sig, err3 := webauthn.Decode("signature", r.Signature)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	cd, err := webauthn.ParseClientData(cdj)
	if err != nil || cd.Type != "webauthn.get" || cd.Challenge != webauthn.Encode(challenge) {
		return false
	}
	cdh := sha256.Sum256(cdj)
	signed := sha256.Sum256(append(authData, cdh[:]...))
	return ecdsa.VerifyASN1(u.chipKey, signed[:], sig)
}

func (a *anchorServer) newCeremony(c *anchorCeremony) string {
	b := make([]byte, 16)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	c.expires = a.now().Add(ceremonyTTL)
	a.cerMu.Lock()
	a.ceremonies[tok] = c
	a.cerMu.Unlock()
	return tok
}

// takeCeremony removes and returns the ceremony tok of user at stage, nil
// when there is none (or it expired).
func (a *anchorServer) takeCeremony(tok, user string, stage int) *anchorCeremony {
	a.cerMu.Lock()
	c := a.ceremonies[tok]
	delete(a.ceremonies, tok)
	a.cerMu.Unlock()
	if c == nil || c.user != user || c.stage != stage || a.now().After(c.expires) {
		return nil
	}
	return c
}

// readJSON decodes the request body (at most 64 KiB) into v, answering
// 400 when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, anchorErrorResp{"bad_request"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// anchorClient is a client of the minimal durable login.
type anchorClient struct {
	base string
	hc   *http.Client
}

// httpError is an answer of the minimal durable login other than 200.
type httpError struct {
	Status int
	Code   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("the minimal durable login answered %d %s", e.Status, e.Code)
}

func (c *anchorClient) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e anchorErrorResp
		json.Unmarshal(body, &e)
		return &httpError{Status: resp.StatusCode, Code: e.Code}
	}
	return json.Unmarshal(body, out)
}

// login logs identity id in on the minimal durable login: the password,
// the second factor (kind "chip" or "code"), then its proof: the chip's
// assertion, or the code that code returns.
func (c *anchorClient) login(ctx context.Context, rec *recorder, id, kind string, chip device.Chip, code func() string) error {
	var pw anchorPasswordResp
	var next anchorSecondResp
	fin := anchorFinishReq{}
	path := "/login/" + id
	return timedLogin(ctx, rec, loginSteps{
		password: func(ctx context.Context) error {
			return c.post(ctx, path+"/password", anchorPasswordReq{Password: loadPassword}, &pw)
		},
		second: func(ctx context.Context) error {
			if err := c.post(ctx, path+"/second", anchorSecondReq{Ceremony: pw.Ceremony, Authenticator: kind}, &next); err != nil {
				return err
			}
			fin.Ceremony = next.Ceremony
			if kind == "chip" && next.PublicKey == nil {
				return checkFailed("no request options for the chip")
			}
			return nil
		},
		device: func(ctx context.Context) error {
			if kind != "chip" {
				fin.Code = code()
				return nil
			}
			cred, err := client.ChipAssertion(ctx, chip, next.PublicKey, loadOrigin)
			fin.Credential = cred
			return err
		},
		finish: func(ctx context.Context) error {
			var s anchorFinishResp
			if err := c.post(ctx, path+"/finish", fin, &s); err != nil {
				return err
			}
			if s.Token == "" {
				return checkFailed("the login gave no session")
			}
			return nil
		},
	})
}

// loginSteps are the steps of one login, each timed as a phase of its
// own: "password", "second", "device" (the chip signs, or the person reads
// the code: client-side work) and "finish"; "login" is the whole.
type loginSteps struct {
	password, second, device, finish func(ctx context.Context) error
}

// timedLogin runs the steps of a login in order, recording the latency of
// each and of the whole; a failure is returned as a *phaseError.
func timedLogin(ctx context.Context, rec *recorder, s loginSteps) error {
	start := time.Now()
	for _, st := range []struct {
		name string
		f    func(context.Context) error
	}{{"password", s.password}, {"second", s.second}, {"device", s.device}, {"finish", s.finish}} {
		if st.f == nil {
			continue
		}
		t := time.Now()
		if err := st.f(ctx); err != nil {
			return inPhase(st.name, err)
		}
		rec.observe(st.name, time.Since(t))
	}
	rec.observe("login", time.Since(start))
	return nil
}

// durableWriter is the one durable write of the minimal durable login.
type durableWriter interface {
	// write stores a session row and returns once it is durable.
	write(ctx context.Context, tokenHash []byte, identity, factor string, at time.Time) error
	close() error
}

// sqliteGroupCommit writes session rows into an SQLite file in WAL mode
// with synchronous=FULL (every commit syncs the log, as the server's
// store does) through the store's VFS, with group commit: one goroutine takes every write queued
// when it is free, inserts them in one transaction and commits once.
type sqliteGroupCommit struct {
	db   *sql.DB
	ins  *sql.Stmt
	in   chan *pendingWrite
	done chan struct{}
}

type pendingWrite struct {
	token            []byte
	identity, factor string
	at               time.Time
	err              chan error
}

// maxBatch bounds the writes of one group commit.
const maxBatch = 512

func openSQLiteAnchor(ctx context.Context, path string) (*sqliteGroupCommit, error) {
	// Through the VFS the store writes its files with, so the two
	// commits cost the same system calls.
	vfs, err := sqlite.VFS()
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate&vfs="+vfs)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	const schema = `CREATE TABLE IF NOT EXISTS anchor_sessions (
	token_hash BLOB NOT NULL PRIMARY KEY,
	identity   TEXT NOT NULL,
	factor     TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("load: the minimal durable login's SQLite file: %w", err)
	}
	ins, err := db.PrepareContext(ctx, "INSERT INTO anchor_sessions (token_hash, identity, factor, created_at) VALUES (?, ?, ?, ?)")
	if err != nil {
		db.Close()
		return nil, err
	}
	g := &sqliteGroupCommit{db: db, ins: ins, in: make(chan *pendingWrite, maxBatch), done: make(chan struct{})}
	go g.loop()
	return g, nil
}

func (g *sqliteGroupCommit) write(ctx context.Context, token []byte, identity, factor string, at time.Time) error {
	p := &pendingWrite{token: token, identity: identity, factor: factor, at: at, err: make(chan error, 1)}
	select {
	case g.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-p.err // once queued, the batch runs to its end
}

func (g *sqliteGroupCommit) loop() {
	defer close(g.done)
	batch := make([]*pendingWrite, 0, maxBatch)
	for first := range g.in {
		batch = append(batch[:0], first)
	more:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-g.in:
				if !ok {
					break more
				}
				batch = append(batch, p)
			default:
				break more
			}
		}
		err := g.commit(batch)
		for _, p := range batch {
			p.err <- err
		}
	}
}

func (g *sqliteGroupCommit) commit(batch []*pendingWrite) error {
	tx, err := g.db.Begin()
	if err != nil {
		return err
	}
	st := tx.Stmt(g.ins)
	for _, p := range batch {
		if _, err := st.Exec(p.token, p.identity, p.factor, p.at.UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (g *sqliteGroupCommit) close() error {
	close(g.in)
	<-g.done
	return errors.Join(g.ins.Close(), g.db.Close())
}

// pgCommit writes each session row in a transaction of its own (one
// commit, which PostgreSQL makes durable before it answers:
// synchronous_commit on), on a pool of connections as large as one
// server's store.
type pgCommit struct {
	conns chan *pgx.Conn
	all   []*pgx.Conn
}

func openPGAnchor(ctx context.Context, url string, n int) (*pgCommit, error) {
	p := &pgCommit{conns: make(chan *pgx.Conn, n)}
	for range n {
		c, err := connectPG(ctx, url)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("load: the minimal durable login's PostgreSQL connection: %w", err)
		}
		p.all = append(p.all, c)
		p.conns <- c
	}
	const schema = `CREATE TABLE IF NOT EXISTS anchor_sessions (
	token_hash BYTEA  NOT NULL PRIMARY KEY,
	identity   TEXT   NOT NULL,
	factor     TEXT   NOT NULL,
	created_at BIGINT NOT NULL
)`
	if _, err := p.all[0].Exec(ctx, schema); err != nil {
		p.close()
		return nil, fmt.Errorf("load: the minimal durable login's table: %w", err)
	}
	return p, nil
}

func (p *pgCommit) write(ctx context.Context, token []byte, identity, factor string, at time.Time) error {
	var c *pgx.Conn
	select {
	case c = <-p.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.conns <- c }()
	_, err := c.Exec(ctx, "INSERT INTO anchor_sessions (token_hash, identity, factor, created_at) VALUES ($1, $2, $3, $4)", token, identity, factor, at.UnixNano())
	return err
}

func (p *pgCommit) close() error {
	var errs []error
	for _, c := range p.all {
		errs = append(errs, c.Close(context.Background()))
	}
	return errors.Join(errs...)
}
