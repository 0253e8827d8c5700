// Package archtest owns the architecture rules as tests: the domain core
// imports no HTTP, SQL or driver package, the web edge holds no keys, and
// every package says what it owns in a doc comment.
package archtest
