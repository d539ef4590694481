// Package buildtags covers files excluded by build constraints and test
// files, neither of which is scanned.
package buildtags

import "context"

// Always is in every build.
//
//purgatory:circuit
type Always interface {
	Run(ctx context.Context) error
}
