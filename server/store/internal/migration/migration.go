// Package migration loads the ordered schema migrations of a SQL store
// (server/store/sqlite, server/store/postgres) from an fs.FS. Applying them
// stays with each store, which knows its database's locking and
// transactions.
package migration

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// File is one migration: the number that starts its name, its name
// without ".sql", and its SQL text.
type File struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the migrations (files named NNNN_what.sql) in dir of fsys, in
// order of their numbers; other files are skipped. It fails on a name
// without a positive number, on duplicate numbers, and on gaps (versions
// start at 1). Errors are prefixed with prefix ("sqlite", "postgres").
func Load(fsys fs.FS, dir, prefix string) ([]File, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: migrations: %w", prefix, err)
	}
	var ms []File
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: migration %s: the name must start with a positive number and '_'", prefix, name)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("%s: migration %s: %w", prefix, name, err)
		}
		ms = append(ms, File{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s: migration %s: expected version %d (versions start at 1, without gaps or duplicates)", prefix, m.Name, i+1)
		}
	}
	return ms, nil
}
