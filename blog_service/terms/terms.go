// Package terms turns a blog's title and description into the normalised
// terms stored with the blog and matched by the similar-blogs query. It stands
// in for MongoDB's english text index, which embedded stores such as FerretDB
// do not have, and behaves the same on every store.
//
// Normalisation, in order:
//  1. lower-case (Unicode);
//  2. split on every rune that is neither a letter nor a digit;
//  3. drop tokens of one or two runes ("go", "a", "10");
//  4. drop English stop words ("the", "with", "about", ...);
//  5. light stemming so that singular and plural meet: "-sses" becomes
//     "-ss" ("glasses" → "glass"), "-ies" becomes "-y" ("stories" → "story")
//     and a final "s" is trimmed unless the word ends in "ss", "us" or "is"
//     ("tools" → "tool"; "glass", "status" and "analysis" stay);
//  6. keep each term once, in order of first appearance.
package terms

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Of returns the distinct normalised terms of text.
func Of(text string) []string {
	var out []string
	seen := map[string]struct{}{}
	for _, token := range strings.FieldsFunc(text, isSeparator) {
		term := normalise(token)
		if term == "" {
			continue
		}
		if _, dup := seen[term]; dup {
			continue
		}
		seen[term] = struct{}{}
		out = append(out, term)
	}
	return out
}

// Union returns the terms of a followed by those of b not already in a.
func Union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]struct{}, len(a)+len(b))
	for _, list := range [][]string{a, b} {
		for _, t := range list {
			if _, dup := seen[t]; !dup {
				seen[t] = struct{}{}
				out = append(out, t)
			}
		}
	}
	return out
}

func isSeparator(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

func normalise(token string) string {
	if utf8.RuneCountInString(token) <= 2 {
		return ""
	}
	t := strings.ToLower(token)
	if _, stop := stopWords[t]; stop {
		return ""
	}
	t = stem(t)
	if utf8.RuneCountInString(t) <= 2 {
		return ""
	}
	return t
}

func stem(t string) string {
	switch {
	case strings.HasSuffix(t, "sses"):
		return t[:len(t)-2]
	case len(t) > 4 && strings.HasSuffix(t, "ies"):
		return t[:len(t)-3] + "y"
	case len(t) > 3 && strings.HasSuffix(t, "s") &&
		!strings.HasSuffix(t, "ss") && !strings.HasSuffix(t, "us") && !strings.HasSuffix(t, "is"):
		return t[:len(t)-1]
	}
	return t
}

// stopWords are common English words of three or more letters (shorter
// tokens are dropped anyway) that say nothing about a blog's subject.
var stopWords = func() map[string]struct{} {
	words := strings.Fields(`
		about above after again against all also and any are because been before
		being below between both but can cannot could did does doing down during each
		few for from further had has have having her here hers herself him himself his
		how into its itself just let more most myself nor not now off once only other
		ought our ours ourselves out over own same she should some such than that the
		their theirs them themselves then there these they this those through too under
		until very was were what when where which while who whom why will with would
		you your yours yourself yourselves get got make made many much may might must
		new one two use used using via way well yet
	`)
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return m
}()
