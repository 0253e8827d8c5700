package app

// tCachedSigners is how many unwrapped keys the instance's key provider
// holds in memory.
func tCachedSigners(in *tInstance) int { return in.app.soft.CachedSigners() }
