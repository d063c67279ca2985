package api

import (
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

// Metrics counts what the server does and serves it in the Prometheus
// text exposition format, with github.com/prometheus/client_golang: each
// Metrics has a registry of its own with the Go runtime's and the
// process's collectors (go_*, process_*), the server's counters and
// histograms, and the state of the argon2id memory budget
// (secrets.CurrentLimiter). It is safe for concurrent use and takes no
// lock of its own; the zero value is not usable: use NewMetrics.
type Metrics struct {
	reg         *prometheus.Registry
	handler     http.Handler
	requests    *prometheus.CounterVec   // route, status
	reqDuration *prometheus.HistogramVec // route
	logins      *prometheus.CounterVec   // kind, outcome
	suspensions *prometheus.CounterVec   // kind
	blocks      *prometheus.CounterVec   // kind, reason
	checks      *prometheus.CounterVec   // kind
	storeCalls  *prometheus.HistogramVec // op
	storeErrors *prometheus.CounterVec   // op

	// The series of the request paths, found once by their labels: a
	// vector's WithLabelValues hashes the labels and takes a lock on
	// every call. The label values are a fixed set (route patterns,
	// status codes the server writes, store operations, kinds, causes).
	reqSeries   labelCache[reqKey, reqSeries]
	storeSeries labelCache[string, prometheus.Observer]
	storeErrs   labelCache[string, prometheus.Counter]
	checkSeries labelCache[string, prometheus.Counter]
	loginSeries labelCache[[2]string, prometheus.Counter]
}

type reqKey struct {
	route  string
	status int
}

type reqSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// labelCache maps label values to their series. Reads take no lock: the
// map is replaced, never changed, when a new key comes.
type labelCache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

// get returns the series of k, made by mk the first time.
func (c *labelCache[K, V]) get(k K, mk func(K) V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	m := make(map[K]V, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	v := mk(k)
	m[k] = v
	c.m.Store(&m)
	return v
}

var (
	_ service.Metrics      = (*Metrics)(nil)
	_ service.LoginCounter = (*Metrics)(nil)
	_ http.Handler         = (*Metrics)(nil)
)

// Buckets of the latency histograms, in seconds.
var (
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	storeBuckets   = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
)

// NewMetrics returns empty metrics in a registry of their own.
func NewMetrics() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		requests:    counter("authbench_http_requests_total", "HTTP requests by route pattern and status code.", "route", "status"),
		reqDuration: histogram("authbench_http_request_duration_seconds", "HTTP request durations by route pattern.", requestBuckets, "route"),
		logins:      counter("authbench_logins_total", "Login attempts by authenticator kind and outcome (success, a failure cause, or refused).", "kind", "outcome"),
		suspensions: counter("authbench_suspensions_total", "Authenticators suspended (temporarily blocked), by kind.", "kind"),
		blocks:      counter("authbench_blocks_total", "Authenticators blocked permanently, by kind and reason.", "kind", "reason"),
		checks: counter("authbench_verifier_checks_total", "Guesses evaluated against a secret (a password or PIN against its verifier, a code against the TOTP secret, "+
			"a chip assertion against the credential key), by authenticator kind; each after its attempt was reserved.", "kind"),
		storeCalls:  histogram("authbench_store_duration_seconds", "Store call latencies by operation.", storeBuckets, "op"),
		storeErrors: counter("authbench_store_errors_total", "Store calls that returned an error, by operation.", "op"),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.reqDuration, m.logins, m.suspensions, m.blocks, m.checks, m.storeCalls, m.storeErrors,
	)
	m.reg.MustRegister(argon2Metrics()...)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// argon2Metrics read the process-wide argon2id limiter when scraped: the
// budget of password and PIN hashes, what they hold, how many run, wait
// and were refused (answered 503 busy). The refused count starts again
// when the limiter is replaced (secrets.SetLimiter), as a counter of a
// restarted process does.
func argon2Metrics() []prometheus.Collector {
	gauge := func(name, help string, f func(l *secrets.Limiter) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(secrets.CurrentLimiter()) })
	}
	return []prometheus.Collector{
		gauge("authbench_argon2id_memory_budget_bytes", "Memory that password and PIN hashes (argon2id) may hold at once (serve --argon2-memory-budget).",
			func(l *secrets.Limiter) float64 { return float64(l.Budget()) * 1024 }),
		gauge("authbench_argon2id_memory_in_use_bytes", "Memory the password and PIN hashes running now hold from the budget.",
			func(l *secrets.Limiter) float64 { return float64(l.InUse()) * 1024 }),
		gauge("authbench_argon2id_memory_peak_bytes", "The most memory password and PIN hashes held at once.",
			func(l *secrets.Limiter) float64 { return float64(l.Peak()) * 1024 }),
		gauge("authbench_argon2id_running", "Password and PIN hashes running now.",
			func(l *secrets.Limiter) float64 { return float64(l.Running()) }),
		gauge("authbench_argon2id_waiting", "Password and PIN hashes waiting for room in the budget now (at most serve --argon2-wait).",
			func(l *secrets.Limiter) float64 { return float64(l.Waiting()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "authbench_argon2id_refused_total",
			Help: "Password and PIN hashes that found no room in time: the requests were answered 503 busy."},
			func() float64 { return float64(secrets.CurrentLimiter().Refused()) }),
	}
}

// ServeHTTP serves the metrics (GET /metrics): the text format, compressed
// when the client accepts gzip.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// WriteTo writes the metrics in the Prometheus text format (version
// 0.0.4).
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: w}
	enc := expfmt.NewEncoder(cw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (m *Metrics) request(route string, status int, d time.Duration) {
	rs := m.reqSeries.get(reqKey{route, status}, func(k reqKey) reqSeries {
		return reqSeries{
			count:    m.requests.WithLabelValues(k.route, strconv.Itoa(k.status)),
			duration: m.reqDuration.WithLabelValues(k.route),
		}
	})
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

// StoreCall records the latency of a store call (service.Metrics).
func (m *Metrics) StoreCall(op string, d time.Duration, err error) {
	m.storeSeries.get(op, func(op string) prometheus.Observer { return m.storeCalls.WithLabelValues(op) }).Observe(d.Seconds())
	if err != nil {
		m.storeErrs.get(op, func(op string) prometheus.Counter { return m.storeErrors.WithLabelValues(op) }).Inc()
	}
}

// Checked counts one evaluation of a secret against its verifier
// (service.Metrics): authbench_verifier_checks_total.
func (m *Metrics) Checked(kind string) {
	m.checkSeries.get(kind, func(kind string) prometheus.Counter { return m.checks.WithLabelValues(kind) }).Inc()
}

// login counts one login attempt of kind with outcome.
func (m *Metrics) login(kind, outcome string) {
	m.loginSeries.get([2]string{kind, outcome}, func(k [2]string) prometheus.Counter { return m.logins.WithLabelValues(k[0], k[1]) }).Inc()
}

// LoginSucceeded counts a login success of kind, as Events counts an
// EventLoginSucceeded (service.LoginCounter).
func (m *Metrics) LoginSucceeded(kind string) { m.login(kind, "success") }

// Events counts the lifecycle events the store has stored
// (service.Metrics).
func (m *Metrics) Events(events []domain.Event) {
	for _, e := range events {
		kind := e.Details["kind"]
		switch e.Type {
		case domain.EventLoginSucceeded:
			m.login(kind, "success")
		case domain.EventLoginFailed:
			m.login(kind, e.Details["cause"])
		case domain.EventRefused:
			if e.Details["op"] == string(domain.OpLogin) {
				m.login(kind, "refused")
			}
		case domain.EventSuspended:
			m.suspensions.WithLabelValues(kind).Inc()
		case domain.EventBlocked:
			m.blocks.WithLabelValues(kind, e.Reason).Inc()
		}
	}
}
