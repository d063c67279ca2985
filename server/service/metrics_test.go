package service_test

import (
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// eventMetrics records the login successes it is told of, by kind: from
// the events (Events) and, when counter is set, from LoginSucceeded.
type eventMetrics struct {
	mu        sync.Mutex
	successes map[string]int
}

func (m *eventMetrics) StoreCall(string, time.Duration, error) {}
func (m *eventMetrics) Checked(string)                         {}
func (m *eventMetrics) Events(events []domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		if e.Type == domain.EventLoginSucceeded {
			m.successes[e.Details["kind"]]++
		}
	}
}

func (m *eventMetrics) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.successes[kind]
}

// counterMetrics is eventMetrics with LoginSucceeded.
type counterMetrics struct{ eventMetrics }

func (m *counterMetrics) LoginSucceeded(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.successes[kind]++
}

var _ service.LoginCounter = (*counterMetrics)(nil)

// TestPasswordSuccessCounted: a right password with no failures to reset
// is not written until the second factor is, but its success is counted
// at once, one success per right password, whether the metrics take it
// as an event or through LoginSucceeded; a wrong one counts no success.
func TestPasswordSuccessCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    interface {
			service.Metrics
			count(string) int
		}
	}{
		{"events", &eventMetrics{successes: map[string]int{}}},
		{"login counter", &counterMetrics{eventMetrics{successes: map[string]int{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *service.Options) { o.Metrics = tc.m })
			e.identity("alice")
			for i := 1; i <= 2; i++ {
				if _, err := e.loginPassword("alice", thePassword); err != nil {
					t.Fatal(err)
				}
				if got := tc.m.count("password"); got != i {
					t.Fatalf("after %d right passwords, %d password successes counted", i, got)
				}
			}
			if _, err := e.loginPassword("alice", "wrong guess!"); err == nil {
				t.Fatal("a wrong password was accepted")
			}
			if got := tc.m.count("password"); got != 2 {
				t.Fatalf("a wrong password made the count %d", got)
			}
		})
	}
}
