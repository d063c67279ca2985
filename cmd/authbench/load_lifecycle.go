package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/chip"
)

// lifecycleResult is the lifecycle scenario: N chips, each of an identity
// of its own, through enroll → login → block → re-add over HTTP, all of
// them measured.
type lifecycleResult struct {
	N               int           `json:"n"`
	Workers         int           `json:"workers"`
	Replicas        int           `json:"replicas"`
	SetupSeconds    float64       `json:"setup_seconds"` // making the chips and their identities, before the clock starts
	Seconds         float64       `json:"seconds"`       // the N lifecycles
	Completed       int64         `json:"completed"`     // chips whose four steps all went through
	ChipsPerSec     float64       `json:"chips_per_s"`
	Phases          []phaseResult `json:"phases"`
	Errors          []errorCount  `json:"errors"`
	Sampled         int           `json:"sampled"`
	OldRefused      int           `json:"old_credential_refused"`
	OldRefusedCodes []string      `json:"old_credential_refused_codes"`
	CheckSeconds    float64       `json:"check_seconds"`
	// CPUMSPerChip is the CPU time (user + system) the load process used
	// during the N lifecycles, per chip: on SQLite the server's and the
	// simulated clients' together, on PostgreSQL the clients' alone. It
	// moves much less than Seconds on a machine other work shares. 0 where
	// it cannot be read.
	CPUMSPerChip float64 `json:"cpu_ms_per_chip,omitempty"`
}

func (c *lifecycleResult) errorCount() int {
	n := 0
	for _, e := range c.Errors {
		n += e.Count
	}
	return n
}

// loadChip is one simulated chip and what the later steps need of what
// the server said about it: the IDs of its first authenticator and
// credential (old) and of its current authenticator (cur, after a re-add
// or the chip-logins enrolment; "" before). The whole answers of 10,000
// chips took 10 MiB of the load process's live heap, which the server's
// garbage collector marked again and again.
type loadChip struct {
	id             string
	c              *chip.Chip
	oldID, oldCred string
	curID          string
}

// setUpChips makes n simulated chips of kind, each for an identity of its
// own with the load password, made on the replicas of f in turn; then more
// (nil: nothing) does the rest of a chip's set-up. It returns the chips
// made (l.closeChips closes them, on an error too) and the seconds it
// took, printing progress as what. The chips are made first, so that
// their live heap is measured and kept out of the server's account
// (excludeClients).
func (l *loader) setUpChips(ctx context.Context, f *fleet, kind, what string, n, creds, workers int, more func(ctx context.Context, i int, lc *loadChip, sup *client.Client) error) ([]*loadChip, float64, error) {
	start := time.Now()
	chips := make([]*loadChip, n)
	err := l.excludeClients(fmt.Sprintf("%d simulated chips", n), n*creds, func() error {
		return forEach(ctx, n, workers, func(ctx context.Context, _, i int) error {
			c, err := newLoadChip(l.seedFor(kind, i))
			if err != nil {
				return &loadError{What: fmt.Sprintf("chip %d", i), Step: "make", Err: err}
			}
			chips[i] = &loadChip{id: fmt.Sprintf("%s-%s-%d", l.tag, kind, i), c: c}
			return nil
		})
	})
	if err != nil {
		return chips, time.Since(start).Seconds(), err
	}
	_, err = l.setUp(ctx, what, n, workers, func(ctx context.Context, i int) error {
		lc := chips[i]
		sup := f.support[i%f.replicas()]
		if err := setUpIdentity(ctx, sup, lc.id); err != nil {
			return &loadError{What: fmt.Sprintf("chip %d (identity %s)", i, lc.id), Step: "create identity", Err: err}
		}
		if more != nil {
			return more(ctx, i, lc, sup)
		}
		return nil
	})
	return chips, time.Since(start).Seconds(), err
}

// newLoadChip makes the simulated chip of a load with seed: a chip of
// its own key pairs, with the batch attestation, that signs
// deterministically (RFC 6979, chip.Options.DeterministicSignatures),
// which costs the load process, and so the server beside it, a third
// less CPU per signature than a random nonce. What the server receives
// and checks is the same: a packed attestation and assertions signed over
// its fresh challenges.
func newLoadChip(seed []byte) (*chip.Chip, error) {
	return chip.New(chip.Options{Seed: seed, DeterministicSignatures: true})
}

// excludeClients runs mk, which makes a scenario's simulated clients
// (what), and when this process paces its garbage collector for the
// server in it, measures how much mk grew the live heap and has the
// pacer count that as the clients', not the server's, until closeChips
// (gcpace.Pacer.Exclude): the headroom is the server's, as it would be in
// a process of its own, and the clients get a room of their size, as
// under Go's default. What the clients gain later, the creds credentials
// they create in all (a key pair and ID each, kept by the chip, and the
// key's form crypto/ecdsa signs with), is counted as well, at the size a
// credential measures on scratch chips (credentialHeap): counting only
// what they held before the run left the server's headroom to pay for
// the chips' growth as they enrolled.
func (l *loader) excludeClients(what string, creds int, mk func() error) error {
	if l.gc == nil {
		return mk()
	}
	before := liveHeapAfterGC()
	if err := mk(); err != nil {
		return err
	}
	var grown uint64
	if after := liveHeapAfterGC(); after > before {
		grown = after - before
	}
	var later uint64
	if creds > 0 {
		per, err := credentialHeap()
		if err != nil {
			return err
		}
		later = per * uint64(creds)
	}
	if l.releaseClients != nil {
		l.releaseClients()
	}
	l.releaseClients = l.gc.Exclude(grown + later)
	l.say("%s: %.1f MiB of live heap, and %.1f MiB more for the %d credentials they will create, given room of its own beside the server's garbage-collector headroom",
		what, float64(grown)/(1<<20), float64(later)/(1<<20), creds)
	return nil
}

// credentialHeap returns the live heap a load chip gains per credential
// it creates and signs with, as measured on scratch chips that each make
// credentials and sign an assertion with each.
func credentialHeap() (uint64, error) {
	const chips, each = 256, 2
	ctx := context.Background()
	scratch := make([]*chip.Chip, 0, chips)
	defer func() {
		for _, c := range scratch {
			c.Close()
		}
	}()
	for i := range chips {
		c, err := newLoadChip(fmt.Appendf(nil, "authbench load: credential heap %d", i))
		if err != nil {
			return 0, fmt.Errorf("load: scratch chip: %w", err)
		}
		scratch = append(scratch, c)
	}
	cdh := make([]byte, 32)
	mk := &ctap2.MakeCredentialRequest{ClientDataHash: cdh, RP: ctap2.RPEntity{ID: loadRPID},
		User:             ctap2.UserEntity{ID: []byte("scratch"), Name: "scratch"},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}}}
	before := liveHeapAfterGC()
	for _, c := range scratch {
		for range each {
			att, err := c.MakeCredential(ctx, mk)
			if err == nil {
				var ad *ctap2.AuthData
				if ad, err = ctap2.ParseAuthData(att.AuthData); err == nil && ad.AttestedCredential != nil {
					_, err = c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: loadRPID, ClientDataHash: cdh,
						AllowList: []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: ad.AttestedCredential.CredentialID}}})
				}
			}
			if err != nil {
				return 0, fmt.Errorf("load: a scratch chip's credential: %w", err)
			}
		}
	}
	after := liveHeapAfterGC()
	runtime.KeepAlive(scratch)
	if after <= before {
		return 0, nil
	}
	return (after - before) / (chips * each), nil
}

// liveHeapAfterGC collects garbage and returns the live heap the
// collection marked.
func liveHeapAfterGC() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// closeChips closes the chips of a scenario and ends the exclusion of
// their live heap from the server's account.
func (l *loader) closeChips(chips []*loadChip) {
	for _, lc := range chips {
		if lc != nil {
			lc.c.Close()
		}
	}
	if l.releaseClients != nil {
		l.releaseClients()
		l.releaseClients = nil
	}
}

// lifecycle runs the lifecycle scenario; a sample of the chips is then
// checked to be refused with the credential they had before the block.
func (l *loader) lifecycle(ctx context.Context) (_ *lifecycleResult, err error) {
	cfg := l.cfg
	f, err := l.openFleet(ctx, cfg.argon2, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.closeFleet(f)) }()
	workers := min(cfg.concurrency, cfg.n)
	res := &lifecycleResult{N: cfg.n, Workers: workers, Replicas: f.replicas()}

	// Setup: the chips and their identities, each with a password (a chip
	// logs in after the password).
	l.say("lifecycle: making %d simulated chips and their identities...", cfg.n)
	// Each chip creates two credentials: enroll, re-add.
	chips, secs, err := l.setUpChips(ctx, f, "chip", "lifecycle setup, identities", cfg.n, 2, workers, nil)
	defer l.closeChips(chips)
	res.SetupSeconds = secs
	if err != nil {
		return nil, err
	}

	// The measured run. A chip whose step fails is counted under the
	// step's error code and goes no further; the others go on.
	rec := newRecorder()
	l.say("lifecycle: %d chips through enroll → login → block → re-add, %d clients, %d server(s)...", cfg.n, workers, f.replicas())
	stop := progress(l.progress, progressEvery, func(el time.Duration) string {
		n := rec.ok.Load()
		return fmt.Sprintf("load: lifecycle: %d/%d chips in %.0f s (%.0f/s), %d errors", n, cfg.n, el.Seconds(), float64(n)/el.Seconds(), rec.failures())
	})
	rrs := make([]*roundRobin, workers)
	for w := range rrs {
		rrs[w] = &roundRobin{f: f, k: w}
	}
	cpu0, cpuOK := processCPU()
	start := time.Now()
	err = forEach(ctx, cfg.n, workers, func(ctx context.Context, w, i int) error {
		if err := chipLifecycle(ctx, rrs[w], chips[i], rec); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rec.fail(fmt.Errorf("chip %d (identity %s): %w", i, chips[i].id, err))
			return nil
		}
		rec.ok.Add(1)
		return nil
	})
	elapsed := time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.CPUMSPerChip = float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(cfg.n)
	}
	stop()
	if err == nil {
		err = l.writeHeapProfile()
	}
	if err != nil {
		return nil, err
	}
	res.Seconds = elapsed.Seconds()
	res.Completed = rec.ok.Load()
	res.ChipsPerSec = float64(res.Completed) / res.Seconds

	// The old credentials of a sample stay refused.
	var sample []int
	for _, i := range sampleIndexes(cfg.n, cfg.sample) {
		if chips[i].curID != "" {
			sample = append(sample, i)
		}
	}
	res.Sampled = len(sample)
	codes := make([]string, len(sample))
	l.say("lifecycle: checking that %d re-added chips are refused with their old credential...", len(sample))
	start = time.Now()
	err = forEach(ctx, len(sample), workers, func(ctx context.Context, w, j int) error {
		i := sample[j]
		t := time.Now()
		code, err := checkOldCredential(ctx, rrs[w], chips[i])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rec.fail(inPhase("old credential", fmt.Errorf("chip %d (identity %s): %w", i, chips[i].id, err)))
			return nil
		}
		rec.observe("old credential", time.Since(t))
		codes[j] = code
		return nil
	})
	res.CheckSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if c == "" {
			continue
		}
		res.OldRefused++
		if !seen[c] {
			seen[c] = true
			res.OldRefusedCodes = append(res.OldRefusedCodes, c)
		}
	}
	res.Phases, res.Errors = rec.phases(), rec.errors()
	return res, nil
}

// sampleIndexes returns up to k indexes spread evenly over 0..n-1.
func sampleIndexes(n, k int) []int {
	k = min(k, n)
	out := make([]int, 0, k)
	for j := range k {
		out = append(out, j*n/k)
	}
	return out
}

// chipLifecycle takes one chip through enroll → login → block → re-add,
// recording the latency of each step and of the whole ("chip"). A failure
// is a *phaseError naming the step.
func chipLifecycle(ctx context.Context, rr *roundRobin, lc *loadChip, rec *recorder) error {
	start := time.Now()
	for _, st := range lifecycleSteps {
		t := time.Now()
		if err := st.run(ctx, rr, lc); err != nil {
			return inPhase(st.name, err)
		}
		rec.observe(st.name, time.Since(t))
	}
	rec.observe("chip", time.Since(start))
	return nil
}

// lifecycleSteps are the steps of a chip's lifecycle, in order.
var lifecycleSteps = []struct {
	name string
	run  func(ctx context.Context, rr *roundRobin, lc *loadChip) error
}{
	{"enroll", func(ctx context.Context, rr *roundRobin, lc *loadChip) error {
		a, err := client.EnrollChip(ctx, rr.support(), lc.id, "load", lc.c)
		if err != nil {
			return err
		}
		if a.State != client.StateActive || a.CredentialID == "" {
			return checkFailed("the chip is %s with credential %q; want active with a credential", a.State, a.CredentialID)
		}
		lc.oldID, lc.oldCred = a.ID, a.CredentialID
		return nil
	}},
	{"login", func(ctx context.Context, rr *roundRobin, lc *loadChip) error {
		return lifecycleLogin(ctx, rr, lc.id, lc.oldID, lc.c)
	}},
	{"block", func(ctx context.Context, rr *roundRobin, lc *loadChip) error {
		b, err := rr.support().Block(ctx, lc.id, lc.oldID, client.ReasonLost)
		if err != nil {
			return err
		}
		if b.State != client.StateBlocked || !b.Element.Wiped {
			return checkFailed("the chip is %s, element wiped %v; want blocked and wiped", b.State, b.Element.Wiped)
		}
		return nil
	}},
	{"re-add", func(ctx context.Context, rr *roundRobin, lc *loadChip) error {
		again, err := client.EnrollChip(ctx, rr.support(), lc.id, "load (again)", lc.c)
		if err != nil {
			return err
		}
		if again.State != client.StateActive {
			return checkFailed("the re-added chip is %s; want active", again.State)
		}
		if again.CredentialID == lc.oldCred || again.ID == lc.oldID {
			return checkFailed("the re-added chip has the old authenticator or credential (%s, %s)", again.ID, again.CredentialID)
		}
		lc.curID = again.ID
		return nil
	}},
}

// lifecycleLogin logs in with the password and chip aid as a client that
// knows its chip does (client.LoginPasswordChip given the chip's ID): the
// password step names the chip ("second"), so its answer carries the
// chip's challenge, and the login takes two round trips (password,
// finish) instead of three. Each goes to the next replica.
func lifecycleLogin(ctx context.Context, rr *roundRobin, id, aid string, c device.Chip) error {
	step, err := rr.anon().PasswordLogin(ctx, id, loadPassword, aid)
	if err != nil {
		return err
	}
	next := step.Next
	if next == nil || next.PublicKey == nil || next.Authenticator != aid {
		return checkFailed("the password step named chip %s but gave no request options for it", aid)
	}
	cred, err := client.ChipAssertion(ctx, c, next.PublicKey, loadOrigin)
	if err != nil {
		return err
	}
	s, err := rr.anon().FinishLogin(ctx, id, client.FinishLoginRequest{Ceremony: next.Ceremony, Credential: cred})
	if err != nil {
		return err
	}
	if s.Token == "" {
		return checkFailed("the login gave no session")
	}
	return nil
}

// checkOldCredential checks the lifecycle rule (server/domain) for a chip added again
// after a permanent block: the blocked authenticator cannot log in, the
// old credential is refused even when the chip signs with it, and the new
// one logs in. It returns the status and error code of the refusal of the
// old credential.
func checkOldCredential(ctx context.Context, rr *roundRobin, lc *loadChip) (string, error) {
	_, err := client.LoginPasswordChip(ctx, rr.anon(), lc.id, loadPassword, lc.oldID, lc.c)
	if !errors.Is(err, client.ErrBlocked) {
		return "", checkFailed("logging in with the blocked authenticator: want %q, got %v", client.ErrBlocked, err)
	}
	step, err := rr.anon().PasswordLogin(ctx, lc.id, loadPassword, lc.curID)
	if err != nil {
		return "", fmt.Errorf("old credential: password: %w", err)
	}
	next := step.Next
	if next == nil || next.PublicKey == nil {
		return "", checkFailed("old credential: no request options for the chip")
	}
	opts := *next.PublicKey
	opts.AllowCredentials = []client.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: lc.oldCred}}
	cred, err := client.ChipAssertion(ctx, lc.c, &opts, loadOrigin)
	if err != nil {
		return "", fmt.Errorf("old credential: the chip signs with it: %w", err)
	}
	_, err = rr.anon().FinishLogin(ctx, lc.id, client.FinishLoginRequest{Ceremony: next.Ceremony, Credential: cred})
	var ae *client.APIError
	switch {
	case err == nil:
		return "", checkFailed("the old credential was accepted")
	case !errors.As(err, &ae) || ae.Status/100 != 4:
		return "", checkFailed("old credential: want a refusal (4xx), got: %v", err)
	}
	if err := serverChipLogin(ctx, nil, rr, lc.id, lc.curID, lc.c); err != nil {
		return "", fmt.Errorf("log in with the new credential: %w", err)
	}
	return fmt.Sprintf("%d %s", ae.Status, ae.Code), nil
}
