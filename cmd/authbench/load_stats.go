package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/server/client"
)

// recorder collects what the operations of one measured target did: the
// latency of every successful step, by phase, and the failures, by phase
// and error code. It is safe for concurrent use.
type recorder struct {
	ok atomic.Int64 // operations (chips, logins) that went through

	mu     sync.Mutex
	order  []string                   // phases, in the order first seen
	lat    map[string][]time.Duration // phase → latencies of its successful steps
	errs   map[errorKey]*errorCount   // mu
	waited time.Duration              // time workers waited for fresh codes; mu
}

type errorKey struct{ phase, code string }

// errorCount is how often one phase failed with one error code, with the
// first message as an example.
type errorCount struct {
	Phase   string `json:"phase"`
	Code    string `json:"code"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

func newRecorder() *recorder {
	return &recorder{lat: map[string][]time.Duration{}, errs: map[errorKey]*errorCount{}}
}

// observe records one successful step of phase that took d (nothing on a
// nil recorder).
func (r *recorder) observe(phase string, d time.Duration) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if _, ok := r.lat[phase]; !ok {
		r.order = append(r.order, phase)
	}
	r.lat[phase] = append(r.lat[phase], d)
	r.mu.Unlock()
}

// fail records a failed operation: at the phase a *phaseError names
// ("" otherwise), under the error's code (errorCode).
func (r *recorder) fail(err error) {
	phase := ""
	var pe *phaseError
	if errors.As(err, &pe) {
		phase = pe.phase
	}
	k := errorKey{phase, errorCode(err)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.lat[phase]; !ok && phase != "" {
		r.order = append(r.order, phase)
		r.lat[phase] = nil
	}
	e := r.errs[k]
	if e == nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		e = &errorCount{Phase: k.phase, Code: k.code, Example: msg}
		r.errs[k] = e
	}
	e.Count++
}

// wait records time a worker spent waiting for a fresh one-time code.
func (r *recorder) wait(d time.Duration) {
	r.mu.Lock()
	r.waited += d
	r.mu.Unlock()
}

// errors returns the failures, the most frequent first.
func (r *recorder) errors() []errorCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]errorCount, 0, len(r.errs))
	for _, e := range r.errs {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Phase+out[i].Code < out[j].Phase+out[j].Code
	})
	return out
}

// failures returns the number of failed operations.
func (r *recorder) failures() int {
	n := 0
	for _, e := range r.errors() {
		n += e.Count
	}
	return n
}

// phaseResult is the latency of one phase: the steps that went through
// (Count) and their percentiles, and the steps that failed (Errors).
type phaseResult struct {
	Name   string  `json:"name"`
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// phases returns the latency of every phase, in the order first seen.
func (r *recorder) phases() []phaseResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]phaseResult, 0, len(r.order))
	for _, name := range r.order {
		p := latencies(name, r.lat[name])
		for k, e := range r.errs {
			if k.phase == name {
				p.Errors += e.Count
			}
		}
		out = append(out, p)
	}
	return out
}

// latencies summarises the durations ds of one phase: mean, nearest-rank
// percentiles (the smallest value with at least p% of the values at or
// below it) and maximum, in milliseconds.
func latencies(name string, ds []time.Duration) phaseResult {
	p := phaseResult{Name: name, Count: len(ds)}
	if len(ds) == 0 {
		return p
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.9999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	p.MeanMS = ms(sum) / float64(len(s))
	p.P50MS, p.P90MS, p.P99MS, p.MaxMS = ms(rank(0.50)), ms(rank(0.90)), ms(rank(0.99)), ms(s[len(s)-1])
	return p
}

// phaseError is a failure of one phase of an operation ("enroll",
// "password", "finish", ...).
type phaseError struct {
	phase string
	err   error
}

func (e *phaseError) Error() string { return e.phase + ": " + e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// inPhase wraps a non-nil err as a failure of phase.
func inPhase(phase string, err error) error {
	if err == nil {
		return nil
	}
	return &phaseError{phase, err}
}

// errorCode names the kind of a failure for the counts by code: "STATUS
// code" for an answer of the API or of the minimal durable login (such as
// "503 busy" or "401 wrong_code"), "transport" when no answer came,
// "check" when an answer did not say what the server's rules demand, and
// "client" for the rest (a simulated device, a malformed answer).
func errorCode(err error) string {
	var ae *client.APIError
	var he *httpError
	var ce *checkError
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return strconv.Itoa(ae.Status) + " " + ae.Code
	case errors.As(err, &he):
		return strconv.Itoa(he.Status) + " " + he.Code
	case errors.As(err, &ce):
		return "check"
	case errors.As(err, &ue), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return "transport"
	}
	return "client"
}

// checkError is an answer that went through but does not say what the
// server's rules demand (a chip that is not active after its enrolment, a
// login without a session).
type checkError struct{ msg string }

func (e *checkError) Error() string { return e.msg }

func checkFailed(format string, args ...any) error {
	return &checkError{fmt.Sprintf(format, args...)}
}

// progress prints a line on w every interval until the returned function
// is called; that function prints the final line and returns once the
// printer has stopped.
func progress(w io.Writer, every time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line(time.Since(start)))
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			fmt.Fprintln(w, line(time.Since(start)))
		})
	}
}

// progressEvery is how often long work prints a progress line.
const progressEvery = 5 * time.Second

// forEach calls f for 0..n-1 on the given number of workers. The first
// error cancels the others' context and is returned; a cancelled parent
// context returns its error.
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for w := range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, w, i); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// setUp calls each for 0..n-1 on workers, printing progress as what, and
// returns the seconds it took; the first error stops it.
func (l *loader) setUp(ctx context.Context, what string, n, workers int, each func(ctx context.Context, i int) error) (float64, error) {
	var done atomic.Int64
	stop := progress(l.progress, progressEvery, func(el time.Duration) string {
		return fmt.Sprintf("load: %s: %d/%d in %.0f s", what, done.Load(), n, el.Seconds())
	})
	start := time.Now()
	err := forEach(ctx, n, workers, func(ctx context.Context, _, i int) error {
		if err := each(ctx, i); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	stop()
	return time.Since(start).Seconds(), err
}

// deal gives the items to workers in turn: worker w owns items w,
// w+workers, ...
func deal[T any](items []T, workers int) [][]T {
	own := make([][]T, workers)
	for i, it := range items {
		own[i%workers] = append(own[i%workers], it)
	}
	return own
}

// loadAverage returns the 1, 5 and 15 minute load averages of the machine
// (/proc/loadavg), or nil where there is none.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return out
}

// thousands formats v rounded to a whole number, with commas between
// thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5*sign(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
