package envfiles

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyMissingNeverOverwrites(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.example", "A=1\n")
	write("b.example", "B=1\n")
	write("b", "B=mine\n")
	pairs := []Pair{{"a.example", "a"}, {"b.example", "b"}, {"c.example", "c"}}

	results := CopyMissing(root, pairs)
	want := []Outcome{Created, KeptExisting, Failed}
	for i, r := range results {
		if r.Outcome != want[i] {
			t.Errorf("%s: outcome %v (err %v), want %v", r.Target, r.Outcome, r.Err, want[i])
		}
	}
	if data, _ := os.ReadFile(filepath.Join(root, "a")); string(data) != "A=1\n" {
		t.Errorf("a = %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "b")); string(data) != "B=mine\n" {
		t.Errorf("an existing file was overwritten: b = %q", data)
	}
	if _, err := os.Stat(filepath.Join(root, "c")); err == nil {
		t.Error("c created without an example")
	}
	// A second run keeps what the first created.
	if r := CopyMissing(root, pairs[:1]); r[0].Outcome != KeptExisting {
		t.Errorf("second run: %v", r[0].Outcome)
	}
}
