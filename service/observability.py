"""Prometheus metrics of the API process (one registry per process; /metrics serves it)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "vlmc_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
REQUEST_LATENCY = Histogram(
    "vlmc_http_request_seconds", "HTTP request latency by route", ["method", "route"]
)
INFERENCE_LATENCY = Histogram(
    "vlmc_inference_seconds", "Model forward time of classify/embed", ["operation"]
)
REQUESTS_IN_FLIGHT = Gauge("vlmc_http_requests_in_flight", "HTTP requests being served")
REQUESTS_SHED = Counter(
    "vlmc_http_requests_shed_total", "HTTP requests answered 503 server_overloaded"
)
INFERENCE_IN_FLIGHT = Gauge(
    "vlmc_inference_in_flight", "classify/embed requests holding an inference slot"
)
INFERENCE_SHED = Counter(
    "vlmc_inference_shed_total", "classify/embed requests answered 503 server_busy"
)
INFERENCE_BATCH_SIZE = Histogram(
    "vlmc_inference_batch_items",
    "Items (images, or chat prompts) per batched forward pass",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
TEXT_EMBEDDING_LOOKUPS = Counter(
    "vlmc_text_embedding_lookups_total",
    "Texts looked up in the per-model text-embedding cache, by result (hit or miss)",
    ["result"],
)
