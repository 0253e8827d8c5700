package api

// Importer is what the import route needs.
type Importer interface{}

func (h *Handler) importRoutes() []Route { return nil }
