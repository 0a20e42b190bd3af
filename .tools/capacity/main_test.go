package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blogplatform/tools/capacity/plan"
)

func TestParseMix(t *testing.T) {
	m, err := parseMix("90, 8,2")
	if err != nil {
		t.Fatal(err)
	}
	if m[plan.PublicRead] != 0.9 || m[plan.ProtectedRead] != 0.08 || m[plan.Write] != 0.02 {
		t.Fatalf("mix %v", m)
	}
	for _, bad := range []string{"90,8", "90,8,x", "90,8,3", "100,-5,5"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("-mix %q: no error", bad)
		}
	}
}

func TestRunFlags(t *testing.T) {
	costs := filepath.Join("measured.json")
	out := filepath.Join(t.TempDir(), "plan.md")
	if err := run([]string{"-costs", costs, "-rates", "5000", "-mix", "80,15,5", "-o", out}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "| 5,000 |") || !strings.Contains(string(got), "80 % public read, 15 % protected read, 5 % write") {
		t.Fatalf("plan for 5,000 req/s at 80/15/5 lacks its rate or mix:\n%s", got)
	}
	for _, args := range [][]string{
		{"-costs", costs, "-rates", "0"},
		{"-costs", costs, "-pod-util", "1.5"},
		{"-costs", costs, "-mongo-cores", "0"},
		{"-costs", filepath.Join(t.TempDir(), "missing.json")},
	} {
		if err := run(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
