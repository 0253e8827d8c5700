package cli

// agentCommand is certwright agent.
func agentCommand() *command {
	return &command{name: "agent", summary: "run the deployment agent: obtain, write, reload and renew certificates on this host"}
}
