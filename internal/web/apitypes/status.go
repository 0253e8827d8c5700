package apitypes

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// StatusMessage is a non-2xx answer as one line for a client's message:
// the status, then the Error body's error and detail when body is one.
func StatusMessage(status int, body []byte) string {
	var e Error
	msg := strconv.Itoa(status) + " " + http.StatusText(status)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg += ": " + e.Message()
	}
	return msg
}

// Message is the error's label and detail as one line, the label said
// once when the detail already starts with it ("CA cannot issue: CA
// issuing is disabled", not "CA cannot issue: CA cannot issue: …").
func (e Error) Message() string {
	switch {
	case e.Detail == "":
		return e.Error
	case e.Error == "" || strings.HasPrefix(e.Detail, e.Error+": "):
		return e.Detail
	}
	return e.Error + ": " + e.Detail
}
