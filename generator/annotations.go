package generator

import (
	"go/ast"
	"go/token"
	"strings"
	"unicode"
)

// The directives purgatorygen reads.
const (
	prefix       = "//purgatory:"
	dirCircuit   = "circuit"
	dirSkip      = "skip"
	keyName      = "name"
	keyThreshold = "threshold"
	keyTTL       = "ttl"
	keyTrials    = "trials"
	keyExclude   = "exclude"
)

// keys lists the keys of //purgatory:circuit, in the order they are documented.
var keys = []string{keyName, keyThreshold, keyTTL, keyTrials, keyExclude}

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
	key, value     string
	keyPos, valPos token.Pos
}

// badArg is a word of a directive that is not key=value.
type badArg struct {
	text string
	pos  token.Pos
}

// item is one comma-separated entry of a value (exclude=A,B).
type item struct {
	text string
	pos  token.Pos
}

// items splits a's value on commas, keeping each entry's position.
func (a arg) items() []item {
	var out []item
	off := 0
	for _, part := range strings.Split(a.value, ",") {
		out = append(out, item{text: part, pos: a.valPos + token.Pos(off)})
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
	i := 0
	for i < len(text) && !unicode.IsSpace(rune(text[i])) {
		i++
	}
	d.kind = text[:i]
	for i < len(text) {
		for i < len(text) && unicode.IsSpace(rune(text[i])) {
			i++
		}
		start := i
		for i < len(text) && !unicode.IsSpace(rune(text[i])) {
			i++
		}
		if start == i {
			break
		}
		word := text[start:i]
		pos := base + token.Pos(start)
		k, v, ok := strings.Cut(word, "=")
		if !ok || k == "" {
			d.bad = append(d.bad, badArg{text: word, pos: pos})
			continue
		}
		d.args = append(d.args, arg{key: k, value: v, keyPos: pos, valPos: pos + token.Pos(len(k)+1)})
	}
	return d, true
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
