package api

import (
	"time"

	"github.com/authbench/authbench/server/service"
)

// Rate is a token bucket: Burst tokens at most, one more every Every. The
// zero Rate takes the default of the field it is in; Every < 0 turns that
// limit off.
type Rate = service.Rate

// RateLimit configures the login rate limits (see the package doc).
type RateLimit struct {
	// PerSource limits the login and activation requests of one client
	// address, before anything is looked up; default bursts of 60, then
	// one every 100 ms.
	PerSource Rate
	// PerAuthenticator limits the checks of one authenticator's secret,
	// keyed on the identity and authenticator once they are resolved, so
	// that requests with made-up IDs cost the owner nothing; default
	// bursts of 30, then one every 200 ms (service.DefaultLoginLimit). The
	// service applies it: pass it as service.Options.LoginLimit (the
	// embedded server does).
	PerAuthenticator Rate
}

// DefaultPerSource is the default of RateLimit.PerSource.
var DefaultPerSource = Rate{Burst: 60, Every: 100 * time.Millisecond}
