package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/sqlite"
)

// auditCmd is `authbench audit`: one subcommand per action.
type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Verify every identity's audit hash chain and the MACed checkpoints of their heads, opening the database read-only."`
	List   auditListCmd   `cmd:"" help:"List the audit trail of an identity through the API (support token, or a session of the identity), recomputing each event's hash."`
}

// auditVerifyCmd is `authbench audit verify`.
type auditVerifyCmd struct {
	DB        string `default:"authbench.db" placeholder:"FILE|URL" env:"AUTHBENCH_DB" help:"The SQLite database file, or the postgres:// URL, of authbench serve."`
	MasterKey string `default:"./authbench-master.key" env:"AUTHBENCH_MASTER_KEY_FILE" placeholder:"FILE" help:"The master key file of authbench serve, to check the MACs of the audit checkpoints (never created). $AUTHBENCH_MASTER_KEY, holding the key itself, overrides it."`
	JSON      bool   `help:"Print the result as JSON."`
}

func (c *auditVerifyCmd) Run(ctx context.Context, e *env) error {
	st, err := openReadOnly(ctx, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := auditKeys(c.MasterKey)
	if err != nil {
		return err
	}
	v, err := service.VerifyAuditLog(ctx, st, keys)
	if err != nil {
		return err
	}
	if c.JSON {
		if err := printJSON(e.stdout, v); err != nil {
			return err
		}
	} else {
		printAuditVerification(e.stdout, &v)
	}
	if !v.OK {
		return exitError{exitFailed}
	}
	return nil
}

// auditKeys loads the master keyring from $AUTHBENCH_MASTER_KEY or the key
// file at path, never creating one: the checkpoints' MAC keys are derived
// from it.
func auditKeys(path string) (*secrets.Keyring, error) {
	if env := os.Getenv(secrets.EnvVar); env != "" {
		k, err := secrets.ParseKeyring([]byte(env))
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", secrets.EnvVar, err)
		}
		return k, nil
	}
	k, err := secrets.LoadFile(path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		// A missing input file is a wrong command line (exit status 2).
		return nil, usageError{fmt.Errorf("--master-key %s: no such file: verify needs the master key of the server to check the checkpoints (or set $%s)", path, secrets.EnvVar)}
	}
	return k, err
}

// printAuditVerification says what verify found, problem by problem, and
// how much of the log no checkpoint protects yet.
func printAuditVerification(w io.Writer, v *service.AuditVerification) {
	if v.OK {
		fmt.Fprintf(w, "audit log intact: %d records in %d chains", v.Records, v.Chains)
		if v.Legacy > 0 {
			fmt.Fprintf(w, " (%d from the single chain before per-identity chains)", v.Legacy)
		}
		fmt.Fprintf(w, ", %s\n", plural(v.Checkpoints, "checkpoint"))
	} else {
		fmt.Fprintf(w, "audit log BROKEN: %s in %d records, %d chains, %s:\n",
			plural(len(v.Problems)+v.More, "problem"), v.Records, v.Chains, plural(v.Checkpoints, "checkpoint"))
		for _, p := range v.Problems {
			fmt.Fprintf(w, "  - [%s] %s\n", p.Kind, p.Message)
		}
		if v.More > 0 {
			fmt.Fprintf(w, "  ... and %d more\n", v.More)
		}
	}
	if c := v.LastCheckpoint; c != nil {
		fmt.Fprintf(w, "newest checkpoint: %d of %s (%d chains, key %s, hash %s)\n",
			c.Seq, c.Time.Format(time.RFC3339), c.Chains, c.KeyID, c.Hash)
	} else {
		fmt.Fprintln(w, "no checkpoint yet: nothing protects the newest records against being cut or rewritten")
	}
	if v.Unsealed > 0 {
		fmt.Fprintf(w, "%s newer than the checkpoint of its chain: it could be cut or rewritten without notice until the next checkpoint\n",
			plural(v.Unsealed, "record is"))
	}
}

// plural returns "1 thing" or "n things" (for "record is": "n records are").
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if noun, ok := strings.CutSuffix(thing, " is"); ok {
		return fmt.Sprintf("%d %ss are", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, thing)
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
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		// A missing input file is a wrong command line (exit status 2).
		return nil, usageError{fmt.Errorf("--db %s: no such file: give the database of authbench serve", db)}
	} else if err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	lite, err := sqlite.Open(ctx, db, sqlite.Options{Chain: service.Chain{}, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	return lite, nil
}
