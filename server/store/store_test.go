package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// chainFunc adapts a function to store.Chainer.
type chainFunc func(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error)

func (f chainFunc) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	return f(prev, e)
}

func TestLink(t *testing.T) {
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	e := domain.Event{Type: domain.EventBlocked, IdentityID: "id-1", AuthenticatorID: "a-1", At: at}
	prev := &store.AuditRecord{Seq: 4, Hash: []byte("h4"), IdentityID: "id-1"}
	good := store.AuditRecord{Seq: 5, PrevHash: []byte("h4"), Hash: []byte("h5"), Body: []byte("{}")}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		prev *store.AuditRecord
		rec  store.AuditRecord
		err  error
		want error // nil, store.ErrInvalid or boom
	}{
		{"follows", prev, good, nil, nil},
		{"first", nil, store.AuditRecord{Seq: 1, PrevHash: make([]byte, 32), Hash: []byte("h1"), Body: []byte("{}")}, nil, nil},
		{"first not 1", nil, store.AuditRecord{Seq: 2, Hash: []byte("h"), Body: []byte("{}")}, nil, store.ErrInvalid},
		{"gap", prev, store.AuditRecord{Seq: 6, PrevHash: []byte("h4"), Hash: []byte("h"), Body: []byte("{}")}, nil, store.ErrInvalid},
		{"fork", prev, store.AuditRecord{Seq: 5, PrevHash: []byte("h3"), Hash: []byte("h"), Body: []byte("{}")}, nil, store.ErrInvalid},
		{"no hash", prev, store.AuditRecord{Seq: 5, PrevHash: []byte("h4"), Body: []byte("{}")}, nil, store.ErrInvalid},
		{"no body", prev, store.AuditRecord{Seq: 5, PrevHash: []byte("h4"), Hash: []byte("h")}, nil, store.ErrInvalid},
		{"chainer error", prev, store.AuditRecord{}, boom, boom},
		{"head of another chain", &store.AuditRecord{Seq: 4, Hash: []byte("h4"), IdentityID: "id-2"}, good, nil, store.ErrInvalid},
	} {
		c := chainFunc(func(*store.AuditRecord, domain.Event) (store.AuditRecord, error) { return tc.rec, tc.err })
		r, err := store.Link(c, tc.prev, e)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil && (r.Type != e.Type || r.IdentityID != "id-1" || r.AuthenticatorID != "a-1" || !r.At.Equal(at)) {
			t.Errorf("%s: index fields not filled from the event: %+v", tc.name, r)
		}
	}
	if _, err := store.Link(nil, nil, e); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Link without a chainer: %v", err)
	}
}

func TestAuditCheckpointCheck(t *testing.T) {
	good := store.AuditCheckpoint{Seq: 1, KeyID: "k1", Body: []byte{1}, MAC: []byte{2}}
	if err := good.Check(); err != nil {
		t.Fatalf("Check = %v", err)
	}
	for name, c := range map[string]store.AuditCheckpoint{
		"seq 0":    {Body: []byte{1}, MAC: []byte{2}},
		"seq 2^63": {Seq: 1 << 63, Body: []byte{1}, MAC: []byte{2}},
		"no body":  {Seq: 1, MAC: []byte{2}},
		"no MAC":   {Seq: 1, Body: []byte{1}},
	} {
		if err := c.Check(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
}

func TestElementCheck(t *testing.T) {
	sealed := store.Sealed{KeyID: "k1", Blob: []byte("b")}
	for _, tc := range []struct {
		name string
		kind device.Kind
		el   store.Element
		ok   bool
	}{
		{"chip", device.KindChip, store.Element{Chip: &store.ChipElement{PublicKey: []byte{1}, AAGUID: make([]byte, 16)}}, true},
		{"chip without AAGUID", device.KindChip, store.Element{Chip: &store.ChipElement{PublicKey: []byte{1}}}, true},
		{"chip AAGUID 15", device.KindChip, store.Element{Chip: &store.ChipElement{PublicKey: []byte{1}, AAGUID: make([]byte, 15)}}, false},
		{"code display", device.KindCodeDisplay, store.Element{Code: &store.CodeElement{Secret: sealed}}, true},
		{"audio reader 8 digits", device.KindAudioCodeReader, store.Element{Code: &store.CodeElement{Secret: sealed, OTPParams: store.OTPParams{Digits: 8, Period: time.Minute, Algorithm: 3}}}, true},
		{"code period 65537 s", device.KindCodeDisplay, store.Element{Code: &store.CodeElement{Secret: sealed, OTPParams: store.OTPParams{Period: 65537 * time.Second}}}, false},
		{"code negative period", device.KindCodeDisplay, store.Element{Code: &store.CodeElement{Secret: sealed, OTPParams: store.OTPParams{Period: -time.Second}}}, false},
		{"code step 2^63", device.KindCodeDisplay, store.Element{Code: &store.CodeElement{Secret: sealed, HighestStep: 1 << 63}}, false},
		{"code for a chip", device.KindChip, store.Element{Code: &store.CodeElement{Secret: sealed}}, false},
		{"app", device.KindApp, store.Element{App: &store.AppElement{PublicKey: []byte{1}, PINVerifier: "v"}}, true},
		{"app without PIN", device.KindApp, store.Element{App: &store.AppElement{PublicKey: []byte{1}}}, false},
		{"password", device.KindPassword, store.Element{Password: &store.PasswordElement{Verifier: "v"}}, true},
		{"unknown kind", "abacus", store.Element{Password: &store.PasswordElement{Verifier: "v"}}, false},
	} {
		err := tc.el.Check(tc.kind)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
