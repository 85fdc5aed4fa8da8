// Command otelcol-contrib is the rig's stand-in for the upstream
// otel/opentelemetry-collector-contrib:0.165.0 image: the same collector
// (core v0.165.0 / v1.71.0, contrib v0.165.0), but with only the components
// apimdev's telemetry pipeline uses. components() is what the collector's
// builder (ocb) would generate for that component list.
package main

import (
	"log"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpsprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

const (
	version     = "0.165.0"
	coreVersion = "v0.165.0"
	confVersion = "v1.71.0"
	contribVer  = "v0.165.0"
)

func components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}

	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](); err != nil {
		return otelcol.Factories{}, err
	}
	f.ExtensionModules = map[component.Type]string{}

	otlp := otlpreceiver.NewFactory()
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlp); err != nil {
		return otelcol.Factories{}, err
	}
	f.ReceiverModules = map[component.Type]string{
		otlp.Type(): "go.opentelemetry.io/collector/receiver/otlpreceiver " + coreVersion,
	}

	batch := batchprocessor.NewFactory()
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](batch); err != nil {
		return otelcol.Factories{}, err
	}
	f.ProcessorModules = map[component.Type]string{
		batch.Type(): "go.opentelemetry.io/collector/processor/batchprocessor " + coreVersion,
	}

	debug, prom := debugexporter.NewFactory(), prometheusexporter.NewFactory()
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](debug, prom); err != nil {
		return otelcol.Factories{}, err
	}
	f.ExporterModules = map[component.Type]string{
		debug.Type(): "go.opentelemetry.io/collector/exporter/debugexporter " + coreVersion,
		prom.Type():  "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter " + contribVer,
	}

	if f.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](); err != nil {
		return otelcol.Factories{}, err
	}
	f.ConnectorModules = map[component.Type]string{}
	return f, nil
}

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-contrib",
			Description: "OpenTelemetry Collector Contrib (apimdev e2e build: otlp, batch, debug, prometheus)",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					httpprovider.NewFactory(),
					httpsprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
		ProviderModules: map[string]string{
			"env":   "go.opentelemetry.io/collector/confmap/provider/envprovider " + confVersion,
			"file":  "go.opentelemetry.io/collector/confmap/provider/fileprovider " + confVersion,
			"http":  "go.opentelemetry.io/collector/confmap/provider/httpprovider " + confVersion,
			"https": "go.opentelemetry.io/collector/confmap/provider/httpsprovider " + confVersion,
			"yaml":  "go.opentelemetry.io/collector/confmap/provider/yamlprovider " + confVersion,
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
}
