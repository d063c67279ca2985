package pcsc

import "time"

// The seam: everything this package needs from libpcsclite, and nothing
// more. scard_cgo.go implements it over github.com/ebfe/scard; the tests
// implement it with fakes, so the logic above it (transactions, deadlines,
// error mapping, watching readers, the U2F fallback) runs without pcscd.
//
// Every method may block in pcscd for as long as pcscd likes; callers run
// them on a worker goroutine (see worker.go) so that a context can give up
// waiting. Errors that carry a PC/SC return code are a Code.

// system establishes PC/SC contexts (SCardEstablishContext).
type system interface {
	Establish() (sysContext, error)
}

// sysContext is one PC/SC context (SCARDCONTEXT). Cancel may be called from
// any goroutine while GetStatusChange blocks; the other methods are called
// one at a time.
type sysContext interface {
	ListReaders() ([]string, error)                                    // SCardListReaders
	GetStatusChange(states []readerState, timeout time.Duration) error // SCardGetStatusChange
	Cancel() error                                                     // SCardCancel
	Connect(reader string, exclusive bool) (sysCard, error)            // SCardConnect, T=0 or T=1
	Release() error                                                    // SCardReleaseContext
}

// sysCard is one connection to a card (SCARDHANDLE). Methods are called one
// at a time.
type sysCard interface {
	Transmit(cmd []byte) ([]byte, error) // SCardTransmit
	Begin() error                        // SCardBeginTransaction
	End() error                          // SCardEndTransaction(SCARD_LEAVE_CARD)
	Status() (atr []byte, err error)     // SCardStatus
	Reconnect(exclusive bool) error      // SCardReconnect(SCARD_LEAVE_CARD)
	Disconnect() error                   // SCardDisconnect(SCARD_LEAVE_CARD)
}

// readerState is SCARD_READERSTATE: the state the caller knows (Current)
// and, after GetStatusChange, the state pcscd reports (Event) with the ATR.
// The upper 16 bits of both hold pcsc-lite's event counter for the reader.
type readerState struct {
	Reader  string
	Current uint32
	Event   uint32
	ATR     []byte
}

// Reader state flags (SCARD_STATE_*, pcsclite.h).
const (
	stateUnaware     uint32 = 0x0000
	stateChanged     uint32 = 0x0002
	stateUnknown     uint32 = 0x0004
	stateUnavailable uint32 = 0x0008
	stateEmpty       uint32 = 0x0010
	statePresent     uint32 = 0x0020
	stateExclusive   uint32 = 0x0080
	stateInUse       uint32 = 0x0100
	stateMute        uint32 = 0x0200
)

// pnpReader is pcsc-lite's pseudo reader whose state changes when readers
// are added or removed; the upper 16 bits of its state count the readers.
const pnpReader = `\\?PnP?\Notification`
