package sqlite

import (
	"context"
	"database/sql"

	"github.com/authbench/authbench/server/store"
)

// sealedTables are the tables that hold sealed values: the key column
// that names a row, and the field of store.SealedKey it goes to.
var sealedTables = []struct {
	table, id string
	serial    bool
}{
	{"code_elements", "authenticator_id", false},
	{"imports", "serial", true},
}

// SealedKeys implements store.Sealing.
func (s *Store) SealedKeys(ctx context.Context) ([]store.SealedKey, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	var all []store.SealedKey
	for _, t := range sealedTables {
		keys, err := sealedIn(ctx, db, t.table, t.id, t.serial)
		if err != nil {
			return nil, dbErr(err, "the sealed values in "+t.table)
		}
		all = store.MergeSealedKeys(all, keys)
	}
	return all, nil
}

// sealedIn counts the sealed values of table by key ID and reads one of
// each.
func sealedIn(ctx context.Context, db *sql.DB, table, id string, serial bool) ([]store.SealedKey, error) {
	rows, err := db.QueryContext(ctx, `SELECT key_id, COUNT(*), MIN(`+id+`) FROM `+table+`
WHERE secret IS NOT NULL AND key_id IS NOT NULL GROUP BY key_id ORDER BY key_id`)
	if err != nil {
		return nil, err
	}
	var keys []store.SealedKey
	for rows.Next() {
		var (
			k   store.SealedKey
			ref string
		)
		if err := rows.Scan(&k.KeyID, &k.Count, &ref); err != nil {
			rows.Close()
			return nil, err
		}
		if serial {
			k.Serial = ref
		} else {
			k.AuthenticatorID = ref
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range keys {
		ref := keys[i].AuthenticatorID + keys[i].Serial
		err := db.QueryRowContext(ctx, `SELECT secret FROM `+table+` WHERE `+id+` = ?`, ref).Scan(&keys[i].Sample.Blob)
		if err != nil {
			return nil, err
		}
		keys[i].Sample.KeyID = keys[i].KeyID
	}
	return keys, nil
}
