package redis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

var errShort = errors.New("short reply")

// The lengths of a script reply with a record: without the record's
// settings (the caller's are in force), and with them.
const (
	replyFields       = 12
	replySettings     = 7
	replyWithSettings = replyFields + replySettings
)

// decode parses a script reply (see script.lua). hasSet reports whether
// it carried the record's settings.
func decode(v any) (r result, hasSet bool, err error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return result{}, false, errShort
	}
	if r.status, ok = a[0].(string); !ok {
		return result{}, false, fmt.Errorf("status is %T, not a string", a[0])
	}
	if len(a) == 1 {
		return r, false, nil // get of an absent or corrupt record
	}
	if len(a) != replyFields && len(a) != replyWithSettings {
		return result{}, false, errShort
	}
	var n [9]uint64
	for i, j := range []int{2, 3, 4, 5, 6, 8, 9, 10, 11} {
		if n[i], err = replyNumber(a[j]); err != nil {
			return result{}, false, fmt.Errorf("field %d: %w", j, err)
		}
	}
	st, _ := a[1].(string)
	until, _ := a[7].(string)
	if r.snap.State, err = parseState(st); err != nil {
		return result{}, false, err
	}
	if r.snap.Until, err = parseUntil(r.snap.State, until); err != nil {
		return result{}, false, err
	}
	r.snap.Gen, r.snap.Seq = n[0], n[1]
	r.snap.Failures, r.snap.Claimed, r.snap.Succeeded = int(n[2]), int(n[3]), int(n[4])
	r.snap.Level, r.snap.Calls, r.snap.Failed = int(n[5]), int(n[6]), int(n[7])
	r.granted = n[8] == 1
	if len(a) == replyFields {
		return r, false, nil
	}
	f := make([]string, replySettings)
	for i := range f {
		if f[i], ok = a[replyFields+i].(string); !ok {
			return result{}, false, fmt.Errorf("setting %d is %T, not a string", i, a[replyFields+i])
		}
	}
	var m [6]int64
	for i, x := range []string{f[0], f[1], f[2], f[3], f[5], f[6]} {
		if m[i], err = strconv.ParseInt(x, 10, 64); err != nil {
			return result{}, false, err
		}
	}
	rate, err := strconv.ParseFloat(f[4], 64)
	if err != nil {
		return result{}, false, err
	}
	r.set = store.Settings{Threshold: int(m[0]), TTL: time.Duration(m[1]), Trials: int(m[2]),
		MaxTTL: time.Duration(m[3]), FailureRate: rate, Window: time.Duration(m[4]), MinCalls: int(m[5])}
	return r, true, nil
}

// replyNumber reads a number of a script reply: an integer in [0, 2^53).
func replyNumber(x any) (uint64, error) {
	switch v := x.(type) {
	case int64:
		if v < 0 || v > maxInt {
			return 0, fmt.Errorf("%d out of range", v)
		}
		return uint64(v), nil
	case string:
		return strconv.ParseUint(v, 10, 53)
	}
	return 0, fmt.Errorf("%T, not a number", x)
}

// parseSnapshot parses state, gen, seq, failures, claimed, succeeded,
// until, level, calls, failed.
func parseSnapshot(f []string) (store.Snapshot, error) {
	var s store.Snapshot
	var err error
	if s.State, err = parseState(f[0]); err != nil {
		return s, err
	}
	var n [8]uint64
	for i, j := range []int{1, 2, 3, 4, 5, 7, 8, 9} {
		if n[i], err = strconv.ParseUint(f[j], 10, 53); err != nil {
			return s, err
		}
	}
	s.Gen, s.Seq = n[0], n[1]
	s.Failures, s.Claimed, s.Succeeded = int(n[2]), int(n[3]), int(n[4])
	s.Level, s.Calls, s.Failed = int(n[5]), int(n[6]), int(n[7])
	s.Until, err = parseUntil(s.State, f[6])
	return s, err
}

// parseState parses a record's state field.
func parseState(v string) (store.State, error) {
	switch v {
	case "closed":
		return store.Closed, nil
	case "open":
		return store.Open, nil
	case "half-open":
		return store.HalfOpen, nil
	case "isolated":
		return store.Isolated, nil
	}
	return 0, fmt.Errorf("bad state %q", v)
}

// parseUntil parses a record's until field, which only an open or
// half-open record's has (the zero time otherwise).
func parseUntil(st store.State, v string) (time.Time, error) {
	if st != store.Open && st != store.HalfOpen {
		return time.Time{}, nil
	}
	return parseNanos(v)
}

// formatNanos formats t as decimal Unix nanoseconds, for any t (also those
// that do not fit an int64 of nanoseconds, such as the zero time).
func formatNanos(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	if sec >= 0 {
		if sec == 0 {
			return strconv.FormatInt(nsec, 10)
		}
		return fmt.Sprintf("%d%09d", sec, nsec)
	}
	if nsec == 0 {
		return fmt.Sprintf("-%d000000000", -sec)
	}
	sec, nsec = -sec-1, 1e9-nsec
	if sec == 0 {
		return fmt.Sprintf("-%d", nsec)
	}
	return fmt.Sprintf("-%d%09d", sec, nsec)
}

// parseNanos is the inverse of formatNanos.
func parseNanos(v string) (time.Time, error) {
	digits, neg := strings.CutPrefix(v, "-")
	if digits == "" || len(digits) > 21 || strings.TrimLeft(digits, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("bad time %q", v)
	}
	var sec, nsec int64
	if n := len(digits); n > 9 {
		sec, _ = strconv.ParseInt(digits[:n-9], 10, 64)
		nsec, _ = strconv.ParseInt(digits[n-9:], 10, 64)
	} else {
		nsec, _ = strconv.ParseInt(digits, 10, 64)
	}
	if neg {
		if nsec > 0 {
			sec, nsec = -sec-1, 1e9-nsec
		} else {
			sec = -sec
		}
	}
	return time.Unix(sec, nsec), nil
}

// parseMessage parses "2 <state> <gen> <seq> <failures> <claimed>
// <succeeded> <until> <level> <calls> <failed> <circuit>".
func parseMessage(payload string) (string, store.Snapshot, bool) {
	f := strings.SplitN(payload, " ", 12)
	if len(f) != 12 || f[0] != "2" {
		return "", store.Snapshot{}, false
	}
	snap, err := parseSnapshot(f[1:11])
	if err != nil {
		return "", store.Snapshot{}, false
	}
	return f[11], snap, true
}
