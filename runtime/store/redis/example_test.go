package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store/redis"
)

// Every process that runs this shares the "payments" circuit: failures
// anywhere add up, and a trip anywhere rejects calls everywhere.
func Example() {
	client := goredis.NewClient(&goredis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // lets the store's 50 ms bound reach the socket
	})
	defer client.Close()
	st := redis.New(client, redis.WithPrefix("myapp:breakers:"))
	defer st.Close()

	f := purgatory.NewFactory(
		purgatory.WithStore(st),
		purgatory.WithListener(purgatory.NewSlogListener(slog.Default())), // store errors show up here
	)
	payments := f.Breaker("payments", purgatory.Config{Threshold: 5})

	err := payments.Do(context.Background(), func(ctx context.Context) error {
		return nil // call the payment provider here
	})
	if errors.Is(err, purgatory.ErrOpen) {
		fmt.Println("payments are down; try later")
	}
}
