"""One partition per class series, keyed by the series ``key``."""

import dagster as dg

class_series_partitions = dg.DynamicPartitionsDefinition(name="class_series")
