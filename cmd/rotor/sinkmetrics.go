package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor/audit"
)

// sinkCollector exposes the audit sinks' state as metrics.
type sinkCollector struct {
	shippers []*audit.Shipper
}

var (
	sinkUpDesc      = prometheus.NewDesc("rotor_audit_sink_up", "1 while the audit sink accepts records, 0 from a failed delivery to the next success.", []string{"sink"}, nil)
	sinkShippedDesc = prometheus.NewDesc("rotor_audit_sink_shipped_total", "Audit records delivered to the sink.", []string{"sink"}, nil)
	sinkDroppedDesc = prometheus.NewDesc("rotor_audit_sink_dropped_total", "Audit records dropped because the sink's buffer was full (the chain still holds them).", []string{"sink"}, nil)
	sinkPendingDesc = prometheus.NewDesc("rotor_audit_sink_pending", "Audit records waiting for the sink.", []string{"sink"}, nil)
)

// Describe implements prometheus.Collector.
func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sinkUpDesc, sinkShippedDesc, sinkDroppedDesc, sinkPendingDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sh := range c.shippers {
		st := sh.State()
		up := 0.0
		if st.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(sinkUpDesc, prometheus.GaugeValue, up, st.Name)
		ch <- prometheus.MustNewConstMetric(sinkShippedDesc, prometheus.CounterValue, float64(st.Shipped), st.Name)
		ch <- prometheus.MustNewConstMetric(sinkDroppedDesc, prometheus.CounterValue, float64(st.Dropped), st.Name)
		ch <- prometheus.MustNewConstMetric(sinkPendingDesc, prometheus.GaugeValue, float64(st.Pending), st.Name)
	}
}
