//go:build !linux

package nodump

func disable() (bool, error) { return false, nil }

func dumpable() (bool, error) { return true, nil }
