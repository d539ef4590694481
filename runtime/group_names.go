package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file: a group's circuit names: a key verbatim, or hashed when it is
// too long or unprintable (see Group.Breaker).

// Names of a group's special circuits, after the group's name and "/".
const (
	emptyKey    = "~empty"
	overflowKey = "~overflow"
	keptPrefix  = 64 // bytes of a hashed key kept in its circuit name
)

// circuitName returns the name of key's circuit (see Breaker).
func circuitName(group, key string) string {
	switch {
	case key == "":
		return group + "/" + emptyKey
	case len(key) > MaxKeyLen || !printable(key):
		sum := sha256.Sum256([]byte(key))
		return group + "/~" + hex.EncodeToString(sum[:8]) + "~" + keptOf(key)
	case key[0] == '~':
		return group + "/~" + key
	}
	return group + "/" + key
}

// tabled reports whether key's circuit name is not hashed, so that the
// name gives the key back (keyOfName): such keys are in the group's
// table.
func tabled(key string) bool { return len(key) <= MaxKeyLen && printable(key) }

// keyOfName returns the key of a circuit whose name, after the group's
// name and "/", is s, and not hashed (see circuitName).
func keyOfName(s string) string {
	if len(s) > 0 && s[0] == '~' {
		if s == emptyKey {
			return ""
		}
		return s[1:] // "~~x" is the circuit of "~x"
	}
	return s
}

func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return false // RuneError: invalid UTF-8 (or U+FFFD itself, hashed all the same)
		}
	}
	return true
}

// keptOf returns the first keptPrefix bytes of key, whole runes only, with
// each invalid or control character as '?'.
func keptOf(key string) string {
	var sb strings.Builder
	for _, r := range key {
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '?'
		}
		if sb.Len()+utf8.RuneLen(r) > keptPrefix {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
