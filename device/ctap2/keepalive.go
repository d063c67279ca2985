package ctap2

import "context"

// KeepaliveStatus is the status a waiting authenticator reports
// (CTAP 2.1 §11.2.9.1.7 CTAPHID_KEEPALIVE; also the byte after SW 9100 in
// §11.3.4 NFCCTAP_GETRESPONSE).
type KeepaliveStatus byte

// Keepalive statuses.
const (
	StatusProcessing KeepaliveStatus = 1 // the authenticator is still working
	StatusUPNeeded   KeepaliveStatus = 2 // waiting for a touch (user presence)
)

type keepaliveKey struct{}

// WithKeepalive returns a context that carries f. On the host side, transports
// call f for every keepalive the authenticator sends, so a program can say
// "touch your chip". On the device side, transports put a function in the
// context before they call the authenticator, and the authenticator reports
// through Keepalive what it is waiting for; the transport then repeats that
// status on the wire until the answer is ready.
func WithKeepalive(ctx context.Context, f func(KeepaliveStatus)) context.Context {
	return context.WithValue(ctx, keepaliveKey{}, f)
}

// Keepalive reports status s to the function stored by WithKeepalive, if any.
func Keepalive(ctx context.Context, s KeepaliveStatus) {
	if f, ok := ctx.Value(keepaliveKey{}).(func(KeepaliveStatus)); ok && f != nil {
		f(s)
	}
}
