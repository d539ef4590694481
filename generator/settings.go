package generator

// Validate, keys and values: parse a //purgatory:circuit annotation into
// settings, on top of those it inherits, and register its circuit.

import (
	"fmt"
	"go/token"
	"go/types"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// register returns the package's circuit called s.name, creating it, or
// reports a clash when it exists with other settings.
func (v *validator) register(s *settings, pos token.Pos) *circuit {
	if c, ok := v.circuits[s.name]; ok {
		if !c.equal(s) {
			v.errorf(pos, "circuit %q is declared here with %s but at %s with %s", s.name, s, c.pos, &c.settings)
			return nil
		}
		return c
	}
	c := &circuit{settings: *s, pos: position(v.fset, v.dir, pos)}
	v.circuits[s.name] = c
	return c
}

// settings parses a //purgatory:circuit directive on top of inherit. On an
// interface (top) it also returns the entries of skip=, which a method
// annotation may not have.
func (v *validator) settings(d *directive, scope *types.Scope, inherit *settings, top bool) (*settings, []item) {
	s := *inherit
	s.excludes = slices.Clone(inherit.excludes)
	s.ignores = slices.Clone(inherit.ignores)
	for _, b := range d.bad {
		if b.msg != "" {
			v.errorf(b.pos, "%s", b.msg)
			continue
		}
		v.errorf(b.pos, "expected key=value, got %q", b.text)
	}
	seen := map[string]token.Pos{}
	var skips []item
	for _, a := range d.args {
		if !slices.Contains(keys, a.key) {
			msg := fmt.Sprintf("unknown key %q", a.key)
			if sug := suggest(a.key, keys); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else {
				msg += " (the keys are " + strings.Join(keys, ", ") + ")"
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, a.keyPos, "%s", msg))
			continue
		}
		if first, dup := seen[a.key]; dup {
			v.errorf(a.keyPos, "duplicate key %q (the first is at %s)", a.key, position(v.fset, v.dir, first))
			continue
		}
		seen[a.key] = a.keyPos
		switch a.key {
		case keyName:
			if a.value == "" {
				v.errorf(a.valPos, "bad value for name: empty")
				continue
			}
			s.name = a.value
		case keyThreshold, keyTrials, keyMin, keyMaxKeys:
			n, err := strconv.Atoi(a.value)
			if err != nil || n < 1 {
				v.errorf(a.valPos, "bad value for %s: %q is not an integer >= 1", a.key, a.value)
				continue
			}
			if lim := maxCount(a.key); n > lim {
				v.errorf(a.valPos, "bad value for %s: %q is above %d, the most every store accepts; lower %s=", a.key, a.value, lim, a.key)
				continue
			}
			*s.count(a.key) = n
		case keyTTL, keyWindow, keySlow, keyMaxTTL:
			d, err := time.ParseDuration(a.value)
			if err != nil || d <= 0 {
				v.errorf(a.valPos, "bad value for %s: %q is not a duration > 0 such as 30s or 1m30s", a.key, a.value)
				continue
			}
			if a.key == keySlow && d > maxSlowCall {
				v.errorf(a.valPos, "bad value for slow: %q is above %s, the longest slow call the runtime times; lower slow=", a.value, maxSlowCall)
				continue
			}
			if d > maxPeriod {
				v.errorf(a.valPos, "bad value for %s: %q is above %s, the longest period every store accepts; lower %s=", a.key, a.value, maxPeriod, a.key)
				continue
			}
			if a.key == keyWindow && d < minWindow {
				v.errorf(a.valPos, "bad value for window: %q is below %s, the shortest window every store accepts; raise window=", a.value, minWindow)
				continue
			}
			*s.duration(a.key) = d
		case keyRate:
			pct, ok := parseRate(a.value)
			if !ok {
				v.errorf(a.valPos, "bad value for rate: %q is not a percentage from 1%% to 100%% such as 50%%", a.value)
				continue
			}
			s.rate = pct
		case keyExclude, keyIgnore:
			var list []exclude
			for _, it := range a.items {
				if e, ok := v.resolveExclude(a.key, it, scope); ok {
					list = append(list, e)
				}
			}
			if a.key == keyExclude {
				s.excludes = list
			} else {
				s.ignores = list
			}
		case keyKey:
			if k, ok := v.parseKey(a); ok {
				s.key = k
			}
		case keyResult:
			if r, ok := v.resolveResult(a, scope); ok {
				s.result = r
			}
		case keySkip:
			if !top {
				v.errorf(a.keyPos, "skip= belongs on the interface's annotation; to forward this method without a breaker, write //purgatory:skip instead of //purgatory:circuit")
				continue
			}
			for _, it := range a.items {
				if !token.IsIdentifier(it.text) {
					v.errorf(it.pos, "bad value for skip: %q is not a method name (write skip=Close,Ping)", it.text)
					continue
				}
				skips = append(skips, it)
			}
		}
	}
	// The policy keys that need another, checked on what is in force after
	// inheritance but reported where this annotation says something.
	if _, given := seen[keyRate]; s.rate == 0 && !given {
		for _, k := range []string{keyWindow, keyMin} {
			if pos, ok := seen[k]; ok {
				v.errorf(pos, "%s= applies to the failure rate, which is not set; add rate= (such as rate=50%%) or remove %s=", k, k)
			}
		}
	}
	if pos, ok := seen[keyMaxKeys]; ok && s.key == nil && s.maxKeys > 0 {
		if _, given := seen[keyKey]; !given {
			v.errorf(pos, "maxkeys= bounds the circuits of key=, which is not set; add key= (such as key=req.URL.Host) or remove maxkeys=")
		}
	}
	if s.ttl > 0 && s.maxTTL > 0 && s.maxTTL <= s.ttl {
		pos, ok := seen[keyMaxTTL]
		if !ok {
			pos = seen[keyTTL]
		}
		if pos.IsValid() {
			v.errorf(pos, "maxttl=%s is not above ttl=%s: the open period could never grow; raise maxttl or remove it", s.maxTTL, s.ttl)
		}
	}
	return &s, skips
}

// The bounds of store.Settings.Check (runtime/store), which the runtime
// enforces by panicking when a breaker is built: refused here, at generate
// time, instead. A test in the generator package checks they agree.
const (
	maxCountBound = 1_000_000          // store.MaxCount: threshold, trials
	maxMinCalls   = 1_000_000_000      // store.MaxMinCalls: min
	maxPeriod     = 7 * 24 * time.Hour // store.MaxPeriod: ttl, maxttl, window
	minWindow     = time.Millisecond   // store.MinWindow: window
)

// maxCount returns the largest value an integer key takes.
func maxCount(key string) int {
	switch key {
	case keyMin:
		return maxMinCalls
	case keyMaxKeys:
		return math.MaxInt32
	}
	return maxCountBound
}

// maxSlowCall is runtime.MaxSlowCall: the runtime refuses a longer
// SlowCall (it times calls exactly up to 2^40 µs).
const maxSlowCall = 7 * 24 * time.Hour

// count returns the field of an integer key.
func (s *settings) count(key string) *int {
	switch key {
	case keyThreshold:
		return &s.threshold
	case keyTrials:
		return &s.trials
	case keyMaxKeys:
		return &s.maxKeys
	}
	return &s.minCalls
}

// duration returns the field of a duration key.
func (s *settings) duration(key string) *time.Duration {
	switch key {
	case keyTTL:
		return &s.ttl
	case keyWindow:
		return &s.window
	case keySlow:
		return &s.slow
	}
	return &s.maxTTL
}

// parseRate parses a percentage from 1% to 100% ("50%", "12.5%").
func parseRate(s string) (float64, bool) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, false
	}
	pct, err := strconv.ParseFloat(num, 64)
	if err != nil || pct < 1 || pct > 100 {
		return 0, false
	}
	return pct, true
}
