// Package edge covers corner cases: unexported interfaces (with non-ASCII
// names too), methods named like the wrapper's fields, circuit names that
// are not identifiers, results whose zero value needs a variable, and an
// interface large enough for the wrapper's doc to summarise it.
package edge

import "context"

// store is unexported: so are its wrapper and constructor.
//
//purgatory:circuit name=default
type store interface {
	inner() error
	fallback(ctx context.Context) ([4]byte, error)

	//purgatory:circuit name=2fa
	Default() (func(), error)

	//purgatory:circuit name=store/get.v2
	storeGetV2() (Handler, error)
}

// Handler is a named func type: its zero value is nil.
type Handler func(ctx context.Context) error

// 服务 is unexported with a name that starts with a rune of several bytes:
// its constructor is new服务Circuit.
//
//purgatory:circuit
type 服务 interface {
	Call(ctx context.Context) error
}

// équipe is unexported and starts with a lower-case non-ASCII letter: its
// constructor is newÉquipeCircuit.
//
//purgatory:circuit
type équipe interface {
	Join(ctx context.Context, who string) error
}

// S3 is an initialism ("an S3") with more methods than the wrapper's doc
// lists one by one.
//
//purgatory:circuit name=s3 skip=Region
type S3 interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, b []byte) error
	Delete(ctx context.Context, key string) error
	Head(ctx context.Context, key string) (int64, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Copy(ctx context.Context, from, to string) error
	Move(ctx context.Context, from, to string) error
	Tag(ctx context.Context, key string, tags map[string]string) error
	Untag(ctx context.Context, key string) error
	Lock(ctx context.Context, key string) error
	Unlock(ctx context.Context, key string) error

	//purgatory:circuit name=s3-multipart
	Upload(ctx context.Context, key string, parts [][]byte) error

	Region() string
	Bucket() string
	Close() error
}

var (
	_ = newStoreCircuit
	_ store
	_ = new服务Circuit
	_ = newÉquipeCircuit
)
