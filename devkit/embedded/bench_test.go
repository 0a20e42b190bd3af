package embedded

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Benchmarks behind the numbers reported to the team (not asserted anywhere):
//
//	go test -run '^$' -bench . -benchtime 200x ./embedded/

func BenchmarkStartStore(b *testing.B) {
	for b.Loop() {
		s, err := StartStore(context.Background(), StoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFind1000 compares a primary-key lookup with a lookup on an
// unindexed field (and on the same field with an index) in a collection of
// 1,000 documents, to show what FerretDB's SQLite backend pushes down.
func BenchmarkFind1000(b *testing.B) {
	s := startStore(b, StoreOptions{})
	ctx := context.Background()
	db := connect(b, s.URI()).Database("bench")
	docs := make([]any, 1000)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("id-%04d", i), "slug": fmt.Sprintf("slug-%04d", i), "n": i, "body": "lorem ipsum dolor sit amet"}
	}
	plain := db.Collection("plain")
	indexed := db.Collection("indexed")
	if _, err := plain.InsertMany(ctx, docs); err != nil {
		b.Fatal(err)
	}
	if _, err := indexed.InsertMany(ctx, docs); err != nil {
		b.Fatal(err)
	}
	if _, err := indexed.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "slug", Value: 1}}}); err != nil {
		b.Fatal(err)
	}

	run := func(b *testing.B, find func(i int) error) {
		i := 0
		for b.Loop() {
			if err := find(i % 1000); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	}
	b.Run("FindOne_by_id", func(b *testing.B) {
		run(b, func(i int) error {
			return plain.FindOne(ctx, bson.M{"_id": fmt.Sprintf("id-%04d", i)}).Err()
		})
	})
	b.Run("FindOne_by_unindexed_field", func(b *testing.B) {
		run(b, func(i int) error {
			return plain.FindOne(ctx, bson.M{"slug": fmt.Sprintf("slug-%04d", i)}).Err()
		})
	})
	b.Run("FindOne_by_indexed_field", func(b *testing.B) {
		run(b, func(i int) error {
			return indexed.FindOne(ctx, bson.M{"slug": fmt.Sprintf("slug-%04d", i)}).Err()
		})
	})
	b.Run("Find_all_by_unindexed_range", func(b *testing.B) {
		run(b, func(i int) error {
			cur, err := plain.Find(ctx, bson.M{"n": bson.M{"$gte": i, "$lt": i + 10}})
			if err != nil {
				return err
			}
			var out []bson.M
			return cur.All(ctx, &out)
		})
	})
}
