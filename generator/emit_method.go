package generator

// Emit, per method: the guarded call and the forwarded one.

import (
	"go/types"
	"strconv"

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
	// The call's context; nil tells the breaker that none is known (then a
	// context.Canceled is not counted as a failure).
	var prologue []jen.Code
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
	e.docf("%s calls the inner %s through circuit %q.", name, im.name(), mm.circuit.name)
	newFn().Block(append(prologue,
		jen.List(jen.Id(t), jen.Id(err)).Op(":=").Add(breaker.Clone().Dot("Allow").Call(ctx)),
		jen.If(jen.Id(err).Op("!=").Nil()).Block(rejected...),
		jen.Id(done).Op(":=").False(),
		jen.Defer().Func().Params().Block(
			jen.If(jen.Op("!").Id(done)).Block(
				breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), jen.Qual(RuntimePath, "ErrPanicked")),
			),
		).Call(),
		jen.List(resIDs...).Op(":=").Add(call),
		jen.Id(done).Op("=").True(),
		breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), jen.Id(results[nres-1])),
		jen.Return(resIDs...),
	)...)
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
