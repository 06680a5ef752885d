"""What a service's own /metrics says: samples by name and labels."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        return response.read().decode("utf-8")


def sample_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def calls_served(agency, method: str) -> float:
    """RPCs of `method` the agency itself says it handled, whatever their code."""
    return sample_value(scrape(agency.process.endpoints["metrics"]), "grpc_server_handled_total", grpc_method=method)
