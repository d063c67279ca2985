package sqlite

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// One writing process per database file. The attempts in flight of a
// writing Store live in memory (sqlcore.InFlight): a reservation then
// costs one read and no write. That is sound only while no other process
// writes the same file, so Open locks the file (flock, which SQLite's own
// POSIX record locks leave alone) for as long as a writing Store of this
// process has it open. The writing Stores of one process that open the
// same file share the lock and the attempts in flight; read-only Stores
// (a verifier) take no lock.

// ErrInUse is returned by Open when another process writes the database:
// one authbench serve per SQLite file (several replicas need PostgreSQL).
var ErrInUse = errors.New("the database is written by another process")

// owner is this process's hold on one database file, and what its
// writing Stores share: the attempts in flight, the mirror of the records
// a login reads (sqlcore.Mirror, made by the first Store that opens the
// file), and the lock that runs their write transactions one at a time,
// so that each applies its changes to the mirror in the order it
// committed them.
type owner struct {
	refs     int
	f        *os.File
	inFlight *sqlcore.InFlight
	mirror   *sqlcore.Mirror
	writes   sync.Mutex
}

var owners = struct {
	sync.Mutex
	m map[string]*owner
}{m: map[string]*owner{}}

// newOwner returns the shares of a database that no other Store opens (an
// in-memory one).
func newOwner() *owner {
	return &owner{refs: 1, inFlight: sqlcore.NewInFlight()}
}

// acquire takes this process's hold on the database file at abs (creating
// the file empty when it does not exist: SQLite takes an empty file as a
// new database) and returns what its writing Stores share.
func acquire(abs string) (*owner, error) {
	owners.Lock()
	defer owners.Unlock()
	if o := owners.m[abs]; o != nil {
		o.refs++
		return o, nil
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%v): one authbench serve per SQLite database; several replicas need PostgreSQL", abs, ErrInUse, err)
	}
	o := newOwner()
	o.f = f
	owners.m[abs] = o
	return o, nil
}

// mirrorOf returns o's mirror, making it for the tables' columns cols
// when it has none.
func (o *owner) mirrorOf(cols map[string][]string) (*sqlcore.Mirror, error) {
	owners.Lock()
	defer owners.Unlock()
	if o.mirror == nil {
		m, err := sqlcore.NewMirror(0, cols)
		if err != nil {
			return nil, err
		}
		o.mirror = m
	}
	return o.mirror, nil
}

// release gives back a hold taken by acquire; the last one unlocks the
// file.
func release(abs string) {
	owners.Lock()
	defer owners.Unlock()
	o := owners.m[abs]
	if o == nil {
		return
	}
	if o.refs--; o.refs == 0 {
		delete(owners.m, abs)
		o.f.Close() // closing the descriptor drops the lock
	}
}
