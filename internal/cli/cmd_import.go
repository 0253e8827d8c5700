package cli

// importCommands are the cert import commands (cert import).
func importCommands() []*command { return nil }
