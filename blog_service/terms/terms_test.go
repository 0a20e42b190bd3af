package terms

import (
	"slices"
	"testing"
)

func TestOf(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"Quantum Gardening Basics", []string{"quantum", "gardening", "basic"}},
		{"The basics of quantum gardening, with tools!", []string{"basic", "quantum", "gardening", "tool"}},
		{"Go is fun: a Go-to guide", []string{"fun", "guide"}},
		{"Stories and glasses: status analysis", []string{"story", "glass", "status", "analysis"}},
		{"Café crème BRÛLÉE", []string{"café", "crème", "brûlée"}},
		{"Kubernetes 1.30 in 2024", []string{"kubernete", "2024"}},
		{"tools tool TOOLS", []string{"tool"}},
		{"", nil},
		{"a an of to", nil},
	}
	for _, c := range cases {
		if got := Of(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Of(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestUnion(t *testing.T) {
	got := Union([]string{"quantum", "garden"}, []string{"garden", "tool", "quantum", "soil"})
	if want := []string{"quantum", "garden", "tool", "soil"}; !slices.Equal(got, want) {
		t.Errorf("Union = %q, want %q", got, want)
	}
}
