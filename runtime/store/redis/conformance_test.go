package redis

import (
	"testing"

	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/purgatory-go/purgatory/runtime/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := needRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, testPrefix()) })
}
