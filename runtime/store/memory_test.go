package store_test

import (
	"testing"

	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/purgatory-go/purgatory/runtime/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}
