package cli

// renewCommands are cert renew and cert renewal-info.
func renewCommands() []*command { return nil }

// alertsCommands are the alerts subcommands.
func alertsCommands() []*command { return nil }

// rotateCommand is certwright rotate.
func rotateCommand() *command {
	return &command{name: "rotate", summary: "emergency rotation: replace every certificate of a CA, profile or key"}
}
