// Package pub exposes an internal type through an alias, like
// cloud.google.com/go/pubsub.Message.
package pub

import "github.com/purgatory-go/purgatory/testdata/golden/imports/pub/internal/msg"

// Message is an alias of an internal type: generated code must name the
// alias, not the internal package.
type Message = msg.Message
