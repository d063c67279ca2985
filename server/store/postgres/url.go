package postgres

import (
	"net"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ParseURL parses a postgres:// URL or key=value connection string as
// pgxpool does (pool_max_conns and the other pool settings are taken out
// of it), except that a server on this machine is reached without TLS
// unless the connection asks for TLS: when every host it names is a
// loopback address (a literal IP) or a Unix socket directory, and neither
// the string nor the environment says anything about TLS (sslmode,
// sslrootcert, ..., channel_binding, a service file, $PGSSL...), the TLS
// attempt of pgx's default, sslmode=prefer, is dropped. That attempt
// checks no certificate, so it proves nothing about the server, and
// traffic that never leaves the machine needs no encryption; it costs
// both sides CPU on every round trip (a fifth of PostgreSQL's CPU time
// per login, measured with authbench load). sslmode=require (or
// verify-ca, verify-full, prefer) in the URL keeps TLS.
func ParseURL(url string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if asksTLS(url) || !local(pc.ConnConfig.Host) {
		return pc, nil
	}
	for _, f := range pc.ConnConfig.Fallbacks {
		if !local(f.Host) {
			return pc, nil
		}
	}
	cfg := &pc.ConnConfig.Config
	cfg.TLSConfig = nil
	var fbs []*pgconn.FallbackConfig
	for _, f := range cfg.Fallbacks {
		if f.TLSConfig != nil || f.Host == cfg.Host && f.Port == cfg.Port {
			continue // dropped, or the main config itself
		}
		fbs = append(fbs, f)
	}
	cfg.Fallbacks = fbs
	return pc, nil
}

// asksTLS reports whether a connection string or the environment says
// anything about TLS or names a service (whose file may).
func asksTLS(url string) bool {
	s := strings.ToLower(url)
	for _, k := range []string{"ssl", "channel_binding", "service", "gss"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	for _, kv := range os.Environ() {
		for _, p := range []string{"PGSSL", "PGCHANNELBINDING=", "PGSERVICE", "PGGSS", "PGREQUIRESSL="} {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
	}
	return false
}

// local reports whether host is this machine: a literal loopback address
// or the directory of a Unix socket. A name, even "localhost", is not: it
// is resolved only when pgx dials, and a resolver may send it elsewhere.
func local(host string) bool {
	if strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
