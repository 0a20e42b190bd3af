package admincli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the platform through its gateway, as every API user does:
// x-api-key on every request, and the access token of its sign-in.
type client struct {
	base   string // gateway URL without a trailing slash
	apiKey string
	token  string
	http   *http.Client
}

// APIError is a failure envelope (or a non-JSON answer) from the platform.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

type envelope struct {
	Code    string          `json:"code"`
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// call sends method path (under the gateway) with body (nil: none) and
// decodes the envelope's data into out (nil: ignored). It returns the
// envelope's message.
func (c *client) call(ctx context.Context, method, path string, body, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return "", err
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Message == "" {
		return "", &APIError{Status: resp.StatusCode, Message: "unexpected answer: " + snippet(raw)}
	}
	if resp.StatusCode != http.StatusOK {
		return "", &APIError{Status: resp.StatusCode, Message: env.Message}
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return "", fmt.Errorf("%s %s: decoding the data: %w", method, path, err)
		}
	}
	return env.Message, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}

// signIn opens a session with email and password and keeps its access token.
func (c *client) signIn(ctx context.Context, email, password string) error {
	var res struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/auth/signin/basic", map[string]string{"email": email, "password": password}, &res); err != nil {
		return fmt.Errorf("sign-in as %s: %w", email, err)
	}
	if res.Tokens.AccessToken == "" {
		return fmt.Errorf("sign-in as %s: no access token in the answer", email)
	}
	c.token = res.Tokens.AccessToken
	return nil
}

// signOut ends the session signIn opened, so every run leaves no session
// behind. Best effort, bounded: the command's own outcome is what counts.
func (c *client) signOut() {
	if c.token == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.call(ctx, http.MethodDelete, "/auth/signout", nil, nil)
	c.token = ""
}

// User is a user as the admin API shows it.
type User struct {
	ID     string `json:"_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Status bool   `json:"status"`
	Roles  []struct {
		Code string `json:"code"`
	} `json:"roles"`
}

func (u User) roleList() string {
	codes := make([]string, 0, len(u.Roles))
	for _, r := range u.Roles {
		codes = append(codes, r.Code)
	}
	if len(codes) == 0 {
		return "-"
	}
	return strings.Join(codes, ",")
}

// resolveUser turns a user argument into an id: an id as is, an email
// through the admin API's look-up.
func (c *client) resolveUser(ctx context.Context, arg string) (string, error) {
	if isObjectID(arg) {
		return strings.ToLower(arg), nil
	}
	if !strings.Contains(arg, "@") {
		return "", usageErrorf("user %q is neither an id (24 hexadecimal characters) nor an email", arg)
	}
	var u User
	if _, err := c.call(ctx, http.MethodGet, "/auth/admin/users?email="+url.QueryEscape(arg), nil, &u); err != nil {
		return "", fmt.Errorf("user %s: %w", arg, err)
	}
	return u.ID, nil
}

func isObjectID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
