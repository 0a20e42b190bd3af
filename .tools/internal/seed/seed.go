// Package seed loads demo data into a running platform through its public
// API (the gateway), as a person would: demo authors sign up and are made
// AUTHOR by the admin, write blogs across a few topics with tags, submit
// most of them, and the admin (an EDITOR) publishes most of those. A
// newcomer then sees full lists, tag pages and similar-blogs suggestions.
package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"blogplatform/devkit/envelope"
)

// MaxBlogs bounds one run: seeding is for a demo, not a load test.
const MaxBlogs = 10_000

// Options configure Run.
type Options struct {
	GatewayURL    string // e.g. http://127.0.0.1:8000
	APIKey        string
	AdminEmail    string // holds ADMIN and EDITOR
	AdminPassword string
	Blogs         int
	// Authors is the number of demo authors; 0 picks one per eight blogs,
	// between 2 and 12.
	Authors int
	// Workers is how many blogs are written at once; 0 means 8.
	Workers int
	// Progress receives the progress bar; nil shows none.
	Progress io.Writer
	// Terminal redraws the bar in place; otherwise a line is printed at each
	// tenth of the way.
	Terminal bool
	Client   *http.Client
}

// Result counts what a run created.
type Result struct {
	Authors                      []Author
	Published, Submitted, Drafts int
	// PublishedIDs are the ids of the published blogs, in creation order.
	PublishedIDs []string
	Elapsed      time.Duration
}

// Author is a demo author.
type Author struct {
	ID, Name, Email, Password string
	token                     string
}

// Run creates the demo data. It stops at the first failed call and says
// which; what was created before stays.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Blogs < 1 || o.Blogs > MaxBlogs {
		return nil, fmt.Errorf("seed: blogs must be between 1 and %d", MaxBlogs)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Authors <= 0 {
		o.Authors = min(max(o.Blogs/8, 2), len(authorNames))
	}
	o.Authors = min(o.Authors, len(authorNames), o.Blogs)
	api := &client{base: strings.TrimRight(o.GatewayURL, "/"), apiKey: o.APIKey, http: o.Client}
	start := time.Now()

	adminToken, _, err := api.signIn(ctx, o.AdminEmail, o.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("seed: admin sign-in: %w", err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	res := &Result{}
	for k := range o.Authors {
		a, err := api.newAuthor(ctx, adminToken, authorNames[k], run)
		if err != nil {
			return nil, fmt.Errorf("seed: author %q: %w", authorNames[k], err)
		}
		res.Authors = append(res.Authors, a)
	}

	bar := newProgress(o.Progress, o.Terminal, o.Blogs)
	states := make([]blogState, o.Blogs)
	ids := make([]string, o.Blogs)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan int)
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id, err := api.writeBlog(ctx, i, run, res.Authors[i%len(res.Authors)].token, adminToken)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("seed: blog %d: %w", i+1, err)
				}
				ids[i], states[i] = id, stateOf(i)
				mu.Unlock()
				if err == nil {
					bar.add(1)
				}
			}
		}()
	}
	for i := 0; i < o.Blogs; i++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	bar.done()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	for i, id := range ids {
		if id == "" {
			continue
		}
		switch states[i] {
		case statePublished:
			res.Published++
			res.PublishedIDs = append(res.PublishedIDs, id)
		case stateSubmitted:
			res.Submitted++
		default:
			res.Drafts++
		}
	}
	res.Elapsed = time.Since(start)
	return res, firstErr
}

// writeBlog creates demo blog i as its author, then takes it as far as its
// state says: submitted by the author, published by the editor.
func (c *client) writeBlog(ctx context.Context, i int, run, authorToken, editorToken string) (string, error) {
	content := makeBlog(i)
	var blog struct {
		ID string `json:"_id"`
	}
	slug := fmt.Sprintf("%s-%s-%d", slugify(content.Title), run, i)
	if err := c.do(ctx, http.MethodPost, "/blog/author", authorToken, map[string]any{
		"title": content.Title, "description": content.Description, "draftText": content.Text,
		"slug": slug, "imgUrl": "https://picsum.photos/seed/" + slug + "/800/400", "tags": content.Tags,
	}, &blog); err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	state := stateOf(i)
	if state == stateDraft {
		return blog.ID, nil
	}
	if err := c.do(ctx, http.MethodPut, "/blog/author/submit/id/"+blog.ID, authorToken, nil, nil); err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	if state == stateSubmitted {
		return blog.ID, nil
	}
	if err := c.do(ctx, http.MethodPut, "/blog/editor/publish/id/"+blog.ID, editorToken, nil, nil); err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	return blog.ID, nil
}

// slugify keeps a title's letters and digits, joined by dashes, short.
func slugify(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// client calls the platform through the gateway.
type client struct {
	base, apiKey string
	http         *http.Client
}

func (c *client) signIn(ctx context.Context, email, password string) (token, userID string, err error) {
	var out struct {
		User struct {
			ID string `json:"_id"`
		} `json:"user"`
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	err = c.do(ctx, http.MethodPost, "/auth/signin/basic", "", map[string]string{"email": email, "password": password}, &out)
	return out.Tokens.AccessToken, out.User.ID, err
}

// newAuthor signs a demo person up and has the admin make them an AUTHOR;
// the token is taken after the grant, so it carries the new role.
func (c *client) newAuthor(ctx context.Context, adminToken, name, run string) (Author, error) {
	a := Author{
		Name:     name,
		Email:    strings.ReplaceAll(strings.ToLower(name), " ", ".") + "." + run + "@example.com",
		Password: "demo-" + run,
	}
	var signup struct {
		User struct {
			ID string `json:"_id"`
		} `json:"user"`
	}
	if err := c.do(ctx, http.MethodPost, "/auth/signup/basic", "", map[string]string{
		"name": name, "email": a.Email, "password": a.Password,
	}, &signup); err != nil {
		return a, fmt.Errorf("sign-up: %w", err)
	}
	a.ID = signup.User.ID
	if err := c.do(ctx, http.MethodPost, "/auth/admin/users/"+a.ID+"/roles/AUTHOR", adminToken, nil, nil); err != nil {
		return a, fmt.Errorf("grant AUTHOR: %w", err)
	}
	token, _, err := c.signIn(ctx, a.Email, a.Password)
	if err != nil {
		return a, fmt.Errorf("sign-in: %w", err)
	}
	a.token = token
	return a, nil
}

// do sends one JSON request and decodes the envelope's data into out. A
// 429 from the gateway's per-address limits is waited out (Retry-After).
func (c *client) do(ctx context.Context, method, path, token string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("x-api-key", c.apiKey)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := c.http.Do(req)
		if err != nil {
			return err
		}
		raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode == http.StatusTooManyRequests {
			wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
			continue
		}
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(raw))
		}
		if out == nil {
			return nil
		}
		env, err := envelope.Decode(raw)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if err := env.Into(out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if !env.HasData() {
			return errors.New(method + " " + path + ": no data in the answer")
		}
		return nil
	}
}
