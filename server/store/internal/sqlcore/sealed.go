package sqlcore

import (
	"context"

	"github.com/authbench/authbench/server/store"
)

// SealedKeys implements store.Sealing: the sealed values of code device
// elements and of PSKC imports, counted by master key ID.
func (s *Store) SealedKeys(ctx context.Context) ([]store.SealedKey, error) {
	var all []store.SealedKey
	for _, t := range []struct {
		what         string
		keys, sample *Stmt
		serial       bool
	}{
		{"code_elements", s.q.sealedCodeKeys, s.q.sealedCodeSample, false},
		{"imports", s.q.sealedImportKeys, s.q.sealedImportSample, true},
	} {
		var keys []store.SealedKey
		err := s.read(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			keys, err = sealedIn(ctx, tx, t.keys, t.sample, t.serial)
			return err
		})
		if err != nil {
			return nil, s.dbErr(err, "the sealed values in "+t.what)
		}
		all = store.MergeSealedKeys(all, keys)
	}
	return all, nil
}

// sealedIn counts the sealed values of a table by key ID (keys) and reads
// one of each (sample).
func sealedIn(ctx context.Context, tx Tx, keysQ, sampleQ *Stmt, serial bool) ([]store.SealedKey, error) {
	rows, err := tx.Query(ctx, keysQ)
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
		if err := tx.QueryRow(ctx, sampleQ, ref).Scan(&keys[i].Sample.Blob); err != nil {
			return nil, err
		}
		keys[i].Sample.KeyID = keys[i].KeyID
	}
	return keys, nil
}
