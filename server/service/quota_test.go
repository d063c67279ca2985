package service_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// TestConcurrentAddsKeepQuotas adds chips, apps and code devices to one
// identity from 16 goroutines per kind at once (DESIGN §1: one chip, three
// apps, one code device): exactly the quota is stored, every other add is
// refused with domain.ErrQuotaExceeded.
func TestConcurrentAddsKeepQuotas(t *testing.T) {
	const n = 16
	e := newEnv(t)
	e.identity("alice")

	// Chips are stored when their registration finishes: begin and
	// register all of them first, so that the finishes race.
	type reg struct {
		aid string
		req service.ActivateRequest
	}
	chips := make([]reg, n)
	for i := range chips {
		res, err := e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip"})
		if err != nil {
			t.Fatalf("begin chip %d: %v", i, err)
		}
		act := res.Activation.(service.ChipActivation)
		c := newChip(t, fmt.Sprint("chip-", i), chipOpts())
		cred, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
		if err != nil {
			t.Fatalf("register chip %d: %v", i, err)
		}
		chips[i] = reg{res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: cred}}
	}
	var codes []servicetest.CodeDevice
	for i := range n {
		codes = append(codes, codeDevice(fmt.Sprint("KV-", i)))
	}
	e.importCode(codes...)
	pubs := make([]string, n)
	for i := range pubs {
		_, pubs[i] = appKey(t)
	}

	kinds := []string{"chip", "app", "code device"}
	errs := make(map[string][]error)
	for _, k := range kinds {
		errs[k] = make([]error, n)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs["chip"][i] = e.svc.Activate(e.ctx, support, "alice", chips[i].aid, chips[i].req)
		})
		wg.Go(func() {
			<-start
			_, errs["app"][i] = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "app", PublicKey: pubs[i], PIN: "428613"})
		})
		wg.Go(func() {
			<-start
			kind := device.KindCodeDisplay
			if i%2 == 1 {
				kind = device.KindAudioCodeReader // shares the code display's quota
			}
			_, errs["code device"][i] = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: string(kind), Serial: codes[i].Serial})
		})
	}
	close(start)
	wg.Wait()

	want := map[string]int{"chip": 1, "app": 3, "code device": 1}
	for _, k := range kinds {
		wins := 0
		for i, err := range errs[k] {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, domain.ErrQuotaExceeded):
				t.Errorf("%s %d: %v, want nil or %q", k, i, err, domain.ErrQuotaExceeded)
			}
		}
		if wins != want[k] {
			t.Errorf("%d of %d concurrent %s adds succeeded, want exactly %d", wins, n, k, want[k])
		}
	}

	v, err := e.svc.Identity(e.ctx, support, "alice")
	if err != nil {
		t.Fatal(err)
	}
	held := map[device.Kind]int{}
	for _, a := range v.Authenticators {
		held[a.Kind]++
	}
	if held[device.KindChip] != 1 || held[device.KindApp] != 3 ||
		held[device.KindCodeDisplay]+held[device.KindAudioCodeReader] != 1 || held[device.KindPassword] != 1 {
		t.Errorf("stored authenticators per kind: %v, want 1 chip, 3 apps, 1 code device, 1 password", held)
	}
}
