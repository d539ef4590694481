// Package msg is internal to pub: code outside pub cannot import it.
package msg

// Message is exposed by pub through an alias.
type Message struct{ Body string }
