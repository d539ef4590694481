package generator

// Types: how the generated file spells go/types types, and walks over them.

import (
	"fmt"
	"go/types"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"
)

// collectPkgs adds the packages of the named types in t.
func collectPkgs(t types.Type, pkgs map[string]*types.Package) {
	walkTypes(t, func(t types.Type) bool {
		if b, ok := t.(*types.Basic); ok && b.Kind() == types.UnsafePointer {
			pkgs["unsafe"] = types.Unsafe
		}
		if obj := typeName(t); obj != nil && obj.Pkg() != nil {
			pkgs[importPath(obj.Pkg().Path())] = obj.Pkg()
		}
		return true
	})
}

// typeName returns the name of a named type or alias, or nil for other
// types.
func typeName(t types.Type) *types.TypeName {
	switch t := t.(type) {
	case *types.Named:
		return t.Obj()
	case *types.Alias:
		return t.Obj()
	}
	return nil
}

// walkTypes calls fn for t and every type it is written with, once each,
// outside in; it does not descend into a type for which fn returns false.
func walkTypes(t types.Type, fn func(types.Type) bool) {
	seen := map[types.Type]bool{}
	var walk func(t types.Type)
	walk = func(t types.Type) {
		if t == nil || seen[t] {
			return
		}
		seen[t] = true
		if !fn(t) {
			return
		}
		switch t := t.(type) {
		case *types.Named:
			for a := range t.TypeArgs().Types() {
				walk(a)
			}
		case *types.Alias:
			for a := range t.TypeArgs().Types() {
				walk(a)
			}
		case *types.Pointer:
			walk(t.Elem())
		case *types.Slice:
			walk(t.Elem())
		case *types.Array:
			walk(t.Elem())
		case *types.Map:
			walk(t.Key())
			walk(t.Elem())
		case *types.Chan:
			walk(t.Elem())
		case *types.Signature:
			for p := range t.Params().Variables() {
				walk(p.Type())
			}
			for p := range t.Results().Variables() {
				walk(p.Type())
			}
		case *types.Struct:
			for f := range t.Fields() {
				walk(f.Type())
			}
		case *types.Interface:
			for m := range t.ExplicitMethods() {
				walk(m.Type())
			}
			for x := range t.EmbeddedTypes() {
				walk(x)
			}
		case *types.Union:
			for i := range t.Len() {
				walk(t.Term(i).Type())
			}
		}
	}
	walk(t)
}

// typ returns the code for t as the generated file spells it.
func (e *emitter) typ(t types.Type) *jen.Statement {
	switch t := t.(type) {
	case *types.Basic:
		if t.Kind() == types.UnsafePointer {
			return jen.Qual("unsafe", "Pointer")
		}
		return jen.Id(t.Name())
	case *types.Named:
		return e.named(t.Obj(), t.TypeArgs())
	case *types.Alias:
		return e.named(t.Obj(), t.TypeArgs())
	case *types.TypeParam:
		return jen.Id(t.Obj().Name())
	case *types.Pointer:
		return jen.Op("*").Add(e.typ(t.Elem()))
	case *types.Slice:
		return jen.Index().Add(e.typ(t.Elem()))
	case *types.Array:
		return jen.Index(jen.Lit(int(t.Len()))).Add(e.typ(t.Elem()))
	case *types.Map:
		return jen.Map(e.typ(t.Key())).Add(e.typ(t.Elem()))
	case *types.Chan:
		elem := e.typ(t.Elem())
		switch t.Dir() {
		case types.SendOnly:
			return jen.Chan().Op("<-").Add(elem)
		case types.RecvOnly:
			return jen.Op("<-").Chan().Add(elem)
		}
		if c, ok := t.Elem().(*types.Chan); ok && c.Dir() == types.RecvOnly {
			return jen.Chan().Parens(elem)
		}
		return jen.Chan().Add(elem)
	case *types.Signature:
		return jen.Func().Add(e.signature(t, nil))
	case *types.Struct:
		var fields []jen.Code
		for i := range t.NumFields() {
			f := t.Field(i)
			var s *jen.Statement
			if f.Embedded() {
				s = e.typ(f.Type())
			} else {
				s = jen.Id(f.Name()).Add(e.typ(f.Type()))
			}
			if tag := t.Tag(i); tag != "" {
				if strings.Contains(tag, "`") {
					s = s.Op(strconv.Quote(tag))
				} else {
					s = s.Op("`" + tag + "`")
				}
			}
			fields = append(fields, s)
		}
		return jen.Struct(fields...)
	case *types.Interface:
		if t.IsImplicit() && t.NumEmbeddeds() == 1 {
			return e.typ(t.EmbeddedType(0))
		}
		var items []jen.Code
		for i := range t.NumEmbeddeds() {
			items = append(items, e.typ(t.EmbeddedType(i)))
		}
		for i := range t.NumExplicitMethods() {
			m := t.ExplicitMethod(i)
			items = append(items, jen.Id(m.Name()).Add(e.signature(m.Type().(*types.Signature), nil)))
		}
		return jen.Interface(items...)
	case *types.Union:
		var terms []jen.Code
		for i := range t.Len() {
			term := t.Term(i)
			if term.Tilde() {
				terms = append(terms, jen.Op("~").Add(e.typ(term.Type())))
			} else {
				terms = append(terms, e.typ(term.Type()))
			}
		}
		return jen.Union(terms...)
	}
	panic(fmt.Sprintf("purgatorygen: unexpected type %T (%v)", t, t))
}

// named returns the code for a (possibly instantiated) named type or alias.
func (e *emitter) named(obj *types.TypeName, args *types.TypeList) *jen.Statement {
	var s *jen.Statement
	switch {
	case obj.Pkg() == nil || obj.Pkg() == e.m.pkg:
		s = jen.Id(obj.Name())
	default:
		s = jen.Qual(importPath(obj.Pkg().Path()), obj.Name())
	}
	if args.Len() > 0 {
		var codes []jen.Code
		for a := range args.Types() {
			codes = append(codes, e.typ(a))
		}
		s = s.Types(codes...)
	}
	return s
}

// signature returns the parameter and result lists of sig; names, when
// given, names the parameters.
func (e *emitter) signature(sig *types.Signature, names []string) *jen.Statement {
	var params []jen.Code
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		var s *jen.Statement
		if names != nil {
			s = jen.Id(names[i])
		} else {
			s = jen.Null()
		}
		if sig.Variadic() && i == sig.Params().Len()-1 {
			s = s.Op("...").Add(e.typ(p.Type().(*types.Slice).Elem()))
		} else {
			s = s.Add(e.typ(p.Type()))
		}
		params = append(params, s)
	}
	out := jen.Params(params...)
	res := sig.Results()
	switch res.Len() {
	case 0:
	case 1:
		out = out.Add(e.typ(res.At(0).Type()))
	default:
		var rs []jen.Code
		for r := range res.Variables() {
			rs = append(rs, e.typ(r.Type()))
		}
		out = out.Params(rs...)
	}
	return out
}

// typeParamDecls returns the type parameter list of im with constraints,
// and the bare list for instantiating it.
func (e *emitter) typeParamDecls(im *ifaceModel) (decl, use []jen.Code) {
	tps := im.typeParams()
	if tps == nil {
		return nil, nil
	}
	for tp := range tps.TypeParams() {
		decl = append(decl, jen.Id(tp.Obj().Name()).Add(e.typ(tp.Constraint())))
		use = append(use, jen.Id(tp.Obj().Name()))
	}
	return decl, use
}

// zeroLit returns a literal for the zero value of t, or nil when the code
// needs a variable of type t instead.
func zeroLit(t types.Type) jen.Code {
	if _, ok := types.Unalias(t).(*types.TypeParam); ok {
		return nil
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer, *types.Slice, *types.Map, *types.Chan, *types.Signature, *types.Interface:
		return jen.Nil()
	case *types.Basic:
		switch {
		case u.Kind() == types.UnsafePointer:
			return jen.Nil()
		case u.Info()&types.IsBoolean != 0:
			return jen.False()
		case u.Info()&types.IsString != 0:
			return jen.Lit("")
		case u.Info()&types.IsNumeric != 0:
			return jen.Lit(0)
		}
	}
	return nil
}
