package cli

import (
	"flag"
	"fmt"
	"strings"
)

// clientFlagNames lists the client flags as "--name", from the one place
// that defines them.
func clientFlagNames() []string {
	fs, _ := newClientFlagSet("")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	return names
}

// liftClientFlags takes the client flags (and their values) at the front
// of args, where a command name was expected: "certwright --json --server
// URL cert list" and "certwright cert --context prod list" run the leaf
// with those flags. Anything else that looks like a flag there is a usage
// error naming the flags accepted before a command.
func liftClientFlags(args []string) (lifted, rest []string, err error) {
	for len(args) > 0 {
		a := args[0]
		if !strings.HasPrefix(a, "-") || isHelpArg(a) {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name == "" || strings.HasPrefix(name, "-") || !isClientFlag(name) {
			return nil, nil, newUsageError(fmt.Sprintf("unknown flag %s before the command", a),
				fmt.Sprintf("before the command only the client flags are accepted (%s); a command's own flags go after it, e.g. \"certwright cert list --status valid\"",
					strings.Join(clientFlagNames(), ", ")))
		}
		lifted = append(lifted, a)
		args = args[1:]
		if hasValue || name == "json" {
			continue
		}
		if len(args) == 0 {
			return nil, nil, newUsageError(fmt.Sprintf("flag %s needs a value", a),
				fmt.Sprintf("e.g. \"certwright %s VALUE ca list\"", a))
		}
		lifted = append(lifted, args[0])
		args = args[1:]
	}
	return lifted, args, nil
}
