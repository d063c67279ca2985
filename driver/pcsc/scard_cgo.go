//go:build cgo

package pcsc

import (
	"errors"
	"time"

	"github.com/ebfe/scard"
)

// This file is the only one that touches libpcsclite (through cgo and
// github.com/ebfe/scard). It translates the seam one to one; no logic lives
// here.

func defaultSystem() (system, error) { return scardSystem{}, nil }

type scardSystem struct{}

func (scardSystem) Establish() (sysContext, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, codeOf(err)
	}
	return scardContext{c}, nil
}

// codeOf turns a scard.Error into a Code, leaving other errors alone.
func codeOf(err error) error {
	var e scard.Error
	if errors.As(err, &e) {
		return Code(e)
	}
	return err
}

type scardContext struct{ c *scard.Context }

func (s scardContext) ListReaders() ([]string, error) {
	r, err := s.c.ListReaders()
	return r, codeOf(err)
}

func (s scardContext) GetStatusChange(states []readerState, timeout time.Duration) error {
	rs := make([]scard.ReaderState, len(states))
	for i, st := range states {
		rs[i] = scard.ReaderState{Reader: st.Reader, CurrentState: scard.StateFlag(st.Current)}
	}
	if err := s.c.GetStatusChange(rs, timeout); err != nil {
		return codeOf(err)
	}
	for i := range states {
		states[i].Event = uint32(rs[i].EventState)
		states[i].ATR = append([]byte(nil), rs[i].Atr...)
	}
	return nil
}

func (s scardContext) Cancel() error  { return codeOf(s.c.Cancel()) }
func (s scardContext) Release() error { return codeOf(s.c.Release()) }

func (s scardContext) Connect(reader string, exclusive bool) (sysCard, error) {
	card, err := s.c.Connect(reader, shareMode(exclusive), scard.ProtocolAny)
	if err != nil {
		return nil, codeOf(err)
	}
	return scardCard{card}, nil
}

func shareMode(exclusive bool) scard.ShareMode {
	if exclusive {
		return scard.ShareExclusive
	}
	return scard.ShareShared
}

type scardCard struct{ c *scard.Card }

func (s scardCard) Transmit(cmd []byte) ([]byte, error) {
	r, err := s.c.Transmit(cmd)
	return r, codeOf(err)
}

func (s scardCard) Begin() error { return codeOf(s.c.BeginTransaction()) }
func (s scardCard) End() error   { return codeOf(s.c.EndTransaction(scard.LeaveCard)) }

func (s scardCard) Status() ([]byte, error) {
	st, err := s.c.Status()
	if err != nil {
		return nil, codeOf(err)
	}
	return st.Atr, nil
}

func (s scardCard) Reconnect(exclusive bool) error {
	return codeOf(s.c.Reconnect(shareMode(exclusive), scard.ProtocolAny, scard.LeaveCard))
}

func (s scardCard) Disconnect() error { return codeOf(s.c.Disconnect(scard.LeaveCard)) }
