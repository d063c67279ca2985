package postgres

import (
	"context"

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
	var all []store.SealedKey
	for _, t := range sealedTables {
		var keys []store.SealedKey
		err := s.read(ctx, func(db dbtx) error {
			var err error
			keys, err = sealedIn(ctx, db, t.table, t.id, t.serial)
			return err
		})
		if err != nil {
			return nil, dbErr(err, "the sealed values in "+t.table)
		}
		all = store.MergeSealedKeys(all, keys)
	}
	return all, nil
}

// sealedIn counts the sealed values of table by key ID and reads one of
// each.
func sealedIn(ctx context.Context, db dbtx, table, id string, serial bool) ([]store.SealedKey, error) {
	rows, err := db.Query(ctx, `SELECT key_id, COUNT(*), MIN(`+id+`) FROM `+table+`
WHERE secret IS NOT NULL AND key_id IS NOT NULL GROUP BY key_id ORDER BY key_id`)
	if err != nil {
		return nil, err
	}
	var keys []store.SealedKey
	for rows.Next() {
		var (
			k   store.SealedKey
			n   int64
			ref string
		)
		if err := rows.Scan(&k.KeyID, &n, &ref); err != nil {
			rows.Close()
			return nil, err
		}
		k.Count = int(n)
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
		if err := db.QueryRow(ctx, `SELECT secret FROM `+table+` WHERE `+id+` = $1`, ref).Scan(&keys[i].Sample.Blob); err != nil {
			return nil, err
		}
		keys[i].Sample.KeyID = keys[i].KeyID
	}
	return keys, nil
}
