package list

import (
	"bytes"
	"cmp"
	"slices"

	"blogplatform/blog_service/model"
)

// MaxSimilar is the reference's limit of similar blogs.
const MaxSimilar = 6

// Weights of a source title term found in a candidate's title and in its
// description, as the reference's text index weighs title and description.
const (
	titleWeight       = 3
	descriptionWeight = 1
)

// Rank orders candidates by similarity to a blog whose title has the terms
// sourceTitle and returns at most n of them. A candidate's similarity is
//
//	Σ over source title terms t: 3·[t in its title] + 1·[t in its description]
//
// Ties are broken like the reference's secondary sort (updatedAt desc, then
// score desc) and finally by newer _id, so the order is total.
func Rank(sourceTitle []string, candidates []model.Candidate, n int) []model.Candidate {
	wanted := make(map[string]struct{}, len(sourceTitle))
	for _, t := range sourceTitle {
		wanted[t] = struct{}{}
	}
	type scored struct {
		c          model.Candidate
		similarity int
	}
	ranked := make([]scored, 0, len(candidates))
	for _, c := range candidates {
		sim := 0
		for _, t := range c.TitleTerms {
			if _, ok := wanted[t]; ok {
				sim += titleWeight
			}
		}
		for _, t := range c.DescriptionTerms {
			if _, ok := wanted[t]; ok {
				sim += descriptionWeight
			}
		}
		if sim > 0 {
			ranked = append(ranked, scored{c, sim})
		}
	}
	slices.SortFunc(ranked, func(a, b scored) int {
		switch {
		case a.similarity != b.similarity:
			return b.similarity - a.similarity
		case a.c.UpdatedAt != b.c.UpdatedAt:
			return cmp.Compare(b.c.UpdatedAt, a.c.UpdatedAt)
		case a.c.Score != b.c.Score:
			return cmp.Compare(b.c.Score, a.c.Score)
		}
		return bytes.Compare(b.c.ID[:], a.c.ID[:])
	})
	out := make([]model.Candidate, 0, min(n, len(ranked)))
	for _, r := range ranked[:min(n, len(ranked))] {
		out = append(out, r.c)
	}
	return out
}
