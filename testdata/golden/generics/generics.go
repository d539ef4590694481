// Package generics covers generic interfaces.
package generics

import "context"

// Key is a constraint with a type set.
type Key interface {
	~int | ~string
}

// Base is a generic interface that Repository embeds.
type Base[V any] interface {
	All(ctx context.Context) ([]V, error)
}

// Repository keeps values by key.
//
//purgatory:circuit name=repo
type Repository[K comparable, V any] interface {
	Base[V]
	Get(ctx context.Context, key K) (V, error)
	Put(ctx context.Context, key K, v V) error
	Index(ctx context.Context) (map[K]V, error)
	Watch(ctx context.Context) (chan<- V, error)
	Visit(ctx context.Context, fn func(V) error) (func(V) error, error)
	Size() int
}

// Cache has a type-set constraint written inline and one by name.
//
//purgatory:circuit
type Cache[K ~int | ~string, N Key, V interface{ ~[]byte | ~string }] interface {
	Load(k K, n N) (V, bool, error)
	Keys() ([]K, error)
}

// Ints instantiates a generic interface by embedding it.
//
//purgatory:circuit name=repo
type Ints interface {
	Repository[string, int]
}

// IntBase is an alias of an instantiated generic interface.
type IntBase = Base[int]

// ViaAlias embeds the alias of an instantiated generic interface.
//
//purgatory:circuit name=via-alias
type ViaAlias interface {
	IntBase
}
