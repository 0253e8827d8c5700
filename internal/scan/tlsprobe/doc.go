// Package tlsprobe enumerates what a TLS server offers — protocol
// versions, cipher suites per version, key-exchange groups and DH sizes,
// the server's suite order, secure renegotiation, TLS_FALLBACK_SCSV and
// the certificate chain — by sending hand-built ClientHellos and reading
// only the server's first flight. Call Enumerate with a Dialer that
// returns a connection ready for a ClientHello (the STARTTLS packages
// upgrade before returning it) and grade the Report with package grade.
//
// Why its own ClientHello builder and ServerHello parser rather than
// zcrypto or crypto/tls: crypto/tls cannot offer SSLv3, export, NULL,
// anonymous or most CBC and RSA key-transport suites, which are exactly
// what a scan must detect. zcrypto can, but it is a fork of a 2015
// crypto/tls: tens of thousands of lines doing full handshakes we never
// need, with its own bugs and lagging TLS 1.3. A probe only has to send a
// ClientHello and read a ServerHello, Certificate and ServerKeyExchange
// (or an alert), never finishing the handshake; that is a few hundred
// lines here, built on cryptobyte, every read bounded and every parser
// fuzzed. The one thing it cannot read is the TLS 1.3 certificate, which
// is encrypted: that comes from one ordinary crypto/tls handshake that
// records the chain without judging it.
//
// Bounds: each connection has a deadline (Options.Timeout); a record is at
// most 2^14+2048 bytes, a handshake message 64 KiB and a server's whole
// first flight 256 KiB; one Enumerate makes at most Options.MaxConnections
// connections, MinInterval apart. Bytes from the server only reach an
// error or note quoted and cut to 32 bytes. SSL 2.0 is not probed.
package tlsprobe
