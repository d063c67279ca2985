package columns

import (
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// IdentityArgs returns the values of the identity columns (id, state,
// blocked_reason, blocked_at, blocked_by_kind, blocked_by_id,
// blocked_by_via, created_at, version) for id, in order. It returns an
// error wrapping store.ErrInvalid for a value out of range.
func (c Codec) IdentityArgs(id *domain.Identity) ([]any, error) {
	ts, err := c.Times(id.BlockedAt, id.CreatedAt)
	if err != nil {
		return nil, err
	}
	v, err := c.U63(id.Version, "version")
	if err != nil {
		return nil, err
	}
	return []any{id.ID, string(id.State), string(id.BlockedReason), ts[0],
		string(id.BlockedBy.Kind), id.BlockedBy.ID, id.BlockedBy.Via, ts[1], v}, nil
}

// IdentityRow receives an identity row, in the column order of
// IdentityArgs.
type IdentityRow struct {
	ID, State, Reason    string
	ByKind, ByID, ByVia  string
	BlockedAt, CreatedAt *int64
	Version              int64
}

// Dest returns the scan destinations of r, in column order.
func (r *IdentityRow) Dest() []any {
	return []any{&r.ID, &r.State, &r.Reason, &r.BlockedAt, &r.ByKind, &r.ByID, &r.ByVia, &r.CreatedAt, &r.Version}
}

// Identity decodes a scanned row. It returns an error wrapping
// store.ErrInvalid for a stored value that is not a valid identity.
func (c Codec) Identity(r *IdentityRow) (domain.Identity, error) {
	st, err := domain.ParseIdentityState(r.State)
	if err != nil {
		return domain.Identity{}, fmt.Errorf("%s: %w: identity %s: %w", c.Name, store.ErrInvalid, r.ID, err)
	}
	ver, err := c.FromI64(r.Version, "version")
	if err != nil {
		return domain.Identity{}, err
	}
	v := domain.Identity{
		ID:            r.ID,
		State:         st,
		BlockedReason: domain.Reason(r.Reason),
		BlockedAt:     FromNanos(r.BlockedAt),
		BlockedBy:     domain.Actor{Kind: domain.ActorKind(r.ByKind), ID: r.ByID, Via: r.ByVia},
		CreatedAt:     FromNanos(r.CreatedAt),
		Version:       ver,
	}
	if err := v.Validate(); err != nil {
		return domain.Identity{}, fmt.Errorf("%s: %w: stored %w", c.Name, store.ErrInvalid, err)
	}
	return v, nil
}
