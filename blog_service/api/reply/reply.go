// Package reply writes success envelopes whose data is already JSON (cached
// bytes or freshly encoded ones), without decoding and re-encoding it.
package reply

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/api/change"
	"blogplatform/chassis/httpx"
)

const contentType = "application/json; charset=utf-8"

// envelopePrefix is {"code":"10000","status":200,"message":"<message>","data":
func envelopePrefix(message string) string {
	quoted, _ := json.Marshal(message) // a string always encodes
	return `{"code":"` + httpx.CodeSuccess + `","status":` + strconv.Itoa(http.StatusOK) +
		`,"message":` + string(quoted) + `,"data":`
}

var successPrefix = envelopePrefix("success")

// Success answers 200 "success" with data, which must be valid JSON.
func Success(c *gin.Context, data []byte) { raw(c, successPrefix, data) }

// raw writes prefix + data + "}" through the server's buffered writer,
// without assembling a copy of the body.
func raw(c *gin.Context, prefix string, data []byte) {
	h := c.Writer.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(prefix)+len(data)+1))
	c.Status(http.StatusOK)
	_, _ = c.Writer.WriteString(prefix)
	_, _ = c.Writer.Write(data)
	_, _ = c.Writer.WriteString("}")
	c.Abort()
}

// Fail is httpx.Fail that also answers a *change.Conflict as 409 with its
// message.
func Fail(c *gin.Context, err error) {
	var conflict *change.Conflict
	if errors.As(err, &conflict) {
		c.Error(err) //nolint:errcheck // recorded for the access log only
		httpx.FailStatus(c, http.StatusConflict, conflict.Message)
		return
	}
	httpx.Fail(c, err)
}
