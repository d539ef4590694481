package generator

// Annotations: find the //purgatory: comments and split them into
// key=value arguments, keeping every position for the error messages.

import (
	"go/ast"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// The directives purgatorygen reads.
const (
	prefix     = "//purgatory:"
	dirCircuit = "circuit"
	dirSkip    = "skip"
)

// The keys of //purgatory:circuit.
const (
	keyName      = "name"
	keyThreshold = "threshold"
	keyTTL       = "ttl"
	keyTrials    = "trials"
	keyExclude   = "exclude"
	keySkip      = "skip"
	keyRate      = "rate"
	keyWindow    = "window"
	keyMin       = "min"
	keySlow      = "slow"
	keyMaxTTL    = "maxttl"
	keyIgnore    = "ignore"
	keyKey       = "key"
	keyMaxKeys   = "maxkeys"
	keyResult    = "result"
)

// keys lists the keys of //purgatory:circuit, in the order they are documented.
var keys = []string{keyName, keyThreshold, keyTTL, keyTrials, keyExclude, keyIgnore, keySkip,
	keyRate, keyWindow, keyMin, keySlow, keyMaxTTL, keyKey, keyMaxKeys, keyResult}

// listKeys are the keys whose value is a comma-separated list.
var listKeys = []string{keyExclude, keyIgnore, keySkip}

// directive is one //purgatory: comment line.
type directive struct {
	comment *ast.Comment
	kind    string    // "circuit", "skip" or what was written
	pos     token.Pos // of the directive word after "//purgatory:"
	args    []arg
	bad     []badArg // words that are not key=value
}

// arg is one key=value of a directive.
type arg struct {
	key, value     string // value unquoted when it was quoted
	keyPos, valPos token.Pos
	// items are the comma-separated entries of the value (exclude=A,B),
	// each at its position; a list may go on after a comma and spaces
	// (exclude=A, B).
	items []item
}

// badArg is a word of a directive that is not key=value.
type badArg struct {
	text string
	pos  token.Pos
	msg  string // what is wrong, when more than "expected key=value"
}

// item is one comma-separated entry of a value (exclude=A,B).
type item struct {
	text string
	pos  token.Pos
}

// splitItems splits s, which starts at pos, on commas, keeping each
// entry's position.
func splitItems(s string, pos token.Pos) []item {
	var out []item
	off := 0
	for _, part := range strings.Split(s, ",") {
		out = append(out, item{text: part, pos: pos + token.Pos(off)})
		off += len(part) + 1
	}
	return out
}

// parseDirective parses c if it is a //purgatory: comment.
func parseDirective(c *ast.Comment) (*directive, bool) {
	if !strings.HasPrefix(c.Text, prefix) {
		return nil, false
	}
	text := c.Text[len(prefix):]
	base := c.Slash + token.Pos(len(prefix))
	d := &directive{comment: c, pos: base}
	i := wordEnd(text, 0)
	d.kind = text[:i]
	for {
		for i < len(text) && unicode.IsSpace(rune(text[i])) {
			i++
		}
		if i == len(text) {
			break
		}
		start := i
		i = wordEnd(text, i)
		word := text[start:i]
		pos := base + token.Pos(start)
		k, v, ok := strings.Cut(word, "=")
		if !ok || k == "" {
			// exclude=A, B: the list goes on after the comma.
			if n := len(d.args); n > 0 && d.args[n-1].continues() {
				a := &d.args[n-1]
				a.value += " " + word
				a.items = append(a.items[:len(a.items)-1], splitItems(word, pos)...)
				continue
			}
			b := badArg{text: word, pos: pos}
			if strings.HasPrefix(word, ",") {
				key := "exclude"
				if n := len(d.args); n > 0 && slices.Contains(listKeys, d.args[n-1].key) {
					key = d.args[n-1].key
				}
				b.msg = "a list takes no space before a comma: write " + key + "=A,B"
			}
			d.bad = append(d.bad, b)
			continue
		}
		a := arg{key: k, value: v, keyPos: pos, valPos: pos + token.Pos(len(k)+1)}
		if v != "" && (v[0] == '"' || v[0] == '`') {
			// A quoted value may hold spaces: name="payments EU".
			q, err := strconv.QuotedPrefix(text[start+len(k)+1:])
			if err != nil {
				d.bad = append(d.bad, badArg{text: word, pos: a.valPos, msg: "unterminated or malformed quoted value " + v})
				i = len(text)
				break
			}
			i = start + len(k) + 1 + len(q)
			if i < len(text) && !unicode.IsSpace(rune(text[i])) {
				d.bad = append(d.bad, badArg{text: text[start:wordEnd(text, i)], pos: a.valPos, msg: "a quoted value must be followed by a space"})
				i = wordEnd(text, i)
				continue
			}
			a.value, _ = strconv.Unquote(q)
			a.items = splitItems(a.value, a.valPos+1)
		} else {
			a.items = splitItems(v, a.valPos)
		}
		d.args = append(d.args, a)
	}
	return d, true
}

// wordEnd returns the index of the first space in text at or after i, or
// len(text).
func wordEnd(text string, i int) int {
	for i < len(text) && !unicode.IsSpace(rune(text[i])) {
		i++
	}
	return i
}

// continues reports whether a is a list whose value ends with a comma, so
// that the next word belongs to it.
func (a arg) continues() bool {
	return strings.HasSuffix(a.value, ",") && slices.Contains(listKeys, a.key)
}

// directives returns the //purgatory: directives in the comment groups.
func directives(groups ...*ast.CommentGroup) []*directive {
	var out []*directive
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, c := range g.List {
			if d, ok := parseDirective(c); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// nearMiss matches a comment that was meant as a directive but is not one
// for the go tool's rules: a space after // ("// purgatory:circuit") or a
// block comment.
var nearMiss = regexp.MustCompile(`^(?://\s+|/\*\s*)purgatory:([A-Za-z]*)`)

// nearMisses returns the comments of f that look like directives but are
// not read as such, with the directive word they name.
func nearMisses(f *ast.File) map[*ast.Comment]string {
	out := map[*ast.Comment]string{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if m := nearMiss.FindStringSubmatch(c.Text); m != nil {
				out[c] = m[1]
			}
		}
	}
	return out
}
