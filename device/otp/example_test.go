package otp_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device/otp"
)

func ExampleTOTP_Verify() {
	p := &otp.TOTP{Secret: []byte("12345678901234567890"), Digits: 8}
	now := time.Unix(1111111111, 0)
	var highest uint64 // highest time step used so far, stored by the server

	m, err := p.Verify("14050471", now, 1, highest)
	fmt.Println(m.Step, m.Drift, err)
	highest = m.Step

	_, err = p.Verify("14050471", now, 1, highest)
	fmt.Println(errors.Is(err, otp.ErrReplayed))
	// Output:
	// 37037037 0 <nil>
	// true
}
