package code_test

import (
	"context"
	"fmt"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/sim/code"
)

// A factory-fresh code display with the RFC 6238 test secret, reached over
// an in-memory CDP/1 link: set its clock to T = 59 s (RFC 6238 Appendix B),
// press, and read the code.
func Example() {
	ctx := context.Background()
	d, err := code.New(code.Options{
		Secret:    []byte("12345678901234567890"),
		Digits:    8,
		Algorithm: otp.SHA1,
		Factory:   true,
		// A clock that stands still, so that the output is always the same.
		Now: func() time.Time { return time.Unix(1_000_000_000, 0) },
	})
	if err != nil {
		panic(err)
	}
	host := code.Pipe(d, nil)
	defer host.Close()

	if err := host.SetClock(ctx, time.Unix(59, 0)); err != nil {
		panic(err)
	}
	c, err := host.Press(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Step, c.Digits, c.ValidFor)
	// Output: 1 94287082 1s
}
