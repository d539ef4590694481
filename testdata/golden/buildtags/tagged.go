//go:build purgatory_tagged

package buildtags

import "context"

// Tagged exists only with -tags purgatory_tagged.
//
//purgatory:circuit
type Tagged interface {
	Run(ctx context.Context) error
}
