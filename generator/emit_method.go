package generator

// Emit, per method: the guarded call and the forwarded one.

import (
	"fmt"
	"go/types"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"
)

// method writes one method of the wrapper; n holds the names it must not
// declare.
func (e *emitter) method(im *ifaceModel, mm *methodModel, recvType *jen.Statement, fields wrapperFields, n namer) {
	sig := mm.sig
	name := mm.fn.Name()
	walkTypes(sig, func(t types.Type) bool { e.markLocal(n, t); return true })

	// Parameters keep their names unless they are blank, unnamed or would
	// shadow something the body uses.
	params := make([]string, sig.Params().Len())
	for i := range params {
		pn := sig.Params().At(i).Name()
		if pn != "" && pn != "_" && !n[pn] {
			params[i] = pn
			n[pn] = true
		}
	}
	for i := range params {
		if params[i] == "" {
			pn := sig.Params().At(i).Name()
			if pn == "" || pn == "_" {
				pn = "p" + strconv.Itoa(i)
			}
			params[i] = n.name(pn)
		}
	}
	var args []jen.Code
	for i, p := range params {
		a := jen.Id(p)
		if sig.Variadic() && i == len(params)-1 {
			a = a.Op("...")
		}
		args = append(args, a)
	}
	recv := n.name("c")
	newFn := func() *jen.Statement {
		return e.f.Func().Params(jen.Id(recv).Op("*").Add(recvType)).Id(name).Add(e.signature(sig, params))
	}
	call := jen.Id(recv).Dot(fields.inner).Dot(name).Call(args...)

	if mm.circuit == nil {
		e.docf("%s calls the inner %s directly, without a breaker: %s.", name, im.name(), forwardWhy(mm.forward))
		fn := newFn()
		if sig.Results().Len() == 0 {
			fn.Block(call)
		} else {
			fn.Block(jen.Return(call))
		}
		return
	}

	field := fields.circuit[mm.circuit]
	breaker := jen.Id(recv).Dot(field)
	var prologue []jen.Code
	if mm.key != nil {
		// One circuit per key: look it up first.
		key, stmts := e.keyCode(mm.key, params, n)
		b := n.name("b")
		prologue = append(prologue, stmts...)
		prologue = append(prologue, jen.Id(b).Op(":=").Add(breaker).Dot("Breaker").Call(key))
		breaker = jen.Id(b)
	}
	// The call's context; nil tells the breaker that none is known (then a
	// context.Canceled is not counted as a failure).
	ctx := jen.Nil()
	switch src := mm.ctx; {
	case src.param < 0:
	case !src.method:
		ctx = jen.Id(params[src.param])
	case !src.nilable:
		ctx = jen.Id(n.name("ctx"))
		prologue = append(prologue, ctx.Clone().Op(":=").Id(params[src.param]).Dot("Context").Call())
	default:
		ctx = jen.Id(n.name("ctx"))
		prologue = append(prologue,
			jen.Var().Add(ctx.Clone()).Qual("context", "Context"),
			jen.If(jen.Id(params[src.param]).Op("!=").Nil()).Block(
				ctx.Clone().Op("=").Id(params[src.param]).Dot("Context").Call(),
			))
	}
	t, err, done, fb := n.name("t"), n.name("err"), n.name("done"), n.name("fb")
	nres := sig.Results().Len()
	results := make([]string, nres)
	for i := range results {
		results[i] = n.name("r" + strconv.Itoa(i))
	}

	// While open: the fallback, or zero values and the rejection.
	var rejected []jen.Code
	rejected = append(rejected, jen.If(jen.Id(fb).Op(":=").Id(recv).Dot(fields.fallback), jen.Id(fb).Op("!=").Nil()).Block(
		jen.Return(jen.Id(fb).Dot(name).Call(args...)),
	))
	var zeros []jen.Code
	for i := range nres - 1 {
		rt := sig.Results().At(i).Type()
		if z := zeroLit(rt); z != nil {
			zeros = append(zeros, z)
			continue
		}
		rejected = append(rejected, jen.Var().Id(results[i]).Add(e.typ(rt)))
		zeros = append(zeros, jen.Id(results[i]))
	}
	zeros = append(zeros, jen.Id(err))
	rejected = append(rejected, jen.Return(zeros...))

	var resIDs []jen.Code
	for _, r := range results {
		resIDs = append(resIDs, jen.Id(r))
	}
	// The error the circuit counts: the last result, or what result= makes
	// of the results (computed before done is set, so that a panic in it
	// counts as a failure too).
	var counted jen.Code = jen.Id(results[nres-1])
	var classify []jen.Code
	if mm.result != nil {
		ce := n.name("cerr")
		classify = append(classify, jen.Id(ce).Op(":=").Add(e.ref(mm.result.obj.Pkg(), mm.result.obj.Name())).Call(resIDs...))
		counted = jen.Id(ce)
	}
	e.doc(wrapText(fmt.Sprintf("%s calls the inner %s through %s", name, im.name(), methodCircuitDoc(mm)), 76))
	newFn().Block(slices.Concat(prologue, []jen.Code{
		jen.List(jen.Id(t), jen.Id(err)).Op(":=").Add(breaker.Clone().Dot("Allow").Call(ctx)),
		jen.If(jen.Id(err).Op("!=").Nil()).Block(rejected...),
		jen.Id(done).Op(":=").False(),
		jen.Defer().Func().Params().Block(
			jen.If(jen.Op("!").Id(done)).Block(
				breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), jen.Qual(RuntimePath, "ErrPanicked")),
			),
		).Call(),
		jen.List(resIDs...).Op(":=").Add(call),
	}, classify, []jen.Code{
		jen.Id(done).Op("=").True(),
		breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), counted),
		jen.Return(resIDs...),
	})...)
}

// methodCircuitDoc says, for a method's doc comment, which circuit it goes
// through and what it counts.
func methodCircuitDoc(mm *methodModel) string {
	s := fmt.Sprintf("circuit %q.", mm.circuit.name)
	if mm.key != nil {
		s = fmt.Sprintf("the circuit of group %q for the key %s (named %q+key).", mm.circuit.name, mm.key.text, mm.circuit.name+"/")
		if mm.key.guarded() {
			s += ` A nil pointer on the way gives the key "".`
		}
	}
	if mm.result != nil {
		s += fmt.Sprintf(" It counts the error %s makes of the results; the results are returned as they are.", mm.result.name())
	}
	return s
}

// wrapText breaks s into lines of at most width bytes, at spaces.
func wrapText(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// keyCode returns the code of a method's key and the statements that
// compute it, if it takes more than an expression: nil checks along the
// path, a nil pointer giving the key "".
func (e *emitter) keyCode(kp *keyPath, params []string, n namer) (jen.Code, []jen.Code) {
	root := jen.Id(params[kp.param])
	conv := func(v jen.Code) jen.Code {
		if kp.conv {
			return jen.String().Call(v)
		}
		return v
	}
	if !kp.guarded() {
		cur := root
		for _, s := range kp.steps {
			cur = cur.Dot(s.name)
			if s.method {
				cur = cur.Call()
			}
		}
		return conv(cur), nil
	}
	key := n.name("key")
	var build func(cur *jen.Statement, steps []keyStep) []jen.Code
	build = func(cur *jen.Statement, steps []keyStep) []jen.Code {
		var conds []jen.Code
		wrap := func(body []jen.Code) []jen.Code {
			if len(conds) == 0 {
				return body
			}
			cond := conds[0]
			for _, c := range conds[1:] {
				cond = jen.Add(cond).Op("&&").Add(c)
			}
			return []jen.Code{jen.If(cond).Block(body...)}
		}
		for i, s := range steps {
			if s.check {
				conds = append(conds, cur.Clone().Op("!=").Nil())
			}
			p := cur.Clone()
			for _, em := range s.embedded {
				p = p.Dot(em.name)
				if em.check {
					conds = append(conds, p.Clone().Op("!=").Nil())
				}
			}
			next := cur.Clone().Dot(s.name)
			if s.method {
				next = next.Call()
				if (&keyPath{steps: steps[i+1:]}).guarded() {
					// Checked below: called once, into a variable.
					tmp := n.name("k")
					body := append([]jen.Code{jen.Id(tmp).Op(":=").Add(next)}, build(jen.Id(tmp), steps[i+1:])...)
					return wrap(body)
				}
			}
			cur = next
		}
		return wrap([]jen.Code{jen.Id(key).Op("=").Add(conv(cur))})
	}
	stmts := append([]jen.Code{jen.Var().Id(key).String()}, build(root, kp.steps)...)
	return jen.Id(key), stmts
}

// forwardWhy says why a method is forwarded, for its doc comment.
func forwardWhy(r forwardReason) string {
	switch r {
	case forwardNoError:
		return "it has no error result"
	case forwardConcreteError:
		return "its last result is not of type error"
	case forwardSkip:
		return "it is marked //purgatory:skip"
	case forwardSkipKey:
		return "it is in the skip= list of the annotation"
	case forwardClose:
		return "a wrapper must never keep the inner client from closing (a method annotation can guard it)"
	}
	return ""
}
