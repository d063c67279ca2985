package devicetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Status is the outcome of one check.
type Status string

// Outcomes.
const (
	// Pass: the device did what the check asks.
	Pass Status = "pass"
	// Fail: the device answered, and not as the check asks.
	Fail Status = "fail"
	// Error: the check could not run to its end: the device went away,
	// stopped answering or did not answer in time (JUnit <error>, where
	// Fail is <failure>).
	Error Status = "error"
	// Skip: the check does not apply to the target, or was not run.
	Skip Status = "skip"
	// NotChecked: what the device did was accepted as far as it could be
	// checked, but part of it could not be (an attestation whose
	// certificate chain was not checked for want of trusted roots). It is
	// not a pass.
	NotChecked Status = "not-checked"
)

// Text returns how reports write the status: "pass", "fail", "error",
// "skip" or "not checked".
func (s Status) Text() string {
	if s == NotChecked {
		return "not checked"
	}
	return string(s)
}

// DefaultTimeout is how long one check may take when RunOptions.Timeout is
// zero. It leaves a bench operator time to touch a chip.
const DefaultTimeout = 30 * time.Second

// abandonAfter is how long RunSuite waits, after a check's deadline, for a
// check that ignores its context before it reports it and moves on. Tests
// shorten it.
var abandonAfter = 5 * time.Second

// Check is one named conformance check.
type Check struct {
	// Name identifies the check in reports and as a subtest name: short,
	// lowercase, no spaces or slashes ("getassertion.counter").
	Name string
	// Description says in one sentence what is checked, for an operator.
	Description string
	// Spec cites the rule checked ("CTAP 2.1 §6.1.2 step 12").
	Spec string
	// Run performs the check against r.Target. It returns nil for a pass,
	// an error wrapping ErrSkipped (see Skipf) when the check does not apply
	// to this target, and any other error for a failure, whose text is
	// what the report shows: write it for a bench operator.
	Run func(ctx context.Context, r *Run) error
	// Profiles, when not empty, names the profiles the check belongs to
	// (see Suite.Profile); against a target of another profile it is
	// skipped, and the report says why. Empty means every profile.
	Profiles []string
}

// Suite is an ordered list of checks run against one target.
type Suite struct {
	Name   string
	Checks []Check
	// Accept, when not nil, tells whether a target fits the suite; when it
	// returns an error every check fails with it.
	Accept func(target any) error
	// Profile, when not nil, finds out which profile the target has (for
	// chips: "FIDO2", "U2F-only" or "CTAP2-only"), once, before the first
	// check; the report records it, and the checks whose Profiles do not
	// name it are skipped. It may leave fixtures for the checks with
	// r.Memo. When it returns an error every check fails with it (or, when
	// the target could not be reached, the run stops with an error).
	Profile func(ctx context.Context, r *Run) (string, error)
	// Describe, when not nil, fills in what the report's header says about
	// the device (AAGUID, firmware, serial, ...), once, after Profile.
	// What it cannot find stays empty; its error is only noted.
	Describe func(ctx context.Context, r *Run, d *DeviceSummary) error
	// Probe, when not nil, asks the target something cheap (getInfo,
	// IDENTIFY) to learn whether it still answers. After a check that
	// could not run because the target did not answer in time, a failing
	// probe stops the run: the target stopped answering, and every later
	// check would only wait for its own deadline.
	Probe func(ctx context.Context, target any) error
}

// Names returns the names of the suite's checks, in order.
func (s Suite) Names() []string {
	names := make([]string, len(s.Checks))
	for i, c := range s.Checks {
		names[i] = c.Name
	}
	return names
}

// Result is the outcome of one check.
type Result struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Spec        string        `json:"spec,omitempty"`
	Status      Status        `json:"status"`
	Message     string        `json:"message,omitempty"` // why it failed or was skipped
	Log         []string      `json:"log,omitempty"`     // notes the check made on the way
	Duration    time.Duration `json:"duration"`
	Artifacts   []Artifact    `json:"artifacts,omitempty"`
	// NotRun is set on the checks that were not run because the run
	// stopped before them (Report.Stopped); they are skipped.
	NotRun bool `json:"not_run,omitempty"`
}

// Artifact is a file a check produced, such as a WAV recording of what an
// audio code reader said.
type Artifact struct {
	Name      string `json:"name"`           // file name, unique within the check
	MediaType string `json:"media_type"`     // "audio/wav", ...
	Path      string `json:"path,omitempty"` // where it was written; empty when RunOptions.ArtifactDir is empty
	Data      []byte `json:"-"`              // the bytes, kept when not written
}

// Report is the outcome of running a suite against a target.
type Report struct {
	Suite   string         `json:"suite"`
	Target  string         `json:"target"`
	Profile string         `json:"profile,omitempty"` // what Suite.Profile found
	Device  *DeviceSummary `json:"device,omitempty"`  // what is known of the device
	Tool    string         `json:"tool,omitempty"`    // RunOptions.Tool: what ran the checks
	// Stopped says why the run stopped before its last check ("card
	// removed during makeCredential; remaining checks not run"); empty
	// when every check had its turn.
	Stopped  string        `json:"stopped,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Results  []Result      `json:"results"`
}

// DeviceSummary is what a report's header says about the device checked.
// Fields that are not known are empty.
type DeviceSummary struct {
	Kind      device.Kind `json:"kind,omitempty"`
	Transport string      `json:"transport,omitempty"`
	Path      string      `json:"path,omitempty"`
	Model     string      `json:"model,omitempty"`
	Serial    string      `json:"serial,omitempty"`
	Firmware  string      `json:"firmware,omitempty"`
	// AAGUID names a FIDO2 chip's model (WebAuthn §6.5.1), in the usual
	// 8-4-4-4-12 hex form; empty for a U2F-only chip, which has none.
	AAGUID string `json:"aaguid,omitempty"`
	// Versions are what the device speaks: a chip's getInfo versions, a
	// code device's CDP/1 protocol version.
	Versions []string `json:"versions,omitempty"`
}

func (d *DeviceSummary) empty() bool {
	return d.Kind == "" && d.Transport == "" && d.Path == "" && d.Model == "" && d.Serial == "" &&
		d.Firmware == "" && d.AAGUID == "" && len(d.Versions) == 0
}

// merge fills the empty fields of d from i.
func (d *DeviceSummary) merge(i device.Info) {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	if d.Kind == "" {
		d.Kind = i.Kind
	}
	set(&d.Transport, i.Transport)
	set(&d.Path, i.Path)
	set(&d.Model, i.Model)
	set(&d.Serial, i.Serial)
	set(&d.Firmware, i.Firmware)
}

// Tally counts the results of a report by status.
type Tally struct {
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Errors     int `json:"errors"`
	Skipped    int `json:"skipped"`
	NotChecked int `json:"not_checked"`
}

// Tally counts the results by status.
func (r *Report) Tally() Tally {
	var t Tally
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			t.Passed++
		case Fail:
			t.Failed++
		case Error:
			t.Errors++
		case NotChecked:
			t.NotChecked++
		default:
			t.Skipped++
		}
	}
	return t
}

// Counts returns how many checks passed, did not pass (failed, or could
// not run), and neither (skipped, or not checked). Tally tells them all
// apart.
func (r *Report) Counts() (pass, fail, skip int) {
	t := r.Tally()
	return t.Passed, t.Failed + t.Errors, t.Skipped + t.NotChecked
}

// Passed reports whether no check failed or could not run, and the run was
// not stopped.
func (r *Report) Passed() bool {
	t := r.Tally()
	return t.Failed == 0 && t.Errors == 0 && r.Stopped == ""
}

// Failed returns the names of the checks that failed or could not run, in
// order.
func (r *Report) Failed() []string {
	var names []string
	for _, res := range r.Results {
		if res.Status == Fail || res.Status == Error {
			names = append(names, res.Name)
		}
	}
	return names
}

// Result returns the result of the check called name, or nil.
func (r *Report) Result(name string) *Result {
	for i := range r.Results {
		if r.Results[i].Name == name {
			return &r.Results[i]
		}
	}
	return nil
}

// ErrSkipped is wrapped by the errors of checks that do not apply to their
// target (see Skipf).
var ErrSkipped = errors.New("devicetest: check skipped")

// SkipError says why a check was skipped. It unwraps to ErrSkipped.
type SkipError struct {
	Reason string
}

// Error returns "skipped: " and the reason.
func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Unwrap returns ErrSkipped.
func (e *SkipError) Unwrap() error { return ErrSkipped }

// Skipf returns a *SkipError with the formatted reason, for a check to return
// when it does not apply to its target.
func Skipf(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// NotCheckedError says what a check could not check. A check returns one
// (see NotCheckedf) when what it could check was right but part of what it
// is about could not be checked; its result is then NotChecked.
type NotCheckedError struct {
	Reason string
}

// Error returns "not checked: " and the reason.
func (e *NotCheckedError) Error() string { return "not checked: " + e.Reason }

// NotCheckedf returns a *NotCheckedError with the formatted reason.
func NotCheckedf(format string, args ...any) error {
	return &NotCheckedError{Reason: fmt.Sprintf(format, args...)}
}

// RunOptions configure RunSuite. The zero value is the default.
type RunOptions struct {
	// Timeout bounds each check; 0 means DefaultTimeout.
	Timeout time.Duration
	// Progress, when not nil, is called with each result as soon as its
	// check has finished, from the goroutine that called RunSuite.
	Progress func(Result)
	// Select, when not nil, chooses the checks to run; the others are
	// reported as skipped ("not selected") so that reports list every check.
	Select func(name string) bool
	// ArtifactDir, when not empty, is the directory where artifacts are
	// written (in a subdirectory per check); it is created when needed.
	// When empty, artifacts are kept in Artifact.Data.
	ArtifactDir string
	// TargetName names the target in the report; when empty it comes
	// from the target's DeviceInfo method, if it has one, or its Go type.
	TargetName string
	// Device is what the caller knows of the device beforehand (a
	// simulator's serial, say); the report's header starts from it, then
	// adds what the target's DeviceInfo method and Suite.Describe find.
	Device device.Info
	// Tool names what runs the checks, with its version ("authbench
	// v1.2.0"), for the report's header.
	Tool string
	// Now is the clock for the report's times (nil means time.Now).
	Now func() time.Time
}

// Run is what a running check sees: the target and a place for notes and
// artifacts. A Run is safe for concurrent use.
type Run struct {
	// Target is the device under test, as given to RunSuite.
	Target any

	name   string
	dir    string
	shared *shared

	mu         sync.Mutex
	log        []string
	artifacts  []Artifact
	errs       []error  // artifacts that could not be written
	notChecked []string // see NotChecked
}

// Name returns the name of the running check.
func (r *Run) Name() string { return r.name }

// Logf adds a note to the check's result, for the report.
func (r *Run) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

// NotChecked records that part of what the check is about could not be
// checked, and why (for an operator: what to give so that it can be). If
// the check otherwise passes, its result is NotChecked with the reasons.
func (r *Run) NotChecked(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notChecked = append(r.notChecked, reason)
}

// Attach adds an artifact to the check's result: written to
// RunOptions.ArtifactDir when set, else kept in memory. A name that is not a
// plain file name is refused, as is one the check already used. It returns
// the error of writing the file, which the check may ignore: the result
// notes it.
func (r *Run) Attach(name, mediaType string, data []byte) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("devicetest: artifact name %q is not a plain file name", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.artifacts {
		if a.Name == name {
			return fmt.Errorf("devicetest: artifact %q attached twice", name)
		}
	}
	a := Artifact{Name: name, MediaType: mediaType}
	if r.dir == "" {
		a.Data = append([]byte(nil), data...)
		r.artifacts = append(r.artifacts, a)
		return nil
	}
	dir := filepath.Join(r.dir, fileName(r.name))
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		a.Path = filepath.Join(dir, name)
		err = os.WriteFile(a.Path, data, 0o644)
	}
	if err != nil {
		err = fmt.Errorf("devicetest: artifact %s: %w", name, err)
		r.errs = append(r.errs, err)
		a.Path, a.Data = "", append([]byte(nil), data...)
	}
	r.artifacts = append(r.artifacts, a)
	return err
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName turns a check name into a directory name.
func fileName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if s == "" || strings.HasPrefix(s, ".") {
		s = "_" + s
	}
	return s
}

// Memo returns the value that f makes, calling f only the first time key is
// asked for during one RunSuite: checks use it to share a fixture (such as
// one credential), so that a bench operator touches a chip fewer times. An
// error of f is remembered too and returned to every later caller.
func (r *Run) Memo(key string, f func() (any, error)) (any, error) {
	return r.shared.memo(key, f)
}

type shared struct {
	mu   sync.Mutex
	vals map[string]*memoEntry
}

type memoEntry struct {
	once sync.Once
	val  any
	err  error
}

func (s *shared) memo(key string, f func() (any, error)) (any, error) {
	s.mu.Lock()
	e := s.vals[key]
	if e == nil {
		e = &memoEntry{}
		s.vals[key] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		defer func() {
			if p := recover(); p != nil {
				e.err = fmt.Errorf("panic while preparing %s: %v", key, p)
			}
		}()
		e.val, e.err = f()
	})
	return e.val, e.err
}

// deviceInfoer is met by simulators and drivers that describe their device.
type deviceInfoer interface {
	DeviceInfo() device.Info
}

// TargetName returns a short description of target: its DeviceInfo when it
// has that method, else its Go type.
func TargetName(target any) string {
	if d, ok := target.(deviceInfoer); ok {
		info := d.DeviceInfo()
		var parts []string
		for _, s := range []string{string(info.Kind), info.Transport, info.Model, info.Serial, info.Path} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, " ")
		}
	}
	return fmt.Sprintf("%T", target)
}

// RunSuite runs the checks of s against target, one after the other, and
// returns the report. Each check gets its own context, ending after
// opts.Timeout; a check that has not returned a few seconds after that is
// reported as an error and left behind, so that a target that ignores
// cancellation cannot stall a bench. A panicking check fails.
//
// A check that could not run because the target went away (an error
// wrapping device.ErrRemoved, device.ErrNotFound or device.ErrClosed), or
// did not answer in time and then does not answer Suite.Probe either, is
// reported once, as an error; the run stops there (Report.Stopped says why,
// as in "card removed during makeCredential; remaining checks not run")
// and the checks after it are skipped as not run. When ctx ends, the run
// stops the same way.
func RunSuite(ctx context.Context, s Suite, target any, opts RunOptions) *Report {
	rn := newRunner(s, target, opts)
	for _, c := range s.Checks {
		res := rn.one(ctx, c)
		if opts.Progress != nil {
			opts.Progress(res)
		}
	}
	return rn.finish()
}

// runner runs the checks of one suite against one target and collects the
// report; RunSuite and RunT share it.
type runner struct {
	suite     Suite
	target    any
	opts      RunOptions
	now       func() time.Time
	timeout   time.Duration
	acceptErr error
	shared    *shared
	rep       *Report

	profiled   bool   // Suite.Profile and Suite.Describe have run
	profileErr error  // what Suite.Profile returned
	pending    string // why preparing stopped the run, for the next result to say
}

func newRunner(s Suite, target any, opts RunOptions) *runner {
	rn := &runner{suite: s, target: target, opts: opts, now: opts.Now, timeout: opts.Timeout,
		shared: &shared{vals: make(map[string]*memoEntry)}}
	if rn.now == nil {
		rn.now = time.Now
	}
	if rn.timeout <= 0 {
		rn.timeout = DefaultTimeout
	}
	name := opts.TargetName
	if name == "" {
		name = TargetName(target)
	}
	rn.rep = &Report{Suite: s.Name, Target: name, Tool: opts.Tool, Started: rn.now()}
	d := &DeviceSummary{}
	d.merge(opts.Device)
	if di, ok := target.(deviceInfoer); ok {
		d.merge(di.DeviceInfo())
	}
	if !d.empty() {
		rn.rep.Device = d
	}
	if s.Accept != nil {
		rn.acceptErr = s.Accept(target)
	}
	return rn
}

// prepare runs Suite.Profile and Suite.Describe once, as a check is run
// (their own deadline, panics caught), and records what they found in the
// report. A profile that cannot be found because the target could not be
// reached stops the run.
func (rn *runner) prepare(ctx context.Context) {
	if rn.profiled || rn.acceptErr != nil || ctx.Err() != nil {
		return
	}
	rn.profiled = true
	r := &Run{Target: rn.target, name: "profile", dir: rn.opts.ArtifactDir, shared: rn.shared}
	if rn.suite.Profile != nil {
		var found string
		rn.profileErr = runCheck(ctx, Check{Name: "profile", Run: func(ctx context.Context, r *Run) error {
			p, err := rn.suite.Profile(ctx, r)
			found = p
			return err
		}}, r, rn.timeout)
		if rn.profileErr != nil {
			if couldNotRun(rn.profileErr) {
				rn.stop(ctx, "finding the profile", rn.profileErr)
				rn.pending = "the target's profile could not be found: " + rn.profileErr.Error()
			}
			return
		}
		rn.rep.Profile = found
	}
	if rn.suite.Describe != nil {
		d := rn.rep.Device
		if d == nil {
			d = &DeviceSummary{}
		}
		err := runCheck(ctx, Check{Name: "describe", Run: func(ctx context.Context, r *Run) error {
			return rn.suite.Describe(ctx, r, d)
		}}, r, rn.timeout)
		if !d.empty() {
			rn.rep.Device = d
		}
		if err != nil && couldNotRun(err) {
			rn.stop(ctx, "describing the device", err)
			rn.pending = "the device could not be described: " + err.Error()
		}
	}
}

// one runs check c, adds its result to the report and returns it.
func (rn *runner) one(ctx context.Context, c Check) Result {
	res := Result{Name: c.Name, Description: c.Description, Spec: c.Spec}
	selected := rn.opts.Select == nil || rn.opts.Select(c.Name)
	if selected && rn.rep.Stopped == "" {
		rn.prepare(ctx)
	}
	switch {
	case !selected:
		res.Status, res.Message = Skip, "not selected"
	case rn.rep.Stopped == "" && ctx.Err() != nil:
		rn.rep.Stopped = interruption(ctx) + "; remaining checks not run"
		fallthrough
	case rn.rep.Stopped != "":
		if rn.pending != "" {
			// The one error entry that says why nothing ran.
			res.Status, res.Message = Error, rn.pending
			rn.pending = ""
			break
		}
		res.Status, res.Message, res.NotRun = Skip, "not run: "+rn.rep.Stopped, true
	case rn.acceptErr != nil:
		res.Status, res.Message = Fail, "target does not fit the suite: "+rn.acceptErr.Error()
	case rn.profileErr != nil:
		res.Status, res.Message = Fail, "the target's profile could not be found: "+rn.profileErr.Error()
	case len(c.Profiles) > 0 && rn.rep.Profile != "" && !slices.Contains(c.Profiles, rn.rep.Profile):
		res.Status, res.Message = Skip, fmt.Sprintf("not part of the %s profile (the check is for %s)", rn.rep.Profile, strings.Join(c.Profiles, ", "))
	default:
		r := &Run{Target: rn.target, name: c.Name, dir: rn.opts.ArtifactDir, shared: rn.shared}
		start := rn.now()
		err := runCheck(ctx, c, r, rn.timeout)
		res.Duration = rn.now().Sub(start)
		r.mu.Lock()
		res.Status, res.Message = judge(err, r.notChecked)
		res.Log = slices.Clone(r.log)
		res.Artifacts = slices.Clone(r.artifacts)
		for _, e := range r.errs {
			res.Log = append(res.Log, e.Error())
		}
		r.mu.Unlock()
		if res.Status == Error {
			rn.stop(ctx, "", err)
		}
	}
	rn.rep.Results = append(rn.rep.Results, res)
	return res
}

// probeTimeout bounds Suite.Probe after a check that timed out.
const probeTimeout = 5 * time.Second

// stop decides, after err kept a check (or the profile) from running,
// whether the run must stop, and records why in the report: the target went
// away, it no longer answers Suite.Probe, or ctx ended. what names the step
// for an error that does not name the device operation itself.
func (rn *runner) stop(ctx context.Context, what string, err error) {
	if rn.rep.Stopped != "" {
		return
	}
	during := ""
	if op := operation(err); op != "" {
		during = " during " + op
	} else if what != "" {
		during = " while " + what
	}
	thing := rn.deviceWord()
	switch {
	case ctx.Err() != nil:
		rn.rep.Stopped = interruption(ctx) + during + "; remaining checks not run"
	case gone(err):
		rn.rep.Stopped = fmt.Sprintf("%s removed%s; remaining checks not run", thing, during)
	case rn.suite.Probe != nil:
		limit := min(probeTimeout, rn.timeout)
		pctx, cancel := context.WithTimeout(ctx, limit)
		perr := rn.suite.Probe(pctx, rn.target)
		cancel()
		switch {
		case perr == nil:
			return // it answers again: carry on
		case ctx.Err() != nil:
			rn.rep.Stopped = interruption(ctx) + "; remaining checks not run"
		case gone(perr):
			rn.rep.Stopped = fmt.Sprintf("%s removed%s; remaining checks not run", thing, during)
		default:
			rn.rep.Stopped = fmt.Sprintf("%s stopped answering%s (and did not answer within %v when asked again: %v); remaining checks not run", thing, during, limit, perr)
		}
	}
}

// interruption says why ctx ended, each word once: "interrupted" when the
// cause says so already (the operator's Ctrl-C) or says nothing more
// (a plain cancel), else "interrupted (CAUSE)", such as a deadline.
func interruption(ctx context.Context) string {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) || strings.Contains(strings.ToLower(cause.Error()), "interrupt") {
		return "interrupted"
	}
	return "interrupted (" + cause.Error() + ")"
}

// deviceWord is what reports call the target when it goes away: a card in
// a PC/SC reader, a key on USB, else the device.
func (rn *runner) deviceWord() string {
	if d := rn.rep.Device; d != nil {
		switch d.Transport {
		case "pcsc":
			return "card"
		case "usb":
			return "key"
		}
	}
	return "device"
}

// gone reports whether err says that the target went away.
func gone(err error) bool {
	return errors.Is(err, device.ErrRemoved) || errors.Is(err, device.ErrNotFound) || errors.Is(err, device.ErrClosed)
}

// errAbandoned is wrapped by the error of a check that ignored its deadline.
var errAbandoned = errors.New("abandoned")

// couldNotRun reports whether err kept a check from running to its end,
// rather than showing the device doing something wrong: the target went
// away, did not answer in time, or the check ignored its deadline.
func couldNotRun(err error) bool {
	return gone(err) || errors.Is(err, device.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errAbandoned) || errors.Is(err, context.Canceled)
}

// opNames finds the device operation an error names: the CTAP2 command of
// a ctap2.Client error, the U2F request of a u2f.Client error, the CDP/1
// command of a frame.Host error.
var opNames = regexp.MustCompile(`authenticator(MakeCredential|GetAssertion|GetNextAssertion|GetInfo|Reset|Selection|ClientPIN|CredentialManagement)|u2f: (register|authenticate|version|check key handle)|frame: (IDENTIFY|PRESS|DISPLAY|AUDIO|SETTINGS|STATUS|PROVISION|SET_CLOCK|SEAL)`)

// operation returns the device operation that err names ("makeCredential",
// "U2F register", "PRESS"), or "".
func operation(err error) string {
	m := opNames.FindStringSubmatch(err.Error())
	switch {
	case m == nil:
		return ""
	case m[1] != "":
		return strings.ToLower(m[1][:1]) + m[1][1:]
	case m[2] != "":
		return "U2F " + m[2]
	}
	return m[3]
}

func (rn *runner) finish() *Report {
	rn.rep.Duration = rn.now().Sub(rn.rep.Started)
	return rn.rep
}

// judge turns a check's error, and what it could not check, into a status
// and a message.
func judge(err error, notChecked []string) (Status, string) {
	var (
		skip *SkipError
		nc   *NotCheckedError
	)
	switch {
	case err == nil && len(notChecked) > 0:
		return NotChecked, strings.Join(notChecked, "; ")
	case err == nil:
		return Pass, ""
	case errors.As(err, &skip):
		return Skip, skip.Reason
	case errors.Is(err, ErrSkipped):
		return Skip, err.Error()
	case errors.As(err, &nc):
		return NotChecked, strings.Join(append(notChecked, nc.Reason), "; ")
	case couldNotRun(err):
		return Error, err.Error()
	}
	return Fail, err.Error()
}

// runCheck runs c in its own goroutine under a deadline.
func runCheck(ctx context.Context, c Check, r *Run, timeout time.Duration) error {
	if c.Run == nil {
		return errors.New("check has no Run function")
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.Logf("stack of the panic:\n%s", debug.Stack())
				done <- fmt.Errorf("the check panicked: %v", p)
			}
		}()
		done <- c.Run(cctx, r)
	}()
	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		t := time.NewTimer(abandonAfter)
		select {
		case err = <-done:
		case <-t.C:
			err = fmt.Errorf("did not return within %v of its deadline: the target (or its driver) ignores cancellation; the check was %w", abandonAfter, errAbandoned)
		}
		t.Stop()
	}
	if err != nil && !errors.Is(err, ErrSkipped) && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("did not finish within %v: %w", timeout, err)
	}
	return err
}

// targetAs returns target as a T, or an error naming what the suite needs
// (what, e.g. "device.Chip"). Suites use it both in Accept and in their
// checks.
func targetAs[T any](target any, what string) (T, error) {
	t, ok := target.(T)
	if !ok {
		return t, fmt.Errorf("%T is not a %s", target, what)
	}
	return t, nil
}

// accepts is a Suite.Accept that takes the targets that are a T.
func accepts[T any](what string) func(any) error {
	return func(target any) error {
		_, err := targetAs[T](target, what)
		return err
	}
}

// OpenFailed returns the report of a run of s that could not start because
// the target could not be opened (no device at that address, no card in
// the reader, pcscd not running): one result, named "open", an error
// saying so; the report says no check was run. Reports are written also
// then, so that CI shows the bench's trouble as an error, not as silence.
func OpenFailed(s Suite, target string, err error, opts RunOptions) *Report {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	rep := &Report{Suite: s.Name, Target: target, Tool: opts.Tool, Started: now(),
		Stopped: "the device could not be opened; no check was run"}
	d := &DeviceSummary{}
	d.merge(opts.Device)
	if !d.empty() {
		rep.Device = d
	}
	rep.Results = []Result{{Name: "open", Description: "Open the device to check.", Status: Error,
		Message: "the device could not be opened: " + err.Error()}}
	return rep
}
