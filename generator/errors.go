package generator

// Errors: file:line:col reports and did-you-mean suggestions, used by every step.

import (
	"fmt"
	"go/token"
	"sort"
	"strings"
)

// Error is one problem found while generating, at a position in the source.
type Error struct {
	Pos token.Position // Filename is relative to Config.Dir when it is below it
	Msg string
}

// Error returns "file:line:col: message".
func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		if e.Pos.Filename != "" {
			return e.Pos.Filename + ": " + e.Msg
		}
		return e.Msg
	}
	if e.Pos.Column == 0 {
		return fmt.Sprintf("%s:%d: %s", e.Pos.Filename, e.Pos.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
}

// ErrorList is every problem found in one run, sorted by position.
type ErrorList []*Error

// Error returns the errors, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sort orders the list by file, line and column and drops duplicates.
func (l ErrorList) sort() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && e.Error() == l[i-1].Error() {
			continue
		}
		out = append(out, e)
	}
	return out
}

// position returns the position of pos, with the file name relative to dir.
func position(fset *token.FileSet, dir string, pos token.Pos) token.Position {
	p := fset.Position(pos)
	p.Filename = relPath(dir, p.Filename)
	return p
}

// errorf returns an Error at pos.
func errorf(fset *token.FileSet, dir string, pos token.Pos, format string, args ...any) *Error {
	return &Error{Pos: position(fset, dir, pos), Msg: fmt.Sprintf(format, args...)}
}

// suggest returns the candidate nearest to s when it is near enough to be
// a likely typo, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := distance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(s)/3))
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
