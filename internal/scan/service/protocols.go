package service

import (
	"bytes"
	"context"
	"slices"
)

// protocol is one application protocol Detect knows.
type protocol struct {
	name  string // Result.Protocol
	title string // for messages
	// serverFirst protocols greet before the client says anything.
	serverFirst bool
	// greets recognises the start of this protocol's greeting; expected is
	// true when the port or the caller already named this protocol.
	greets func(b []byte, expected bool) bool
	// alpn is offered when the protocol is tried inside implicit TLS.
	alpn []string
	// run talks the protocol on s and fills r. It returns an error wrapping
	// errNotThis when the peer does not speak it.
	run func(ctx context.Context, d *detector, s *session, r *Result) error
	// upgrade performs the in-protocol switch to TLS on a new connection;
	// nil when the protocol has none.
	upgrade func(ctx context.Context, d *detector, w *wire) error
}

// Protocol names as they appear in Result.Protocol.
const (
	ProtoSMTP       = "smtp"
	ProtoIMAP       = "imap"
	ProtoPOP3       = "pop3"
	ProtoFTP        = "ftp"
	ProtoLDAP       = "ldap"
	ProtoXMPP       = "xmpp"
	ProtoPostgreSQL = "postgresql"
	ProtoMySQL      = "mysql"
	ProtoRedis      = "redis"
	ProtoAMQP       = "amqp"
	ProtoMQTT       = "mqtt"
	ProtoNATS       = "nats"
	ProtoHTTP       = "http"
	ProtoTLS        = "tls"
	ProtoUnknown    = "unknown"
)

var protocols = map[string]*protocol{
	ProtoSMTP:       {name: ProtoSMTP, title: "SMTP", serverFirst: true, greets: greetsSMTP, run: runSMTP, upgrade: upgradeSMTP},
	ProtoIMAP:       {name: ProtoIMAP, title: "IMAP", serverFirst: true, greets: greetsIMAP, alpn: []string{"imap"}, run: runIMAP, upgrade: upgradeIMAP},
	ProtoPOP3:       {name: ProtoPOP3, title: "POP3", serverFirst: true, greets: greetsPOP3, alpn: []string{"pop3"}, run: runPOP3, upgrade: upgradePOP3},
	ProtoFTP:        {name: ProtoFTP, title: "FTP", serverFirst: true, greets: greetsFTP, alpn: []string{"ftp"}, run: runFTP, upgrade: upgradeFTP},
	ProtoLDAP:       {name: ProtoLDAP, title: "LDAP", run: runLDAP, upgrade: upgradeLDAP},
	ProtoXMPP:       {name: ProtoXMPP, title: "XMPP", alpn: []string{"xmpp-client"}, run: runXMPP, upgrade: upgradeXMPP},
	ProtoPostgreSQL: {name: ProtoPostgreSQL, title: "PostgreSQL", alpn: []string{"postgresql"}, run: runPostgres, upgrade: upgradePostgres},
	ProtoMySQL:      {name: ProtoMySQL, title: "MySQL", serverFirst: true, greets: greetsMySQL, run: runMySQL, upgrade: upgradeMySQL},
	ProtoRedis:      {name: ProtoRedis, title: "Redis", run: runRedis},
	ProtoAMQP:       {name: ProtoAMQP, title: "AMQP", alpn: []string{"amqp"}, run: runAMQP},
	ProtoMQTT:       {name: ProtoMQTT, title: "MQTT", alpn: []string{"mqtt"}, run: runMQTT},
	ProtoNATS:       {name: ProtoNATS, title: "NATS", serverFirst: true, greets: greetsNATS, run: runNATS, upgrade: upgradeNATS},
	ProtoHTTP:       {name: ProtoHTTP, title: "HTTP", alpn: []string{"http/1.1"}, run: runHTTP},
}

// bannerOrder is the order greetings are tried in when the port names no
// protocol (or its protocol did not match): FTP before SMTP because both
// greet with 220 and only FTP is told apart by its text.
var bannerOrder = []string{ProtoMySQL, ProtoIMAP, ProtoPOP3, ProtoNATS, ProtoFTP, ProtoSMTP}

func protocolNames() []string {
	names := make([]string, 0, len(protocols))
	for n := range protocols {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// hint is what the port (or Options.Protocol) suggests.
type hint struct {
	proto       *protocol // nil: nothing known
	implicitTLS bool
}

// wellKnownPorts maps IANA ports to their protocol and whether TLS comes first.
var wellKnownPorts = map[int]struct {
	proto       string
	implicitTLS bool
}{
	21: {ProtoFTP, false}, 25: {ProtoSMTP, false}, 80: {ProtoHTTP, false}, 110: {ProtoPOP3, false},
	143: {ProtoIMAP, false}, 389: {ProtoLDAP, false}, 443: {ProtoHTTP, true}, 465: {ProtoSMTP, true},
	587: {ProtoSMTP, false}, 636: {ProtoLDAP, true}, 990: {ProtoFTP, true}, 993: {ProtoIMAP, true},
	995: {ProtoPOP3, true}, 1883: {ProtoMQTT, false}, 2525: {ProtoSMTP, false}, 3268: {ProtoLDAP, false},
	3269: {ProtoLDAP, true}, 3306: {ProtoMySQL, false}, 4222: {ProtoNATS, false}, 5222: {ProtoXMPP, false},
	5223: {ProtoXMPP, true}, 5432: {ProtoPostgreSQL, false}, 5671: {ProtoAMQP, true}, 5672: {ProtoAMQP, false},
	6379: {ProtoRedis, false}, 8000: {ProtoHTTP, false}, 8080: {ProtoHTTP, false}, 8443: {ProtoHTTP, true},
	8883: {ProtoMQTT, true}, 9443: {ProtoHTTP, true},
}

func hintFor(port int, name string) hint {
	if name != "" {
		return hint{proto: protocols[name]}
	}
	wk, ok := wellKnownPorts[port]
	if !ok {
		return hint{}
	}
	return hint{proto: protocols[wk.proto], implicitTLS: wk.implicitTLS}
}

// candidates lists what to try, in order, once no banner came. Each
// candidate costs at most one connection.
func (h hint) candidates() []candidate {
	switch {
	case h.proto == nil:
		return []candidate{{tls: true}, {proto: protocols[ProtoHTTP]}}
	case h.implicitTLS:
		return []candidate{{tls: true, proto: h.proto}, {proto: h.proto}}
	case h.proto.serverFirst:
		return []candidate{{tls: true, proto: h.proto}}
	default:
		return []candidate{{proto: h.proto}, {tls: true, proto: h.proto}}
	}
}

// classifyBanner names the protocol of a greeting, or nil.
func classifyBanner(b []byte, h hint) *protocol {
	if h.proto != nil && h.proto.greets != nil && h.proto.greets(b, true) {
		return h.proto
	}
	for _, name := range bannerOrder {
		if p := protocols[name]; p.greets(b, false) {
			return p
		}
	}
	return nil
}

// replyCode reports whether b starts with one of the three-digit codes
// followed by a space, a hyphen, CR or the end of the data.
func replyCode(b []byte, codes ...string) bool {
	for _, c := range codes {
		if bytes.HasPrefix(b, []byte(c)) && (len(b) == 3 || bytes.IndexByte([]byte(" -\r"), b[3]) >= 0) {
			return true
		}
	}
	return false
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r"))
}

func containsFold(b []byte, sub string) bool {
	return bytes.Contains(bytes.ToUpper(b), []byte(sub))
}
