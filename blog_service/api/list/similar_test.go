package list

import (
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
)

func TestRank(t *testing.T) {
	id := func(n byte) bson.ObjectID { return bson.ObjectID{11: n} }
	source := []string{"quantum", "gardening", "basic"}
	candidates := []model.Candidate{
		{ID: id(1), UpdatedAt: 100, Score: 0.01, TitleTerms: []string{"quantum"}},                                            // 3
		{ID: id(2), UpdatedAt: 100, Score: 0.01, TitleTerms: []string{"quantum", "gardening"}},                               // 6
		{ID: id(3), UpdatedAt: 100, Score: 0.01, DescriptionTerms: []string{"quantum", "gardening", "basic"}},                // 3, ties with 1
		{ID: id(4), UpdatedAt: 200, Score: 0.01, TitleTerms: []string{"basic"}},                                              // 3, newer
		{ID: id(5), UpdatedAt: 100, Score: 0.50, TitleTerms: []string{"gardening"}},                                          // 3, higher score
		{ID: id(6), UpdatedAt: 100, Score: 0.01, TitleTerms: []string{"gardening"}, DescriptionTerms: []string{"gardening"}}, // 4
		{ID: id(7), UpdatedAt: 900, Score: 0.99, TitleTerms: []string{"rocket"}},                                             // 0: not similar
		{ID: id(8), UpdatedAt: 100, Score: 0.01, DescriptionTerms: []string{"basic"}},                                        // 1
	}
	var got []byte
	for _, c := range Rank(source, candidates, 6) {
		got = append(got, c.ID[11])
	}
	// 2 (6), 6 (4), then the 3s: 4 (newest), 5 (higher score), 3 and 1 by
	// _id descending; 8 (1) does not make the first six.
	if want := []byte{2, 6, 4, 5, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("Rank = %v, want %v", got, want)
	}
	if got := Rank(source, candidates[6:7], 6); len(got) != 0 {
		t.Errorf("a candidate sharing nothing was ranked: %v", got)
	}
	if got := Rank(source, candidates, 2); len(got) != 2 {
		t.Errorf("Rank(n=2) returned %d", len(got))
	}
}
