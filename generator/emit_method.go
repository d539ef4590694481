package generator

// Emit, per method: the guarded call and the forwarded one.

import (
	"go/types"
	"strconv"

	"github.com/dave/jennifer/jen"
)

// ctxParam returns the index of the first parameter when it is a
// context.Context, or -1.
func ctxParam(sig *types.Signature) int {
	if sig.Params().Len() == 0 {
		return -1
	}
	if n, ok := types.Unalias(sig.Params().At(0).Type()).(*types.Named); ok {
		if o := n.Obj(); o.Pkg() != nil && o.Pkg().Path() == "context" && o.Name() == "Context" {
			return 0
		}
	}
	return -1
}

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
		why := "it has no error result"
		if mm.skipped {
			why = "it is marked //purgatory:skip"
		}
		e.docf("%s calls the inner %s directly, without a breaker: %s.", name, im.name(), why)
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
	ctx := jen.Qual("context", "Background").Call()
	if ctxParam(sig) == 0 {
		ctx = jen.Id(params[0])
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
	newFn().Block(
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
	)
}
