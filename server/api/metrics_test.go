package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/secrets"
)

// scrape gets /metrics and parses it with the Prometheus text parser.
func (s *server) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	r := s.do("GET", "/metrics", "", nil)
	s.want(r, 200, "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		s.t.Fatalf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.raw))
	if err != nil {
		s.t.Fatalf("/metrics does not parse: %v\n%s", err, r.raw)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want ("k=v" pairs), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsExposition: /metrics is Prometheus text that the Prometheus
// parser reads, with the Go runtime's and the process's families, every
// authbench metric with its type and labels, and the argon2id budget's
// state: what is held, what runs, what waits, what was refused busy.
func TestMetricsExposition(t *testing.T) {
	s := start(t)
	s.createIdentity("alice", "correct horse")
	s.want(s.passwordLogin("alice", "wrong", ""), 401, "wrong_password")
	s.want(s.passwordLogin("alice", "correct horse", ""), 200, "")

	lim := secrets.NewLimiter(uint64(secrets.FastParams().Memory), time.Minute)
	prev := secrets.SetLimiter(lim)
	t.Cleanup(func() { secrets.SetLimiter(prev) })
	hold, err := lim.Acquire(context.Background(), secrets.FastParams().Memory)
	if err != nil {
		t.Fatal(err)
	}
	// A login waits for room in the budget, and /metrics says so.
	done := make(chan *response, 1)
	go func() { done <- s.passwordLogin("alice", "correct horse", "") }()
	var fams map[string]*dto.MetricFamily
	for {
		fams = s.scrape()
		if value(fams, "authbench_argon2id_waiting") == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	budget := float64(secrets.FastParams().Memory) * 1024
	if value(fams, "authbench_argon2id_memory_in_use_bytes") != budget || value(fams, "authbench_argon2id_running") != 1 ||
		value(fams, "authbench_argon2id_memory_budget_bytes") != budget {
		t.Errorf("while held: in use %v, running %v, budget %v", value(fams, "authbench_argon2id_memory_in_use_bytes"),
			value(fams, "authbench_argon2id_running"), value(fams, "authbench_argon2id_memory_budget_bytes"))
	}
	hold()
	s.want(<-done, 200, "")

	// A hash that finds no room is refused busy, and counted.
	now := secrets.NewLimiter(uint64(secrets.FastParams().Memory), 0)
	secrets.SetLimiter(now)
	hold, _ = now.Acquire(context.Background(), secrets.FastParams().Memory)
	s.want(s.passwordLogin("alice", "correct horse", ""), 503, "busy")
	hold()
	fams = s.scrape()
	if v := value(fams, "authbench_argon2id_refused_total"); v != 1 {
		t.Errorf("refused busy: %v, want 1", v)
	}
	if v := value(fams, "authbench_argon2id_waiting"); v != 0 {
		t.Errorf("waiting after: %v", v)
	}

	for name, typ := range map[string]dto.MetricType{
		"authbench_http_requests_total":           dto.MetricType_COUNTER,
		"authbench_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"authbench_logins_total":                  dto.MetricType_COUNTER,
		"authbench_verifier_checks_total":         dto.MetricType_COUNTER,
		"authbench_store_duration_seconds":        dto.MetricType_HISTOGRAM,
		"authbench_argon2id_memory_budget_bytes":  dto.MetricType_GAUGE,
		"authbench_argon2id_memory_in_use_bytes":  dto.MetricType_GAUGE,
		"authbench_argon2id_memory_peak_bytes":    dto.MetricType_GAUGE,
		"authbench_argon2id_running":              dto.MetricType_GAUGE,
		"authbench_argon2id_waiting":              dto.MetricType_GAUGE,
		"authbench_argon2id_refused_total":        dto.MetricType_COUNTER,
	} {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %v", name, f, typ)
		}
	}
	var goFams, procFams int
	for name := range fams {
		goFams += b2i(strings.HasPrefix(name, "go_"))
		procFams += b2i(strings.HasPrefix(name, "process_"))
	}
	if goFams == 0 || procFams == 0 || fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Errorf("%d go_* and %d process_* families", goFams, procFams)
	}
	// The labels and values other tools read (scaletest reads the
	// verifier checks).
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"authbench_verifier_checks_total", []string{"kind=password"}, 3},
		{"authbench_logins_total", []string{"kind=password", "outcome=wrong-password"}, 1},
		{"authbench_logins_total", []string{"kind=password", "outcome=success"}, 2},
		{"authbench_http_requests_total", []string{"route=/v1/identities/{id}/login/password", "status=503"}, 1},
		{"authbench_http_request_duration_seconds", []string{"route=/v1/identities"}, 1},
	} {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Store calls and checks recorded from many goroutines at once, on series
// found once and shared, are all counted, each under its own labels.
func TestMetricsConcurrentSeries(t *testing.T) {
	m := api.NewMetrics()
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				op := fmt.Sprintf("op-%d", (w+i)%5)
				var err error
				if i%2 == 0 {
					err = errors.New("failed")
				}
				m.StoreCall(op, time.Millisecond, err)
				m.Checked("chip")
			}
		})
	}
	wg.Wait()
	var text bytes.Buffer
	if _, err := m.WriteTo(&text); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&text)
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string, counter bool) (total float64, series int) {
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			series++
			if counter {
				total += m.GetCounter().GetValue()
			} else {
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return total, series
	}
	if n, s := count("authbench_store_duration_seconds", false); n != workers*each || s != 5 {
		t.Errorf("store calls: %v in %d series, want %d in 5", n, s, workers*each)
	}
	if n, s := count("authbench_store_errors_total", true); n != workers*each/2 || s != 5 {
		t.Errorf("store errors: %v in %d series, want %d in 5", n, s, workers*each/2)
	}
	if n, s := count("authbench_verifier_checks_total", true); n != workers*each || s != 1 {
		t.Errorf("checks: %v in %d series, want %d in 1", n, s, workers*each)
	}
}
