package migrate

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The runner's behaviour against a store is tested in
// blogplatform/devkit/chassistest/migrate; New needs no server.

func TestNewRejectsBadLists(t *testing.T) {
	run := func(context.Context, *Progress) error { return nil }
	tests := []struct {
		name  string
		steps []Step
		want  string
	}{
		{"bad name", []Step{{Name: "Has Space", Run: run}}, "step name"},
		{"colon", []Step{{Name: "lock:x", Run: run}}, "step name"},
		{"twice", []Step{{Name: "a", Run: run}, {Name: "a", Run: run}}, "listed twice"},
		{"no run", []Step{{Name: "a"}}, "no Run"},
		{"foreground after background", []Step{{Name: "a", Background: true, Run: run}, {Name: "b", Run: run}}, "comes after a background step"},
	}
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/never-contacted"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	db := client.Database("never-contacted")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(db, tt.steps, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := New(db, []Step{{Name: "0001.indexes", Run: run}, {Name: "b_2-x", Background: true, Run: run}}, Options{}); err != nil {
		t.Fatalf("valid list refused: %v", err)
	}
}
