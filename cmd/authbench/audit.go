package main

import (
	"context"
	"fmt"
	"os"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/sqlite"
)

// auditCmd is `authbench audit`: one subcommand per action.
type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Verify the hash chain of the audit log, opening the database read-only."`
	List   auditListCmd   `cmd:"" help:"List the audit trail of an identity through the API (support token, or a session of the identity), recomputing each event's hash."`
}

// auditVerifyCmd is `authbench audit verify`.
type auditVerifyCmd struct {
	DB   string `default:"authbench.db" placeholder:"FILE|URL" env:"AUTHBENCH_DB" help:"The SQLite database file, or the postgres:// URL, of authbench serve."`
	JSON bool   `help:"Print the result as JSON."`
}

func (c *auditVerifyCmd) Run(ctx context.Context, e *env) error {
	st, err := openReadOnly(ctx, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := service.VerifyAuditLog(ctx, st)
	if err != nil {
		return err
	}
	switch {
	case c.JSON:
		if err := printJSON(e.stdout, v); err != nil {
			return err
		}
	case v.OK:
		fmt.Fprintf(e.stdout, "audit chain intact: %d records, each carrying the hash of the one before\n", v.Records)
	default:
		fmt.Fprintf(e.stdout, "audit chain BROKEN at record %d (after %d good records): %s\n", v.Break.Seq, v.Records, v.Break.Problem)
	}
	if !v.OK {
		return exitError{exitFailed}
	}
	return nil
}

// openReadOnly opens the store of a server for reading only: nothing is
// created or migrated, and a database that is missing, empty or of
// another schema version is an error.
func openReadOnly(ctx context.Context, db string) (store.Store, error) {
	if embedded.IsPostgresURL(db) {
		pg, err := postgres.Open(ctx, db, postgres.Options{Chain: service.Chain{}, ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("--db %s: %w", redactURL(db), err)
		}
		return pg, nil
	}
	if _, err := os.Stat(db); err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	lite, err := sqlite.Open(ctx, db, sqlite.Options{Chain: service.Chain{}, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	return lite, nil
}
