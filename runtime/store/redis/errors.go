package redis

import (
	"fmt"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// CorruptError reports a key that did not hold a readable circuit record.
// The store has replaced it with a fresh record.
type CorruptError struct {
	Key    string // the Redis key
	Reason string // what was wrong with it
}

// Applied reports true: the operation was applied to the fresh record
// (see [store.Applied]).
func (e *CorruptError) Applied() bool { return true }

// Error names the key and says what was wrong with it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("purgatory/redis: corrupt circuit record at %q (%s); replaced by a fresh one", e.Key, e.Reason)
}

// ConflictError reports that a circuit's record holds other settings than
// the caller's: another process registered the circuit first with other
// settings, or somebody changed the record. The operation was applied with
// the record's settings, and the snapshot returned with the error is valid.
type ConflictError struct {
	Key     string         // the Redis key
	InForce store.Settings // the record's settings, which the operation used
	Wanted  store.Settings // the caller's
}

// Applied reports true: the operation was applied with the record's
// settings (see [store.Applied]).
func (e *ConflictError) Applied() bool { return true }

// Settings returns the record's settings and the caller's (see
// [store.Conflict]).
func (e *ConflictError) Settings() (inForce, wanted store.Settings) { return e.InForce, e.Wanted }

// Error names the key and both settings.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("purgatory/redis: circuit record at %q has settings %+v, the caller %+v; the record's apply", e.Key, e.InForce, e.Wanted)
}

// maxInt bounds the counts sent to the script: Lua numbers are doubles.
const maxInt = 1<<53 - 1

// checkSettings reports settings the store cannot keep.
func checkSettings(set store.Settings) error {
	if err := set.Check(); err != nil {
		return fmt.Errorf("purgatory/redis: %w", err)
	}
	return nil
}
