package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestRun plays the scenario on a fake clock and checks every line.
func TestRun(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	run(&out, clock, clock.Advance)
	want := `-- the provider works
call  1  charged card 4242: receipt r-1  [circuit "payments" closed]
call  2  card 0000 declined: excluded, not a failure  [circuit "payments" closed]
call  3  charged card 4242: receipt r-3  [circuit "payments" closed]
-- the provider goes down: 3 consecutive failures trip the circuit
call  4  failed: provider unavailable (provider reached: true)  [circuit "payments" closed]
call  5  failed: provider unavailable (provider reached: true)  [circuit "payments" closed]
  event    circuit "payments": closed -> open
call  6  failed: provider unavailable (provider reached: true)  [circuit "payments" open]
-- while open, calls are rejected at once
call  7  rejected at once, provider not called (retry after 500ms)  [circuit "payments" open]
call  8  rejected at once, provider not called (retry after 500ms)  [circuit "payments" open]
call  9  rejected at once, provider not called (retry after 500ms)  [circuit "payments" open]
-- the provider comes back; after the ttl one trial call is let through
  event    circuit "payments": open -> half-open
  event    circuit "payments": half-open -> closed
  event    circuit "payments": recovered
trial 10  charged card 4242: receipt r-7  [circuit "payments" closed]
-- closed again
call 11  charged card 4242: receipt r-8  [circuit "payments" closed]
the provider saw 8 of 11 calls
`
	assert.Equal(t, want, out.String())
}
