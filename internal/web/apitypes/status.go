package apitypes

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// StatusMessage is a non-2xx answer as one line for a client's message:
// the status, then the Error body's error and detail when body is one.
func StatusMessage(status int, body []byte) string {
	var e Error
	msg := strconv.Itoa(status) + " " + http.StatusText(status)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg += ": " + e.Error
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
	}
	return msg
}
