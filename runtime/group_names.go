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
func (g *Group) circuitName(key string) string {
	switch {
	case key == "":
		return g.name + "/" + emptyKey
	case len(key) > MaxKeyLen || !printable(key):
		sum := sha256.Sum256([]byte(key))
		return g.name + "/~" + hex.EncodeToString(sum[:8]) + "~" + keptOf(key)
	case key[0] == '~':
		return g.name + "/~" + key
	}
	return g.name + "/" + key
}

// verbatim reports whether key's circuit is named after the key as it is,
// name+"/"+key (the last case of circuitName): such keys are in the
// group's table.
func verbatim(key string) bool {
	return key != "" && key[0] != '~' && len(key) <= MaxKeyLen && printable(key)
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
