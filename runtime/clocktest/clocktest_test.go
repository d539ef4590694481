package clocktest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

func TestAdvanceRunsDueTimersInOrder(t *testing.T) {
	start := time.Unix(100, 0)
	c := clocktest.New(start)
	var got []string
	var at []time.Time
	c.AfterFunc(2*time.Second, func() { got = append(got, "b"); at = append(at, c.Now()) })
	c.AfterFunc(time.Second, func() {
		got = append(got, "a")
		at = append(at, c.Now())
		c.AfterFunc(0, func() { got = append(got, "a2") }) // scheduled by a timer: runs in the same Advance
	})
	stop := c.AfterFunc(3*time.Second, func() { got = append(got, "never") })
	c.AfterFunc(time.Hour, func() { got = append(got, "later") })

	assert.True(t, stop())
	assert.False(t, stop(), "a stopped timer cannot be stopped again")
	c.Advance(5 * time.Second)
	assert.Equal(t, []string{"a", "a2", "b"}, got)
	assert.Equal(t, []time.Time{start.Add(time.Second), start.Add(2 * time.Second)}, at, "timers see their due time")
	assert.Equal(t, start.Add(5*time.Second), c.Now())
	assert.Equal(t, 1, c.Pending())
}

func TestAfterFuncNeverRunsSynchronously(t *testing.T) {
	c := clocktest.New(time.Unix(0, 0))
	ran := false
	c.AfterFunc(-time.Second, func() { ran = true })
	assert.False(t, ran)
	c.Advance(0)
	assert.True(t, ran)
}
