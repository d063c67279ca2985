package usb

import "context"

// Poller takes Watch's lists one at a time, when a test says so.
type Poller struct{ w watcher }

// Poll lists the keys as Watch does and returns the events since the last
// Poll.
func (p *Poller) Poll(ctx context.Context) ([]Event, error) {
	cur, err := sight(ctx)
	if err != nil {
		return nil, err
	}
	return p.w.next(cur), nil
}

// HeldPolls is how many lists Watch holds back a key it cannot open.
const HeldPolls = heldPolls
