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
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

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
	// r.Memo. When it returns an error every check fails with it.
	Profile func(ctx context.Context, r *Run) (string, error)
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
	Suite    string        `json:"suite"`
	Target   string        `json:"target"`
	Profile  string        `json:"profile,omitempty"` // what Suite.Profile found
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Results  []Result      `json:"results"`
}

// Counts returns how many checks passed, failed and were skipped.
func (r *Report) Counts() (pass, fail, skip int) {
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			skip++
		}
	}
	return pass, fail, skip
}

// Passed reports whether no check failed.
func (r *Report) Passed() bool {
	_, fail, _ := r.Counts()
	return fail == 0
}

// Failed returns the names of the checks that failed, in order.
func (r *Report) Failed() []string {
	var names []string
	for _, res := range r.Results {
		if res.Status == Fail {
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

	mu        sync.Mutex
	log       []string
	artifacts []Artifact
	errs      []error // artifacts that could not be written
}

// Name returns the name of the running check.
func (r *Run) Name() string { return r.name }

// Logf adds a note to the check's result, for the report.
func (r *Run) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
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
// reported as failed and left behind, so that a target that ignores
// cancellation cannot stall a bench. A panicking check fails. When ctx
// ends, the checks not yet run fail with "not run".
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

	profiled   bool  // Suite.Profile has run
	profileErr error // what it returned
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
	rn.rep = &Report{Suite: s.Name, Target: name, Started: rn.now()}
	if s.Accept != nil {
		rn.acceptErr = s.Accept(target)
	}
	return rn
}

// profile runs Suite.Profile once, as a check is run (its own deadline,
// panics caught), and records what it found in the report.
func (rn *runner) profile(ctx context.Context) {
	if rn.profiled || rn.suite.Profile == nil || rn.acceptErr != nil || ctx.Err() != nil {
		return
	}
	rn.profiled = true
	r := &Run{Target: rn.target, name: "profile", dir: rn.opts.ArtifactDir, shared: rn.shared}
	var found string
	rn.profileErr = runCheck(ctx, Check{Name: "profile", Run: func(ctx context.Context, r *Run) error {
		p, err := rn.suite.Profile(ctx, r)
		found = p
		return err
	}}, r, rn.timeout)
	if rn.profileErr == nil {
		rn.rep.Profile = found
	}
}

// one runs check c, adds its result to the report and returns it.
func (rn *runner) one(ctx context.Context, c Check) Result {
	res := Result{Name: c.Name, Description: c.Description, Spec: c.Spec}
	rn.profile(ctx)
	switch {
	case rn.opts.Select != nil && !rn.opts.Select(c.Name):
		res.Status, res.Message = Skip, "not selected"
	case ctx.Err() != nil:
		res.Status, res.Message = Fail, "not run: the run was interrupted ("+context.Cause(ctx).Error()+")"
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
		res.Status, res.Message = judge(err)
		r.mu.Lock()
		res.Log = slices.Clone(r.log)
		res.Artifacts = slices.Clone(r.artifacts)
		for _, e := range r.errs {
			res.Log = append(res.Log, e.Error())
		}
		r.mu.Unlock()
	}
	rn.rep.Results = append(rn.rep.Results, res)
	return res
}

func (rn *runner) finish() *Report {
	rn.rep.Duration = rn.now().Sub(rn.rep.Started)
	return rn.rep
}

// judge turns a check's error into a status and a message.
func judge(err error) (Status, string) {
	var skip *SkipError
	switch {
	case err == nil:
		return Pass, ""
	case errors.As(err, &skip):
		return Skip, skip.Reason
	case errors.Is(err, ErrSkipped):
		return Skip, err.Error()
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
			err = fmt.Errorf("did not return within %v of its deadline: the target (or its driver) ignores cancellation; the check was abandoned", abandonAfter)
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
