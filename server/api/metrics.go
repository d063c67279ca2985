package api

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// Metrics counts what the server does and writes it in the Prometheus text
// exposition format (version 0.0.4). It is safe for concurrent use; the
// zero value is not: use NewMetrics.
type Metrics struct {
	mu          sync.Mutex
	requests    map[labels]uint64     // route, status
	reqDuration map[labels]*histogram // route
	logins      map[labels]uint64     // kind, outcome
	suspensions map[labels]uint64     // kind
	blocks      map[labels]uint64     // kind, reason
	checks      map[labels]uint64     // kind
	storeCalls  map[labels]*histogram // op
	storeErrors map[labels]uint64     // op
}

// labels is a fixed list of label values (names are per metric).
type labels [2]string

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		requests:    map[labels]uint64{},
		reqDuration: map[labels]*histogram{},
		logins:      map[labels]uint64{},
		suspensions: map[labels]uint64{},
		blocks:      map[labels]uint64{},
		checks:      map[labels]uint64{},
		storeCalls:  map[labels]*histogram{},
		storeErrors: map[labels]uint64{},
	}
}

// Buckets of the latency histograms, in seconds.
var (
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	storeBuckets   = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
)

type histogram struct {
	bounds []float64
	counts []uint64 // per bound, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

func (m *Metrics) request(route string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[labels{route, strconv.Itoa(status)}]++
	h := m.reqDuration[labels{route}]
	if h == nil {
		h = newHistogram(requestBuckets)
		m.reqDuration[labels{route}] = h
	}
	h.observe(d.Seconds())
}

var _ service.Metrics = (*Metrics)(nil)

// StoreCall records the latency of a store call (service.Metrics).
func (m *Metrics) StoreCall(op string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.storeCalls[labels{op}]
	if h == nil {
		h = newHistogram(storeBuckets)
		m.storeCalls[labels{op}] = h
	}
	h.observe(d.Seconds())
	if err != nil {
		m.storeErrors[labels{op}]++
	}
}

// Checked counts one evaluation of a secret against its verifier
// (service.Metrics): authbench_verifier_checks_total.
func (m *Metrics) Checked(kind string) {
	m.mu.Lock()
	m.checks[labels{kind}]++
	m.mu.Unlock()
}

// Events counts the lifecycle events the store has stored
// (service.Metrics).
func (m *Metrics) Events(events []domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		kind := e.Details["kind"]
		switch e.Type {
		case domain.EventLoginSucceeded:
			m.logins[labels{kind, "success"}]++
		case domain.EventLoginFailed:
			m.logins[labels{kind, e.Details["cause"]}]++
		case domain.EventRefused:
			if e.Details["op"] == string(domain.OpLogin) {
				m.logins[labels{kind, "refused"}]++
			}
		case domain.EventSuspended:
			m.suspensions[labels{kind}]++
		case domain.EventBlocked:
			m.blocks[labels{kind, e.Reason}]++
		}
	}
}

// WriteTo writes the metrics in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := &countWriter{w: bufio.NewWriter(w)}
	counter(bw, "authbench_http_requests_total", "HTTP requests by route pattern and status code.", []string{"route", "status"}, m.requests)
	histograms(bw, "authbench_http_request_duration_seconds", "HTTP request durations by route pattern.", "route", m.reqDuration)
	counter(bw, "authbench_logins_total", "Login attempts by authenticator kind and outcome (success, a failure cause, or refused).", []string{"kind", "outcome"}, m.logins)
	counter(bw, "authbench_suspensions_total", "Authenticators suspended (temporarily blocked), by kind.", []string{"kind"}, m.suspensions)
	counter(bw, "authbench_blocks_total", "Authenticators blocked permanently, by kind and reason.", []string{"kind", "reason"}, m.blocks)
	counter(bw, "authbench_verifier_checks_total", "Guesses evaluated against a secret (a password or PIN against its verifier, a code against the TOTP secret, a chip assertion against the credential key), by authenticator kind; each after its attempt was reserved.", []string{"kind"}, m.checks)
	histograms(bw, "authbench_store_duration_seconds", "Store call latencies by operation.", "op", m.storeCalls)
	counter(bw, "authbench_store_errors_total", "Store calls that returned an error, by operation.", []string{"op"}, m.storeErrors)
	err := bw.w.(*bufio.Writer).Flush()
	if err == nil {
		err = bw.err
	}
	return bw.n, err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) printf(format string, args ...any) {
	if c.err != nil {
		return
	}
	n, err := fmt.Fprintf(c.w, format, args...)
	c.n += int64(n)
	c.err = err
}

func sortedKeys[V any](m map[labels]V) []labels {
	keys := make([]labels, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}

func labelString(names []string, l labels) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + `="` + escapeLabel(l[i]) + `"`)
	}
	return b.String()
}

// escapeLabel escapes a label value (backslash, double quote, newline).
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func counter(w *countWriter, name, help string, names []string, m map[labels]uint64) {
	w.printf("# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	for _, k := range sortedKeys(m) {
		w.printf("%s{%s} %d\n", name, labelString(names, k), m[k])
	}
}

func histograms(w *countWriter, name, help, label string, m map[labels]*histogram) {
	w.printf("# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for _, k := range sortedKeys(m) {
		h := m[k]
		lv := label + `="` + escapeLabel(k[0]) + `"`
		var cum uint64
		for i, b := range h.bounds {
			cum += h.counts[i]
			w.printf("%s_bucket{%s,le=\"%s\"} %d\n", name, lv, formatFloat(b), cum)
		}
		w.printf("%s_bucket{%s,le=\"+Inf\"} %d\n", name, lv, h.n)
		w.printf("%s_sum{%s} %s\n", name, lv, formatFloat(h.sum))
		w.printf("%s_count{%s} %d\n", name, lv, h.n)
	}
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
