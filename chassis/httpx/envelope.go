// Package httpx is the HTTP side of the chassis: the response envelope, request
// binding and validation, the gin engine with its middleware, and the server
// with timeouts and graceful shutdown.
package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
)

// Envelope codes, as strings on the wire.
const (
	CodeSuccess = "10000"
	CodeFailure = "10001"
)

// Envelope is every service response. Field order is the wire order; Data is
// omitted when nil, while an empty non-nil list is sent as [].
type Envelope struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// OK answers 200 with a message and no data.
func OK(c *gin.Context, message string) {
	c.AbortWithStatusJSON(http.StatusOK, Envelope{Code: CodeSuccess, Status: http.StatusOK, Message: message})
}

// Data answers 200 with a message and data.
func Data(c *gin.Context, message string, data any) {
	c.AbortWithStatusJSON(http.StatusOK, Envelope{Code: CodeSuccess, Status: http.StatusOK, Message: message, Data: data})
}

// RawData answers 200 with a message and data that is already JSON (cached
// bytes or freshly encoded ones): the same bytes Data would send, written
// through the server's buffered writer without decoding data or assembling
// a copy of the body. data must be valid JSON.
func RawData(c *gin.Context, message string, data []byte) {
	prefix := successPrefix
	if message != "success" {
		prefix = envelopePrefix(message)
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(prefix)+len(data)+1))
	c.Status(http.StatusOK)
	_, _ = c.Writer.WriteString(prefix)
	_, _ = c.Writer.Write(data)
	_, _ = c.Writer.WriteString("}")
	c.Abort()
}

// envelopePrefix is the success envelope up to its data:
// {"code":"10000","status":200,"message":<message>,"data":
func envelopePrefix(message string) string {
	quoted, _ := json.Marshal(message) // a string always encodes
	return `{"code":"` + CodeSuccess + `","status":` + strconv.Itoa(http.StatusOK) +
		`,"message":` + string(quoted) + `,"data":`
}

// successPrefix is envelopePrefix("success"), the message of every read.
var successPrefix = envelopePrefix("success")

// Fail answers with the error's status and client-safe message. The internal
// cause of a 5xx is logged with the request id, never sent.
func Fail(c *gin.Context, err error) {
	if isUnavailable := unavailable(c); isUnavailable != nil && isUnavailable(err) {
		if e := apperr.From(err); e.Status() == 500 {
			err = apperr.Wrap(apperr.Unavailable, ServiceUnavailableMessage, err)
		}
	}
	status, msg := apperr.Public(err)
	if status >= 500 {
		logger(c).ErrorContext(c.Request.Context(), "request failed",
			"status", status, "error", err.Error(), "method", c.Request.Method, "path", c.Request.URL.Path)
	}
	if status == http.StatusTooManyRequests {
		if c.Writer.Header().Get("Retry-After") == "" {
			c.Header("Retry-After", "60")
		}
	}
	c.Error(err) //nolint:errcheck // recorded for the access log only
	c.AbortWithStatusJSON(status, Envelope{Code: CodeFailure, Status: status, Message: msg})
}

// FailStatus answers a failure envelope with an explicit status and message.
func FailStatus(c *gin.Context, status int, message string) {
	c.AbortWithStatusJSON(status, Envelope{Code: CodeFailure, Status: status, Message: message})
}

// ServiceUnavailableMessage answers a request that failed because a required
// dependency (the store) is unreachable.
const ServiceUnavailableMessage = "service unavailable"
