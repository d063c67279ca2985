package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/sqlite"
)

func init() {
	register(&command{
		name:    "audit",
		summary: "verify the tamper-evident audit chain of a server's database",
		usage:   "verify [--db FILE|postgres://URL] [--json]",
		run:     runAudit,
	})
}

func runAudit(ctx context.Context, e *env, args []string) error {
	c := commands["audit"]
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(e.stderr, "usage: authbench audit %s\n\n%s\n", c.usage, c.summary)
			return nil
		}
		return usageError{errors.New(`the only subcommand is "verify"`)}
	}
	fs := newFlags(c, e)
	db := fs.String("db", "authbench.db", "the SQLite database `FILE`, or the postgres:// URL, of `authbench serve`")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var st store.Store
	if embedded.IsPostgresURL(*db) {
		pg, err := postgres.Open(ctx, *db, postgres.Options{Chain: service.Chain{}})
		if err != nil {
			return fmt.Errorf("--db %s: %w", redactURL(*db), err)
		}
		st = pg
	} else {
		if _, err := os.Stat(*db); err != nil {
			return fmt.Errorf("database %s: %w", *db, err)
		}
		lite, err := sqlite.Open(ctx, *db, sqlite.Options{Chain: service.Chain{}})
		if err != nil {
			return err
		}
		st = lite
	}
	defer st.Close()
	v, err := service.VerifyAuditLog(ctx, st)
	if err != nil {
		return err
	}
	if *jsonOut {
		b, _ := json.Marshal(v)
		fmt.Fprintln(e.stdout, string(b))
	} else if v.OK {
		fmt.Fprintf(e.stdout, "audit chain intact: %d records, each carrying the hash of the one before\n", v.Records)
	} else {
		fmt.Fprintf(e.stdout, "audit chain BROKEN at record %d (after %d good records): %s\n", v.Break.Seq, v.Records, v.Break.Problem)
	}
	if !v.OK {
		return exitError{1}
	}
	return nil
}
