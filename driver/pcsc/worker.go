package pcsc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/authbench/authbench/device"
)

// worker runs PC/SC calls one after another on a goroutine of its own.
//
// A PC/SC call cannot be interrupted: SCardTransmit waits in pcscd until the
// card answers or goes away, and only SCardGetStatusChange listens to
// SCardCancel. So the calls run here, and a caller waits for the result or
// for its context, whichever comes first. A call whose caller gave up still
// runs to its end on the worker, and what it leaves behind (a transaction)
// is undone by the functions queued after it; the order of the queue is the
// order of the calls.
type worker struct {
	mu      sync.Mutex
	queue   []func()
	stopped bool
	wake    chan struct{} // capacity 1: something was queued or stop was called
	done    chan struct{} // closed when the goroutine has returned
}

func newWorker() *worker {
	w := &worker{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *worker) loop() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.stopped {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		f := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		f()
	}
}

// post queues f. It never blocks, and reports false (dropping f) once stop
// has been called.
func (w *worker) post(f func()) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, f)
	w.mu.Unlock()
	w.signal()
	return true
}

// stop refuses further posts; the goroutine returns after the queued
// functions have run. Done is closed then.
func (w *worker) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.signal()
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// States of a call, shared by the caller and the worker.
const (
	callPending int32 = iota
	callDelivered
	callAbandoned
)

type outcome[T any] struct {
	v   T
	err error
}

// call runs f on w and returns its result, or gives up when ctx ends: then
// it returns an error wrapping the context's error (and device.ErrTimeout
// for a deadline) at once, while f, if it has started, runs to its end on
// the worker and its result is dropped. A call whose context has ended
// before the worker reaches it is skipped. Errors of f carrying a PC/SC
// Code come back as *Error{op, reader, code}. After stop, call returns an
// error wrapping device.ErrClosed.
func call[T any](ctx context.Context, w *worker, op, reader string, f func() (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, ctxError(op, reader, ctx)
	}
	ch := make(chan outcome[T], 1)
	var state atomic.Int32
	ok := w.post(func() {
		if ctx.Err() != nil {
			if state.CompareAndSwap(callPending, callDelivered) {
				ch <- outcome[T]{err: ctxError(op, reader, ctx)}
			}
			return
		}
		v, err := f()
		if state.CompareAndSwap(callPending, callDelivered) {
			ch <- outcome[T]{v, wrapCode(op, reader, err)}
		}
	})
	if !ok {
		return zero, fmt.Errorf("pcsc: %s: %w", op, device.ErrClosed)
	}
	select {
	case o := <-ch:
		return o.v, o.err
	case <-ctx.Done():
		if state.CompareAndSwap(callPending, callAbandoned) {
			return zero, ctxError(op, reader, ctx)
		}
		o := <-ch
		return o.v, o.err
	}
}
