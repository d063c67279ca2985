package service

import "github.com/authbench/authbench/server/audit"

// Chain is the audit chainer the stores are opened with: one hash chain
// per identity, each record's Body in server/audit's stored form, which
// VerifyAudit and ListAudit read back (sqlite.Options.Chain,
// postgres.Options.Chain).
type Chain = audit.Chain
