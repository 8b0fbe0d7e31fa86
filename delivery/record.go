package delivery

import "github.com/cdcd-dev/cdcd/syncapi"

// The engine's names for the writer contract, which lives in package
// syncapi so that writers import it without the engine.
type (
	Record      = syncapi.Record
	Result      = syncapi.Result
	Writer      = syncapi.Writer
	Settler     = syncapi.Settler
	Batcher     = syncapi.Batcher
	EveryChange = syncapi.EveryChange
	Fetcher     = syncapi.Fetcher
	Mapper      = syncapi.Mapper
	Versioner   = syncapi.Versioner
	Patcher     = syncapi.Patcher
)

// ErrOutcomeUnknown: see syncapi.ErrOutcomeUnknown.
var ErrOutcomeUnknown = syncapi.ErrOutcomeUnknown
