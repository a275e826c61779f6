"""Reading a Prometheus scrape in tests: its samples by name and labels, and what changed."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Key, float]:
    """Every sample of a scrape in Prometheus' text format, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> Key:
    return name, frozenset(labels.items())


def grown(before: Mapping[Key, float], after: Mapping[Key, float]) -> dict[Key, float]:
    """clusterql's samples that changed between two scrapes, by how much (not timestamps, nor
    the process's own figures that prometheus-client adds in a single process)."""
    return {
        k: after[k] - before.get(k, 0.0)
        for k in after
        if k[0].startswith("clusterql_")
        and not k[0].endswith("_created")
        and after[k] != before.get(k, 0.0)
    }
