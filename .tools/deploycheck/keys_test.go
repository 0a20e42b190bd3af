package deploycheck

import (
	"strings"
	"testing"
)

// auth_service/keys/private.pem is 0600 (keygen), so the auth container must
// run as its owner: the image's user 10001 unless AUTH_UID/AUTH_GID say
// otherwise. The blog containers keep the image's user.
func TestComposeAuthRunsAsTheKeyOwner(t *testing.T) {
	if !strings.Contains(readRepoFile(t, "auth_service/Dockerfile"), "\nUSER 10001:10001\n") {
		t.Fatal("auth_service/Dockerfile no longer runs as 10001:10001; update the compose default and keygen")
	}
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			byDefault := mustLoadCompose(t, f.name)
			mine := mustLoadComposeWith(t, f.name, map[string]string{"AUTH_UID": "1000", "AUTH_GID": "1001"})
			for _, name := range f.authReplicas {
				if got := byDefault.Services[name].User; got != "10001:10001" {
					t.Errorf("%s runs as %q by default, want 10001:10001 (the image's user)", name, got)
				}
				if got := mine.Services[name].User; got != "1000:1001" {
					t.Errorf("%s runs as %q with AUTH_UID=1000 AUTH_GID=1001", name, got)
				}
			}
			for _, name := range f.blogReplicas {
				if got := byDefault.Services[name].User; got != "" {
					t.Errorf("%s overrides the image's user with %q", name, got)
				}
			}
		})
	}
}
