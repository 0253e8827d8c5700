package service

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRealServices runs Detect against the services on this machine's
// loopback (the CI machine has all of them). What each offers was checked
// by hand: PostgreSQL 15 has ssl=on and trusts 127.0.0.1 without TLS,
// MariaDB has have_ssl=DISABLED, the others listen in plaintext without
// authentication.
func TestRealServices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr, version string
		want                want
	}{
		{"PostgreSQL", "127.0.0.1:5432", "", want{ProtoPostgreSQL, EncryptionOptional, []string{CodeTLSOptional}, true}},
		{"MariaDB", "127.0.0.1:3306", "MariaDB", want{ProtoMySQL, EncryptionNone, []string{CodeNoTLS}, false}},
		{"Redis", "127.0.0.1:6379", ".", want{ProtoRedis, EncryptionNone, []string{CodeNoTLS, CodeUnauthenticated}, false}},
		{"RabbitMQ", "127.0.0.1:5672", "RabbitMQ", want{ProtoAMQP, EncryptionNone, []string{CodeNoTLS}, false}},
		{"Mosquitto", "127.0.0.1:1883", "", want{ProtoMQTT, EncryptionNone, []string{CodeNoTLS, CodeUnauthenticated}, false}},
		{"NATS", "127.0.0.1:4222", ".", want{ProtoNATS, EncryptionNone, []string{CodeNoTLS, CodeUnauthenticated}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", tt.addr, time.Second)
			if err != nil {
				t.Skipf("%s is not listening on %s: %v", tt.name, tt.addr, err)
			}
			_ = c.Close()
			r, err := Detect(testContext(t), tt.addr, Options{})
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, tt.want)
			if !strings.Contains(r.Version, tt.version) {
				t.Errorf("version %q does not contain %q", r.Version, tt.version)
			}
			if tt.want.dialer {
				assertUpgrade(t, r)
			}
		})
	}
}
