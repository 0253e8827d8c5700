package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bus is the replicas' notification listener as the metrics see it.
// *store.DB implements it.
type Bus interface {
	// BusBehindFor is how long ago the listener last caught up with the
	// database; 0 where there is no bus (SQLite) or it is not running.
	BusBehindFor() time.Duration
	// BusRejected counts the notices dropped as unsigned or stale.
	BusRejected() uint64
}

var (
	descBusBehind = prometheus.NewDesc("certwright_bus_catchup_age_seconds",
		"Seconds since this replica's notification listener last caught up with the database (PostgreSQL; 0 on SQLite). Above 5 the replica is not ready.",
		nil, nil)
	descBusRejected = prometheus.NewDesc("certwright_bus_notices_rejected_total",
		"Notices on the replicas' channel dropped as unsigned, signed under another key, or more than 30 s old or ahead: another process with database access but not this instance's KEK is sending, or a replica's clock is off.",
		nil, nil)
)

// RegisterBus adds the notification listener's figures. Call it once.
func (m *Metrics) RegisterBus(b Bus) error {
	if b == nil {
		return fmt.Errorf("metrics: register bus: no bus")
	}
	if err := m.reg.Register(busCollector{b}); err != nil {
		return fmt.Errorf("metrics: register bus: %w", err)
	}
	return nil
}

// busCollector reads the listener's state at scrape time.
type busCollector struct{ bus Bus }

func (c busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBusBehind
	ch <- descBusRejected
}

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBusBehind, prometheus.GaugeValue, c.bus.BusBehindFor().Seconds())
	ch <- prometheus.MustNewConstMetric(descBusRejected, prometheus.CounterValue, float64(c.bus.BusRejected()))
}
