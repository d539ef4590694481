package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestRun plays the scenario against real local HTTP servers, on a fake
// clock, and checks every line.
func TestRun(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	run(&out, clock, clock.Advance)
	want := `-- search.local fails: 3 failures open its circuit; the others stay closed
round 1  catalog.local  200 OK: 3 items                            [closed]
round 1  search.local   503 Service Unavailable: index rebuilding  [closed]
round 1  users.local    404 Not Found: 404 page not found          [closed]
round 2  catalog.local  200 OK: 3 items                            [closed]
round 2  search.local   503 Service Unavailable: index rebuilding  [closed]
round 2  users.local    404 Not Found: 404 page not found          [closed]
round 3  catalog.local  200 OK: 3 items                            [closed]
  event  circuit "http/search.local": closed -> open
round 3  search.local   503 Service Unavailable: index rebuilding  [open]
round 3  users.local    404 Not Found: 404 page not found          [closed]
-- while open, search.local's requests are not sent
round 4  catalog.local  200 OK: 3 items                            [closed]
round 4  search.local   rejected at once, not sent                 [open]
round 4  users.local    404 Not Found: 404 page not found          [closed]
-- search.local recovers; after the open period a trial closes its circuit
  event  circuit "http/search.local": open -> half-open
round 5  catalog.local  200 OK: 3 items                            [closed]
  event  circuit "http/search.local": half-open -> closed
round 5  search.local   200 OK: 2 hits                             [closed]
round 5  users.local    404 Not Found: 404 page not found          [closed]
circuits: 3 (one per host)
`
	assert.Equal(t, want, out.String())
}
