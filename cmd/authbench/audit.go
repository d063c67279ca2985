package main

import (
	"context"
	"encoding/json"
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

func init() {
	register(&command{
		name:    "audit",
		summary: "verify the tamper-evident audit chains and checkpoints of a server's database",
		usage:   "verify [--db FILE|postgres://URL] [--master-key FILE] [--json]",
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
	keyFile := fs.String("master-key", "./authbench-master.key", "the master key `FILE` of `authbench serve`, to check the checkpoints' MACs; $"+secrets.EnvVar+" overrides it")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	keys, err := auditKeys(*keyFile)
	if err != nil {
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
	v, err := service.VerifyAuditLog(ctx, st, keys)
	if err != nil {
		return err
	}
	if *jsonOut {
		b, _ := json.Marshal(v)
		fmt.Fprintln(e.stdout, string(b))
	} else {
		printAuditVerification(e.stdout, &v)
	}
	if !v.OK {
		return exitError{1}
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
		return nil, fmt.Errorf("--master-key %s: no such file: verify needs the master key of the server to check the checkpoints (or set $%s)", path, secrets.EnvVar)
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
