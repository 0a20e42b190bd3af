package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
)

func record(handler gin.HandlerFunc) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	handler(c)
	return rec
}

// TestRawDataWritesWhatDataWrites: the pre-encoded writer sends the bytes
// and headers Data sends for the same value, for the common message and
// for messages JSON must escape.
func TestRawDataWritesWhatDataWrites(t *testing.T) {
	for _, tc := range []struct{ message, data string }{
		{"success", `{"_id":"66a0","tags":["A","B"]}`},
		{"success", `[]`},
		{"blog created successfully", `{"title":"\u003cb\u003e\u0026"}`}, // data as json.Marshal writes it
		{`quote " and <tag> & é`, `[1,2,3]`},
	} {
		want := record(func(c *gin.Context) { Data(c, tc.message, json.RawMessage(tc.data)) })
		got := record(func(c *gin.Context) { RawData(c, tc.message, []byte(tc.data)) })
		if got.Code != http.StatusOK || got.Body.String() != want.Body.String() {
			t.Errorf("RawData(%q) = %d %s, want %d %s", tc.message, got.Code, got.Body, want.Code, want.Body)
		}
		if got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("Content-Type %q, want %q", got.Header().Get("Content-Type"), want.Header().Get("Content-Type"))
		}
		if cl := got.Header().Get("Content-Length"); cl != strconv.Itoa(got.Body.Len()) {
			t.Errorf("Content-Length %s for a %d-byte body", cl, got.Body.Len())
		}
	}
}

// TestConflictIs409: a conflict error answers 409 with its message.
func TestConflictIs409(t *testing.T) {
	rec := record(func(c *gin.Context) {
		Fail(c, errors.Join(apperr.New(apperr.Conflict, "blog changed since the reviewed state")))
	})
	var env Envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusConflict || env.Status != 409 || env.Code != CodeFailure || env.Message != "blog changed since the reviewed state" {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

func BenchmarkRawData(b *testing.B) {
	data := []byte(`{"_id":"66a0f0f0f0f0f0f0f0f0f0f0","title":"t","text":"body"}`)
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec.Body.Reset()
		RawData(c, "success", data)
	}
}
