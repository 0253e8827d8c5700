package api

// Compliance is what the compliance report route needs.
type Compliance interface{}

func (h *Handler) complianceRoutes() []Route { return nil }
