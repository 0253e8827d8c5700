package api

// Lifecycle is what the lifecycle routes need.
type Lifecycle interface{}

func (h *Handler) lifecycleRoutes() []Route { return nil }
